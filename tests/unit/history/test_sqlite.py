"""The sqlite3 writer: the rows a no-op build writes without SQLAlchemy read back as before."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from socle.commands.build import open_history
from socle.core.plan import Plan
from socle.errors import SocleError
from socle.events import Event, Status
from socle.history import processes
from socle.history.interface import History, OutcomeRecord
from socle.history.migrate import head
from socle.history.sqlite import SqliteHistory, open_current
from socle.history.store import HistoryStore, RunView
from socle.recording import recorded

ROOT = Path(__file__).resolve().parents[3]
A = "sha256:" + "a" * 64
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")  # SQLAlchemy's SQLite DATETIME


def url_in(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'h.db'}"


def current_db(tmp_path: Path) -> str:
    url = url_in(tmp_path)
    HistoryStore.open(url).close()  # created and migrated to this socle's head
    return url


def record_one_run(history: History) -> int:
    """The same run, event for event, whichever writer records it."""
    recorder = history.start_run(
        trigger="webhook",
        catalog="/c/catalog.yaml",
        registry="127.0.0.1:5000",
        reasons=[{"key": "java:17", "reasons": ["its Dockerfile changed", "élan ✓"]}],
        planned=2,
        user="ana",
        reason="push of my/debian:12",
    )
    recorder.record("building", "java:17", "its Dockerfile changed")
    recorder.record("built", "java:17", digest=A, seconds=3.5)
    recorder.record("failed", None, "x" * 5000)  # kept to 4,000 characters
    recorder.finish(
        [
            OutcomeRecord(
                "java:17",
                "built",
                A,
                3.5,
                tags=("17", "latest"),
                notes=("tests: 2 passed",),
                reasons=("its Dockerfile changed",),
                details={"scan": {"severities": {"high": 2}}, "when": Path("/x"), 3: (1, 2)},
            ),
            OutcomeRecord("tomcat:10", "failed", None, 0.25, error="boom\nsecond line"),
            OutcomeRecord("debian:12", "skipped"),
        ],
        status="failed",
        summary="1 built, 1 failed, 1 skipped",
    )
    assert recorder.finished
    return recorder.run_id


def rows(url: str, table: str, column: str, run_id: int) -> list[dict[str, Any]]:
    """The raw rows, each value beside its SQLite storage class."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        names = [d[0] for d in connection.execute(f"select * from {table} limit 0").description]
        kinds = ", ".join(f'typeof("{n}")' for n in names)
        found = connection.execute(
            f"select *, {kinds} from {table} where {column} = ? order by id", (run_id,)
        ).fetchall()
    return [
        {n: (value, kind) for n, value, kind in zip(names, row, row[len(names) :], strict=False)}
        for row in found
    ]


def without_identity(found: list[dict[str, Any]], *timestamps: str) -> list[dict[str, Any]]:
    """The rows without what differs between any two runs: ids, times, the process."""
    for row in found:
        for column in timestamps:
            value, _ = row[column]
            assert value is None or STAMP.match(value), (column, value)
    drop = {"id", "run_id", "pid", "process", *timestamps}
    return [{k: v for k, v in row.items() if k not in drop} for row in found]


def comparable(run: RunView | None) -> RunView:
    assert run is not None and run.finished_at is not None
    return dataclasses.replace(
        run,
        id=0,
        started_at=EPOCH,  # the times are checked apart: UTC, in order
        finished_at=EPOCH,
        pid=None,
        outcomes=tuple(dataclasses.replace(o, run_id=0, at=None) for o in run.outcomes),
    )


def test_a_run_written_with_sqlite3_reads_back_as_one_sqlalchemy_wrote(tmp_path: Path) -> None:
    url = current_db(tmp_path)
    with HistoryStore.open(url) as store:
        by_sqlalchemy = record_one_run(store)
    fast = open_current(url)
    assert isinstance(fast, SqliteHistory)
    with fast:
        by_sqlite3 = record_one_run(fast)
    for table, column, stamps in (
        ("runs", "id", ("started_at", "finished_at")),
        ("events", "run_id", ("at",)),
        ("outcomes", "run_id", ()),
    ):
        assert without_identity(rows(url, table, column, by_sqlite3), *stamps) == without_identity(
            rows(url, table, column, by_sqlalchemy), *stamps
        ), table
    with HistoryStore.open(url) as store:
        old, new = store.run(by_sqlalchemy), store.run(by_sqlite3)
        assert new is not None and new.finished_at is not None
        assert new.started_at.tzinfo is not None and new.started_at <= new.finished_at
        assert comparable(new) == comparable(old)
        assert new.pid is not None and new.host == processes.host_name()
        events = [dataclasses.replace(e, id=0, at=new.started_at) for e in store.events(new.id)]
        assert events == [
            dataclasses.replace(e, id=0, at=new.started_at)
            for e in store.events(old.id)  # type: ignore[union-attr]
        ]
        assert len(events[-1].message) == 4000
        assert store.latest_built()["java:17"].run_id == by_sqlite3
        assert [o.run_id for o in store.outcomes_of("tomcat:10")] == [by_sqlite3, by_sqlalchemy]
        assert store.outcome_counts() == {"built": 2, "failed": 2, "skipped": 2}


