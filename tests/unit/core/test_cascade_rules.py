"""max_age, pins, the run lock and the --only/--cascade selection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from socle.core.state import MemoryState, Published
from socle.errors import CatalogError
from socle.job import selection
from socle.lock import Busy, RunLock
from socle.planning import plan_with_state
from socle.validate import validate
from tests.conftest import CatalogWriter

DIGEST = "sha256:" + "a" * 64
AGED = """
registry: r.test
max_age: 7d
images:
  debian:
    upstream: debian
    versions: ["12"]
  java:
    parents: [debian]
    max_age: 2w
    versions: ["17"]
"""


def test_max_age_rebuilds_old_images_with_the_reason(write_catalog: CatalogWriter) -> None:
    path = write_catalog(AGED, contexts=("java",))
    catalog, graph = validate(path)
    now = datetime(2026, 11, 27, tzinfo=UTC)
    created = (now - timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    state = MemoryState()
    first = plan_with_state(catalog, graph, state, now=now)
    for step in first.steps:
        parent = step.variant.parent
        state.publish(
            step.variant.ref("r.test"),
            Published(
                f"sha256:{abs(hash(step.fingerprint)):064d}",
                step.fingerprint,
                step.inputs,
                state.images[parent.ref("r.test")].digest if parent else None,
                created,
            ),
        )
    plan = plan_with_state(catalog, graph, state, now=now)
    reasons = {s.variant.key: [r.text for r in s.reasons] for s in plan.builds()}
    # java's own max_age (2w) is not exceeded, but its parent is rebuilt.
    assert reasons == {"java:17-debian12": ["parent debian:12 is rebuilt"]} or reasons[
        "java:17-debian12"
    ] == ["parent debian:12 is rebuilt"]


def test_pins_file_fills_upstream_digests(write_catalog: CatalogWriter, tmp_path: Path) -> None:
    path = write_catalog(
        "registry: r.test\nimages:\n  debian: {upstream: debian, versions: ['12', '11']}\n"
    )
    path.with_suffix(".pins.yaml").write_text(f"debian:12: {DIGEST}\ndebian:11: md5:nope\n")
    with pytest.raises(CatalogError) as caught:
        validate(path)
    [problem] = caught.value.problems
    assert problem.file.endswith("catalog.pins.yaml") and problem.line == 2
    assert "invalid digest 'md5:nope' for debian:11" in problem.message
    path.with_suffix(".pins.yaml").write_text(f"debian:12: {DIGEST}\n")
    _, graph = validate(path)
    pins = {v.key: v.version.upstream.digest for v in graph.variants if v.version.upstream}
    assert pins == {"debian:12": DIGEST, "debian:11": None}


def test_invalid_max_age_is_located(write_catalog: CatalogWriter) -> None:
    path = write_catalog("registry: r.test\nmax_age: weekly\nimages: {}\n")
    with pytest.raises(CatalogError) as caught:
        validate(path)
    assert str(caught.value.problems[0]).endswith(
        ":2:10: error: invalid duration 'weekly': use a number and s, m, h, d or w (7d)"
    )


def test_a_second_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    with RunLock(tmp_path, catalog, "r.test"):
        with pytest.raises(Busy) as caught, RunLock(tmp_path, catalog, "r.test"):
            pass
        assert "another socle run holds" in caught.value.message
        assert "pid " in caught.value.message
        with RunLock(tmp_path, catalog, "other.test"):
            pass  # another registry is another lock
    with RunLock(tmp_path, catalog, "r.test"):
        pass  # released on exit


def test_only_limits_roots_and_cascade_keeps_descendants(write_catalog: CatalogWriter) -> None:
    path = write_catalog(AGED.replace("max_age: 7d\n", ""), contexts=("java",))
    _, graph = validate(path)
    assert selection(graph, [], cascade=True) is None
    assert selection(graph, ["debian"], cascade=True) == {"debian:12", "java:17-debian12"}
    assert selection(graph, ["debian"], cascade=False) == {"debian:12"}
