"""A run whose process died (SIGKILL, a power loss) ends as interrupted, from its own host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text, update

from socle.core.plan import Plan
from socle.history import processes
from socle.history.models import Run
from socle.history.store import HistoryStore
from socle.recording import recorded

ROOT = Path(__file__).resolve().parents[3]

# A process that starts a run, says its id, and sleeps until it is killed.
STARTER = """
import sys, time
from socle.history.store import HistoryStore
store = HistoryStore.open(sys.argv[1])
recorder = store.start_run(trigger="cli", catalog="c", registry="r", reason="a long build")
recorder.record("started", "a:1", "building")
print(recorder.run_id, flush=True)
time.sleep(120)
"""


def url_in(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'history.db'}"


def start_run_in_a_process(url: str) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", STARTER, url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip().isdigit(), f"the child printed {line!r}"
    return child, int(line)


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert child.stdout is not None
    child.stdout.close()


def killed_run(url: str) -> int:
    """The id of a run whose process was killed with SIGKILL while it ran."""
    child, run_id = start_run_in_a_process(url)
    kill(child)
    return run_id


def test_a_run_whose_process_was_killed_is_marked_interrupted(tmp_path: Path) -> None:
    url = url_in(tmp_path)
    with HistoryStore.open(url) as store:
        child, run_id = start_run_in_a_process(url)
        try:
            assert store.mark_dead_runs() == 0  # alive: left alone
            assert store.run(run_id).status == "running"  # type: ignore[union-attr]
        finally:
            kill(child)
        assert store.mark_dead_runs() == 1
        run = store.run(run_id)
        assert run is not None and run.status == "interrupted"
        assert run.finished_at is not None
        host = processes.host_name()
        assert run.summary == (
            f"its process (pid {child.pid} on {host}) ended without finishing the run"
        )
        assert (run.pid, run.host) == (child.pid, host)
        assert store.mark_dead_runs() == 0  # once


def test_a_live_run_of_this_process_is_left_running(tmp_path: Path) -> None:
    with HistoryStore.open(url_in(tmp_path)) as store:
        recorder = store.start_run(trigger="cli", catalog="c", registry="r")
        assert store.mark_dead_runs() == 0
        assert store.run(recorder.run_id).status == "running"  # type: ignore[union-attr]


def test_a_reused_pid_a_reboot_and_another_host(tmp_path: Path) -> None:
    """The pid is alive (it is ours) but the run was another process's, or another boot's."""
    url = url_in(tmp_path)
    mine = processes.identity(os.getpid())
    assert mine is not None, "this test needs /proc (Linux)"
    boot, namespace, start = mine.split(" ")
    with HistoryStore.open(url) as store:
        reused, rebooted, elsewhere, alive = (
            store.start_run(trigger="cli", catalog="c", registry="r").run_id for _ in range(4)
        )
        with store.session() as session:
            session.execute(
                update(Run)
                .where(Run.id == reused)
                .values(process=f"{boot} {namespace} {int(start) - 1}")
            )
            session.execute(
                update(Run).where(Run.id == rebooted).values(process=f"other-boot {namespace} 1")
            )
            session.execute(update(Run).where(Run.id == elsewhere).values(host="another-host"))
        assert store.mark_dead_runs() == 2
        runs = {i: store.run(i) for i in (reused, rebooted, elsewhere, alive)}
        assert {i: r.status for i, r in runs.items() if r is not None} == {
            reused: "interrupted",
            rebooted: "interrupted",
            elsewhere: "running",
            alive: "running",
        }


def test_runs_recorded_before_the_host_was_kept_are_left_alone(tmp_path: Path) -> None:
    from alembic import command

    from socle.history.migrate import alembic_config

    url = url_in(tmp_path)
    engine = create_engine(url)
    command.upgrade(alembic_config(engine), "0002")
    with engine.begin() as connection:
        connection.execute(
            text(
                "insert into runs (started_at, trigger, catalog, registry, status, summary,"
                " reason, reasons, planned, pid) values ('2026-11-30 10:00:00', 'cli', 'c', 'r',"
                " 'running', '', '', '[]', 0, 999999999)"
            )
        )
    engine.dispose()
    with HistoryStore.open(url) as store:
        (old,) = store.runs()
        assert old.host is None
        assert store.mark_dead_runs() == 0
        assert store.run(old.id).status == "running"  # type: ignore[union-attr]


def test_every_recorded_run_first_closes_the_dead_ones(tmp_path: Path) -> None:
    url = url_in(tmp_path)
    dead = killed_run(url)
    with HistoryStore.open(url) as store:
        with recorded(
            store, trigger="cli", catalog="c", registry="r", plan=Plan("r", ())
        ) as recording:
            assert store.run(dead).status == "interrupted"  # type: ignore[union-attr]
        assert recording.run_id is not None
        assert store.run(recording.run_id).status == "succeeded"  # type: ignore[union-attr]
