"""The history database: created and migrated on open, refused when newer, runs recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from socle.errors import SocleError
from socle.history.migrate import head
from socle.history.store import EventView, HistoryStore, OutcomeRecord, StateView


def url_in(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'h.db'}"


def test_an_empty_database_is_created_at_this_socles_revision(tmp_path: Path) -> None:
    with HistoryStore.open(url_in(tmp_path)) as store:
        assert store.runs() == []
    engine = create_engine(url_in(tmp_path))
    with engine.connect() as connection:
        assert (
            connection.execute(text("select version_num from alembic_version")).scalar() == head()
        )


def test_a_database_migrated_by_a_newer_socle_is_refused(tmp_path: Path) -> None:
    HistoryStore.open(url_in(tmp_path)).close()
    engine = create_engine(url_in(tmp_path))
    with engine.begin() as connection:
        connection.execute(text("update alembic_version set version_num = '9999'"))
    with pytest.raises(SocleError, match="migrated by a newer socle .*revision 9999"):
        HistoryStore.open(url_in(tmp_path))


def test_an_unreachable_database_is_one_message(tmp_path: Path) -> None:
    url = "postgresql+psycopg://socle:secret-pw@127.0.0.1:1/socle"
    with pytest.raises(SocleError) as caught:
        HistoryStore.open(url)
    assert caught.value.message.startswith("cannot open the history database")
    assert "secret-pw" not in caught.value.diagnostics()
    assert "\n" not in caught.value.message


def test_a_bad_url_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(SocleError, match="--db: .* is not a database URL"):
        HistoryStore.open("not a url")


def test_a_run_keeps_its_reasons_events_outcomes_and_end(tmp_path: Path) -> None:
    with HistoryStore.open(url_in(tmp_path)) as store:
        recorder = store.start_run(
            trigger="cli",
            catalog="/c/catalog.yaml",
            registry="127.0.0.1:5000",
            reasons=[{"key": "java:17", "reasons": ["its Dockerfile changed"]}],
            planned=1,
        )
        recorder.record("building", "java:17")
        recorder.record("built", "java:17", digest="sha256:" + "a" * 64, seconds=3.5)
        assert [e.status for e in store.events(recorder.run_id)] == ["building", "built"]
        first = store.events(recorder.run_id)[0].id
        assert [e.status for e in store.events(recorder.run_id, after=first)] == ["built"]
        assert store.run(recorder.run_id).status == "running"  # type: ignore[union-attr]
        recorder.finish(
            [
                OutcomeRecord(
                    "java:17",
                    "built",
                    "sha256:" + "a" * 64,
                    3.5,
                    details={"scan": {"severities": {"high": 2}}},
                )
            ],
            status="succeeded",
            summary="1 built",
        )
        run = store.run(recorder.run_id)
        assert run is not None and run.status == "succeeded" and run.seconds is not None
        assert run.reasons[0]["reasons"] == ["its Dockerfile changed"]
        (outcome,) = run.outcomes
        assert outcome.details["scan"]["severities"] == {"high": 2}
        assert store.latest_outcomes()["java:17"].digest == "sha256:" + "a" * 64
        assert store.outcome_counts() == {"built": 1}


def test_states_are_replaced_per_catalog(tmp_path: Path) -> None:
    def state(key: str, status: str) -> StateView:
        return StateView(
            key, key.split(":")[0], "my/x", None, 0, (), None, None, None, None, status, ()
        )

    with HistoryStore.open(url_in(tmp_path)) as store:
        store.replace_states("a", [state("x:1", "current"), state("x:2", "stale")])
        store.replace_states("b", [state("y:1", "failed")])
        store.replace_states("a", [state("x:1", "stale")])
        assert [(s.key, s.status) for s in store.states("a")] == [("x:1", "stale")]
        assert [s.key for s in store.states("b")] == ["y:1"]


def test_old_runs_are_forgotten_beyond_the_limit(tmp_path: Path) -> None:
    with HistoryStore.open(url_in(tmp_path)) as store:
        for _ in range(5):
            rec = store.start_run(trigger="cli", catalog="c", registry="r")
            rec.record("building", "a:1")
            rec.finish([OutcomeRecord("a:1", "built")], status="succeeded", summary="")
        assert store.prune_runs(2) == 3
        assert [r.id for r in store.runs()] == [5, 4]
        assert store.events(1) == []


def test_a_database_at_the_first_revision_is_migrated_forward_keeping_its_runs(
    tmp_path: Path,
) -> None:
    from alembic import command

    from socle.history.migrate import alembic_config

    url = url_in(tmp_path)
    engine = create_engine(url)
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "insert into runs (started_at, trigger, catalog, registry, status, summary,"
                " reasons, planned) values ('2026-11-30 10:00:00', 'cli', 'c', 'r',"
                " 'succeeded', 'old run', '[]', 0)"
            )
        )
    with HistoryStore.open(url) as store:
        (old,) = store.runs()
        assert old.summary == "old run" and old.reason == ""
        recorder = store.start_run(trigger="webhook", catalog="c", registry="r", reason="push")
        assert store.run(recorder.run_id).reason == "push"  # type: ignore[union-attr]


def test_an_event_line_says_its_duration_once() -> None:
    at = datetime(2026, 12, 2, 7, 27, 25, tzinfo=UTC)
    built = EventView(1, at, "building", "leaf:2", "built in 4.8 s", None, 4.8)
    pushed = EventView(2, at, "pushing", "leaf:2", "pushed", "sha256:abc", 0.31)
    assert built.line() == "07:27:25 building leaf:2 built in 4.8 s"
    assert pushed.line() == "07:27:25 pushing leaf:2 pushed sha256:abc 0.3 s"