def test_only_a_plain_sqlite_file_at_this_socles_head_is_opened(tmp_path: Path) -> None:
    assert open_current(url_in(tmp_path)) is None  # nothing yet: HistoryStore creates it
    assert not (tmp_path / "h.db").exists()
    (tmp_path / "h.db").write_bytes(b"")
    assert open_current(url_in(tmp_path)) is None  # empty: no schema to write into
    url = current_db(tmp_path)
    for other in (
        f"{url}?timeout=5",
        "sqlite://",
        "sqlite:///:memory:",
        f"sqlite+pysqlite:///{tmp_path / 'h.db'}",
        "postgresql+psycopg://socle@127.0.0.1:1/socle",
    ):
        assert open_current(other) is None, other
    opened = open_current(url)
    assert opened is not None
    opened.close()
    (tmp_path / "junk.db").write_text("not a database\n" * 100)
    assert open_current(f"sqlite:///{tmp_path / 'junk.db'}") is None


def test_a_database_from_a_newer_socle_is_still_refused(tmp_path: Path) -> None:
    url = current_db(tmp_path)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("update alembic_version set version_num = '9999'"))
    engine.dispose()
    assert open_current(url) is None
    with pytest.raises(SocleError, match="migrated by a newer socle .*revision 9999"):
        open_history(url)


def test_an_older_database_is_migrated_before_the_run_is_recorded(tmp_path: Path) -> None:
    from alembic import command

    from socle.history.migrate import alembic_config

    url = url_in(tmp_path)
    engine = create_engine(url)
    command.upgrade(alembic_config(engine), "0001")
    engine.dispose()
    assert open_current(url) is None
    with open_history(url) as history:
        assert isinstance(history, HistoryStore)
    with open_history(url) as history:  # now current: the sqlite3 writer takes it
        assert isinstance(history, SqliteHistory)
    with sqlite3.connect(tmp_path / "h.db") as connection:
        assert connection.execute("select version_num from alembic_version").fetchall() == [
            (head(),)
        ]


def test_a_run_whose_process_died_is_marked_interrupted_by_sqlite3(tmp_path: Path) -> None:
    url = current_db(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with open_history(url) as history:
        assert isinstance(history, SqliteHistory)
        dead = history.start_run(trigger="cli", catalog="c", registry="r").run_id
        alive = history.start_run(trigger="cli", catalog="c", registry="r").run_id
        with history.transaction() as cursor:  # as if the dead process had started it
            cursor.execute("update runs set pid = ?, process = null where id = ?", (gone.pid, dead))
        assert history.mark_dead_runs() == 1
        assert history.mark_dead_runs() == 0  # once
    with HistoryStore.open(url) as store:
        run = store.run(dead)
        assert run is not None and run.status == "interrupted" and run.finished_at is not None
        assert run.summary == (
            f"its process (pid {gone.pid} on {processes.host_name()}) ended without "
            "finishing the run"
        )
        assert store.run(alive).status == "running"  # type: ignore[union-attr]


def test_a_failing_history_is_one_socle_error(tmp_path: Path) -> None:
    url = current_db(tmp_path)
    with open_history(url) as history:
        recorder = history.start_run(trigger="cli", catalog="c", registry="r")
        with history.transaction() as cursor:  # type: ignore[attr-defined]
            cursor.execute("drop table events")
        with pytest.raises(SocleError, match=r"^the history database sqlite:///.* failed: "):
            recorder.record("building", "a:1")
        recorder.finish([OutcomeRecord("a:1", "built")], status="succeeded", summary="1 built")
    with HistoryStore.open(url, migrate=False) as store:
        assert store.run(recorder.run_id).status == "succeeded"  # type: ignore[union-attr]


def test_recording_a_run_into_the_default_sqlite_file_imports_no_sqlalchemy(
    tmp_path: Path,
) -> None:
    url = current_db(tmp_path)
    code = (
        "import sys\n"
        "from socle.commands.build import open_history\n"
        "from socle.core.plan import Plan\n"
        "from socle.recording import recorded\n"
        f"with open_history({url!r}) as history:\n"
        "    with recorded(history, trigger='cli', catalog='c', registry='r',"
        " plan=Plan('r', ())) as recording:\n"
        "        recording.outcomes = []\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"
    with HistoryStore.open(url) as store:
        (run,) = store.runs()
        assert (run.trigger, run.status, run.summary) == ("cli", "succeeded", "nothing to do")


def test_the_console_sees_a_run_recorded_around_a_plan(tmp_path: Path) -> None:
    url = current_db(tmp_path)
    with open_history(url) as history:
        assert isinstance(history, SqliteHistory)
        with recorded(
            history, trigger="cli", catalog="c", registry="r", plan=Plan("r", ())
        ) as recording:
            recording.outcomes = []
            recording(Event(Status.TAGGING, None, "moving 1 tag(s)"))  # its own thread writes
    with HistoryStore.open(url) as store:
        (run,) = store.runs()
        assert run.status == "succeeded"
        assert [e.line().split(" ", 1)[1] for e in store.events(run.id)] == [
            "tagging run moving 1 tag(s)"
        ]
