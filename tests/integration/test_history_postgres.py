"""The history on a real PostgreSQL: migrated, refused when newer, runs recorded, by many threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from socle.errors import SocleError
from socle.history.migrate import head
from socle.history.models import Base
from socle.history.store import HistoryStore, OutcomeRecord, StateView
from socle.process import run
from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import skopeo_inspect, socle
from tests.integration.images import write_busybox_layout
from tests.integration.postgres import Postgres, postgres_cluster  # noqa: F401  (`postgres`)

pytestmark = pytest.mark.integration

A = "sha256:" + "a" * 64


def test_an_empty_database_is_migrated_to_this_socles_schema(postgres: Postgres) -> None:
    url = postgres.database()
    with HistoryStore.open(url) as store:
        assert store.runs() == []
    HistoryStore.open(url).close()  # a second open finds it current
    engine = create_engine(url)
    with engine.connect() as connection:
        assert (
            connection.execute(text("select version_num from alembic_version")).scalar() == head()
        )
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_a_database_migrated_by_a_newer_socle_is_refused(postgres: Postgres) -> None:
    url = postgres.database()
    HistoryStore.open(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("update alembic_version set version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SocleError, match="migrated by a newer socle .*revision 9999") as caught:
        HistoryStore.open(url)
    assert postgres.password not in caught.value.diagnostics()


def test_a_wrong_password_is_one_message_without_it(postgres: Postgres) -> None:
    url = postgres.database().replace(postgres.password, "not-the-password")
    with pytest.raises(SocleError) as caught:
        HistoryStore.open(url)
    assert caught.value.message.startswith("cannot open the history database")
    assert "not-the-password" not in caught.value.diagnostics()
    assert "\n" not in caught.value.message


def test_a_run_keeps_its_reasons_events_outcomes_and_end(postgres: Postgres) -> None:
    with HistoryStore.open(postgres.database()) as store:
        recorder = store.start_run(
            trigger="cli",
            catalog="/c/catalog.yaml",
            registry="127.0.0.1:5000",
            reasons=[{"key": "java:17", "reasons": ["its Dockerfile changed"]}],
            planned=1,
        )
        recorder.record("building", "java:17")
        recorder.record("built", "java:17", digest=A, seconds=3.5)
        assert [e.status for e in store.events(recorder.run_id)] == ["building", "built"]
        first = store.events(recorder.run_id)[0].id
        assert [e.status for e in store.events(recorder.run_id, after=first)] == ["built"]
        recorder.finish(
            [
                OutcomeRecord(
                    "java:17", "built", A, 3.5, details={"scan": {"severities": {"high": 2}}}
                )
            ],
            status="succeeded",
            summary="1 built",
        )
        run_view = store.run(recorder.run_id)
        assert run_view is not None and run_view.status == "succeeded"
        assert run_view.seconds is not None and run_view.seconds >= 0
        assert run_view.reasons[0]["reasons"] == ["its Dockerfile changed"]
        assert run_view.outcomes[0].details["scan"]["severities"] == {"high": 2}
        assert store.latest_outcomes()["java:17"].digest == A
        assert store.outcome_counts() == {"built": 1}
        assert store.durations() == [("java:17", "built", 3.5)]
        last = store.last_finished()
        assert last is not None and last.id == recorder.run_id


def test_states_are_replaced_per_catalog(postgres: Postgres) -> None:
    def state(key: str, status: str) -> StateView:
        return StateView(
            key, key.split(":")[0], "my/x", None, 0, ("1",), A, None, None, None, status, ()
        )

    with HistoryStore.open(postgres.database()) as store:
        store.replace_states("a", [state("x:1", "current"), state("x:2", "stale")])
        store.replace_states("b", [state("y:1", "failed")])
        store.replace_states("a", [state("x:1", "stale")])
        assert [(s.key, s.status) for s in store.states("a")] == [("x:1", "stale")]
        assert [s.key for s in store.states("b")] == ["y:1"]


def test_old_runs_are_forgotten_beyond_the_limit(postgres: Postgres) -> None:
    with HistoryStore.open(postgres.database()) as store:
        ids = []
        for _ in range(5):
            rec = store.start_run(trigger="cli", catalog="c", registry="r")
            rec.record("building", "a:1")
            rec.finish([OutcomeRecord("a:1", "built")], status="succeeded", summary="")
            ids.append(rec.run_id)
        assert store.prune_runs(2) == 3
        assert [r.id for r in store.runs()] == ids[:1:-1][:2]
        assert store.events(ids[0]) == []


def test_concurrent_recorders_lose_nothing(postgres: Postgres) -> None:
    """Eight runs recorded at once, each by four threads (the executor's workers)."""
    runs, workers, events = 8, 4, 25
    with HistoryStore.open(postgres.database()) as store:
        errors: list[BaseException] = []
        barrier = threading.Barrier(runs)

        def one_run(index: int) -> None:
            try:
                barrier.wait(10)
                recorder = store.start_run(trigger="cli", catalog="c", registry="r")

                def work(worker: int) -> None:
                    for n in range(events):
                        recorder.record("building", f"v{index}-{worker}:{n}")

                threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                recorder.finish(
                    [OutcomeRecord(f"v{index}:1", "built", A, float(index))],
                    status="succeeded",
                    summary="",
                )
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=one_run, args=(i,)) for i in range(runs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        recorded = store.runs(limit=100)
        assert len(recorded) == runs and {r.status for r in recorded} == {"succeeded"}
        for view in recorded:
            assert len(store.events(view.id, limit=1000)) == workers * events
        assert store.outcome_counts() == {"built": runs}


def test_socle_build_records_its_run_in_postgres(postgres: Postgres, tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    try:
        write_busybox_layout(tmp_path / "os")
        os_ref = f"{registry.host}/up/os:1"
        run(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                f"oci:{tmp_path / 'os'}",
                f"docker://{os_ref}",
            ]
        )
        digest = skopeo_inspect(os_ref)["Digest"]
        (tmp_path / "tool").mkdir()
        (tmp_path / "tool" / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo tool > /tool\n"
        )
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            f"registry: {registry.host}\nnamespace: pg\nimages:\n"
            f"  os: {{upstream: {registry.host}/up/os, versions: {{'1': {{digest: '{digest}'}}}}}}\n"
            "  tool: {parents: [os], versions: ['1']}\n"
        )
        url = postgres.database()
        env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
        built = socle("build", "-c", str(catalog), "--db", url, env=env)
        assert built.returncode == 0, built.stderr
        assert postgres.password not in built.stderr + built.stdout
        published = skopeo_inspect(f"{registry.host}/pg/tool:1-os1")["Digest"]
    finally:
        registry.stop()
    with HistoryStore.open(url) as store:
        (view,) = store.runs()
        assert (view.trigger, view.status) == ("cli", "succeeded")
        assert view.registry == registry.host
        full = store.run(view.id)
        assert full is not None
        outcomes = {o.key: o for o in full.outcomes}
        assert outcomes["tool:1-os1"].status == "built"
        assert outcomes["tool:1-os1"].digest == published
        assert any(e.key == "tool:1-os1" for e in store.events(view.id))
    assert not (tmp_path / "data" / "socle" / "history.db").exists()  # not the SQLite default
