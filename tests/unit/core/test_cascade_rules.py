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
AGED = f"""
registry: r.test
max_age: 7d
images:
  debian:
    upstream: debian
    versions: {{"12": {{digest: "{DIGEST}"}}}}
  java:
    parents: [debian]
    max_age: 2w
    versions: ["17"]
"""
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def published_days_ago(path: Path, days: dict[str, int]) -> MemoryState:
    """Everything published as the plan says (nothing else changed), `days[key]` days ago."""
    catalog, graph = validate(path)
    state = MemoryState()
    for step in plan_with_state(catalog, graph, state, now=NOW).steps:
        parent = step.variant.parent
        upstream = step.variant.version.upstream
        created = (NOW - timedelta(days=days[step.variant.key])).strftime("%Y-%m-%dT%H:%M:%SZ")
        # An upstream copy is published byte for byte: its digest is the pin.
        digest = upstream.digest if upstream else None
        state.publish(
            step.variant.ref("r.test"),
            Published(
                digest or f"sha256:{len(state.images):064x}",
                step.fingerprint,
                step.inputs,
                state.images[parent.ref("r.test")].digest if parent else None,
                created,
            ),
        )
    return state


def reasons_now(path: Path, state: MemoryState) -> dict[str, list[str]]:
    catalog, graph = validate(path)
    plan = plan_with_state(catalog, graph, state, now=NOW)
    return {s.variant.key: [r.text for r in s.reasons] for s in plan.builds()}


def test_a_pinned_image_older_than_max_age_is_rebuilt_for_that_reason_alone(
    write_catalog: CatalogWriter,
) -> None:
    path = write_catalog(AGED, contexts=("java",))
    fresh = published_days_ago(path, {"debian:12": 1, "java:17-debian12": 1})
    assert reasons_now(path, fresh) == {}, "pinned and younger than max_age: current"
    aged = published_days_ago(path, {"debian:12": 9, "java:17-debian12": 9})
    # java's own max_age (2w) is not exceeded: it follows only because its parent is rebuilt.
    assert reasons_now(path, aged) == {
        "debian:12": ["published 9 days ago, older than max_age 7d"],
        "java:17-debian12": ["parent debian:12 is rebuilt"],
    }


def test_an_image_s_own_max_age_overrides_the_catalog_s(write_catalog: CatalogWriter) -> None:
    path = write_catalog(AGED, contexts=("java",))
    state = published_days_ago(path, {"debian:12": 6, "java:17-debian12": 15})
    assert reasons_now(path, state) == {
        "java:17-debian12": ["published 15 days ago, older than max_age 2w"]
    }


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
