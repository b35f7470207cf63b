"""/metrics: what Prometheus scrapes, parsed back with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.applications import Starlette
from starlette.testclient import TestClient

from socle.core.state import MemoryState
from socle.history.store import HistoryStore, OutcomeRecord, StateView
from socle.planning import plan_with_state
from socle.serve import metrics
from socle.serve.console import Console
from socle.serve.runner import RunRequest
from socle.serve.settings import ConsoleSettings
from socle.serve.snapshot import build_states
from socle.validate import validate
from tests.conftest import CatalogWriter
from tests.unit.serve.test_snapshot import CATALOG, KEYS, outcome, published_plan

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    yield Console(ConsoleSettings(catalog=tmp_path / "catalog.yaml"), store)
    store.close()


def scrape(console: Console) -> dict[str, list[Sample]]:
    app = Starlette(routes=metrics.routes(console))
    with TestClient(app) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if s.labels == labels]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def state(key: str, **fields: object) -> StateView:
    base: dict[str, object] = {
        "key": key,
        "image": key.split(":")[0],
        "repository": f"my/{key.split(':')[0]}",
        "parent": None,
        "level": 0,
        "tags": (key.split(":")[1],),
        "digest": A,
        "base_name": "debian",
        "base_digest": B,
        "created": datetime.now(UTC) - timedelta(hours=2),
        "status": "current",
        "reasons": (),
    }
    base.update(fields)
    return StateView(**base)  # type: ignore[arg-type]


def record(store: HistoryStore, *outcomes: OutcomeRecord) -> None:
    recorder = store.start_run(trigger="cli", catalog="c", registry="r")
    recorder.finish(list(outcomes), status="succeeded", summary="")


def test_an_empty_history_exposes_zero_builds_and_no_image(console: Console) -> None:
    samples = scrape(console)
    assert "socle_image_age_seconds" not in samples
    assert value(samples, "socle_build_duration_seconds_count") == 0
    assert value(samples, "socle_build_duration_seconds_bucket", le="+Inf") == 0
    assert value(samples, "socle_runs_queued") == 0
    assert "socle_last_run_timestamp_seconds" not in samples
    assert "socle_builds_total" not in samples


def test_the_overview_rows_become_per_variant_gauges(console: Console) -> None:
    console.store.replace_states(
        console.catalog_key,
        [
            state("java:17", vulnerabilities={"HIGH": 2, "low": 5}, signed="yes"),
            state("node:20", status="stale", signed="no", digest=B, base_digest=None),
            state("gone:1", digest=None, created=None, status="missing", signed="unknown"),
        ],
    )
    console.store.replace_states("/another/catalog.yaml", [state("other:1")])
    samples = scrape(console)

    age = value(samples, "socle_image_age_seconds", image="java", variant="java:17")
    assert 7190 < age < 7300
    assert {s.labels["variant"] for s in samples["socle_image_age_seconds"]} == {
        "java:17",
        "node:20",
    }
    assert value(samples, "socle_image_vulnerabilities", variant="java:17", severity="high") == 2
    assert value(samples, "socle_image_vulnerabilities", variant="java:17", severity="low") == 5
    assert value(samples, "socle_image_info", variant="java:17", digest=A, base_digest=B) == 1
    assert value(samples, "socle_image_info", variant="node:20", digest=B, base_digest="") == 1
    assert value(samples, "socle_image_stale", variant="java:17") == 0
    assert value(samples, "socle_image_stale", variant="node:20") == 1
    assert value(samples, "socle_image_signed", variant="java:17") == 1
    assert value(samples, "socle_image_signed", variant="node:20") == 0
    assert not [s for s in samples["socle_image_signed"] if s.labels["variant"] == "gone:1"]
    # Digests stay in the info metric: no other series carries one.
    for name, series in samples.items():
        if name != "socle_image_info":
            assert all("sha256:" not in v for s in series for v in s.labels.values()), name


def test_recorded_outcomes_become_the_histogram_and_the_counters(console: Console) -> None:
    record(
        console.store,
        OutcomeRecord("a:1", "built", A, 0.4),
        OutcomeRecord("b:1", "built", A, 5.0),
        OutcomeRecord("c:1", "failed", None, 42.0),
        OutcomeRecord("d:1", "skipped"),
    )
    record(console.store, OutcomeRecord("a:1", "built", A, 4000.0))
    samples = scrape(console)

    assert value(samples, "socle_build_duration_seconds_count") == 4
    assert value(samples, "socle_build_duration_seconds_sum") == pytest.approx(4047.4)
    assert value(samples, "socle_build_duration_seconds_bucket", le="1.0") == 1
    assert value(samples, "socle_build_duration_seconds_bucket", le="5.0") == 2  # le is <=
    assert value(samples, "socle_build_duration_seconds_bucket", le="30.0") == 2
    assert value(samples, "socle_build_duration_seconds_bucket", le="60.0") == 3
    assert value(samples, "socle_build_duration_seconds_bucket", le="1800.0") == 3
    assert value(samples, "socle_build_duration_seconds_bucket", le="+Inf") == 4
    assert value(samples, "socle_builds_total", result="built") == 3
    assert value(samples, "socle_builds_total", result="failed") == 1
    assert value(samples, "socle_builds_total", result="skipped") == 1
    last = console.store.last_finished()
    assert last is not None and last.finished_at is not None
    assert value(samples, "socle_last_run_timestamp_seconds") == pytest.approx(
        last.finished_at.timestamp(), abs=1e-3
    )


def test_each_scrape_reads_the_history_again(console: Console) -> None:
    app = Starlette(routes=metrics.routes(console))
    with TestClient(app) as client:
        first = client.get("/metrics").text
        record(console.store, OutcomeRecord("a:1", "built", A, 2.0))
        second = client.get("/metrics").text
    assert 'socle_builds_total{result="built"}' not in first
    assert 'socle_builds_total{result="built"} 1.0' in second


def test_waiting_runs_are_counted(console: Console) -> None:
    console.runner.submit(RunRequest(only=frozenset({"a:1"})))
    console.runner.submit(RunRequest(action="prune"))
    assert value(scrape(console), "socle_runs_queued") == 2


def test_the_global_registry_is_left_alone(console: Console) -> None:
    before = set(REGISTRY._names_to_collectors)  # noqa: SLF001
    scrape(console)
    scrape(console)  # a second app of the same process registers nothing twice either
    assert set(REGISTRY._names_to_collectors) == before  # noqa: SLF001
    assert not any(name.startswith("socle_") for name in before)


def test_an_unreadable_history_answers_503_with_the_reason(console: Console) -> None:
    app = Starlette(routes=metrics.routes(console))
    console.store.engine.dispose()
    (Path(console.store.url.removeprefix("sqlite:///"))).unlink()
    Path(console.store.url.removeprefix("sqlite:///")).mkdir()  # a folder: sqlite cannot open it
    with TestClient(app) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 503
    assert answer.text.startswith("metrics unavailable: the history database")


def test_an_image_the_plan_would_rebuild_is_stale_whatever_its_status(
    console: Console, write_catalog: CatalogWriter
) -> None:
    """A stale image that is also vulnerable (its status) counts as stale; a vulnerable one not."""
    path = write_catalog(CATALOG, contexts=("mid", "leaf"))
    published = published_plan(path)
    (path.parent / "leaf" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN x\n")
    catalog, graph = validate(path)
    registry = MemoryState({s.refs[0]: s.published for s in published.steps if s.published})
    plan = plan_with_state(catalog, graph, registry)
    digests = {s.variant.key: s.published.digest for s in plan.steps if s.published}
    high = {"findings": [{"cve": "CVE-1", "severity": "high", "package": "p"}]}
    built = {k: outcome(k, "built", digests[k], scan=high) for k in ("mid:1.0-base1", KEYS[2])}
    rows = build_states(
        plan, annotations={}, signatures={}, latest={}, built=built, policy=None, verify=False
    )
    assert {r.key: r.status for r in rows} == {
        "base:1": "current",
        "mid:1.0-base1": "vulnerable",  # and current with its inputs
        KEYS[2]: "vulnerable",  # and its Dockerfile changed
    }
    console.store.replace_states(console.catalog_key, rows)
    samples = scrape(console)
    assert value(samples, "socle_image_stale", variant=KEYS[2]) == 1
    assert value(samples, "socle_image_stale", variant="mid:1.0-base1") == 0
    assert value(samples, "socle_image_stale", variant="base:1") == 0
