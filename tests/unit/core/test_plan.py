"""The planner: build or skip, with reasons in words."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socle.core.catalog import Catalog
from socle.core.graph import Graph
from socle.core.plan import Action, Plan
from socle.core.state import MemoryState, Published
from socle.planning import plan_with_state
from socle.validate import validate
from tests.conftest import CatalogWriter

CATALOG = """
registry: r.test
namespace: my
images:
  debian:
    bootstrap: {suite: bookworm, packages: [ca-certificates]}
    versions: ["12"]
  centos:
    upstream: centos
    versions:
      "7.5.1804": {digest: "sha256:%s"}
  java:
    parents: [debian, centos]
    versions: ["17"]
  tomcat:
    parents: [java]
    versions: ["10"]
  python:
    parents: [debian]
    versions: ["3.11"]
"""
DIGEST_A = "a" * 64


def publish_all(plan: Plan, state: MemoryState, digests: dict[str, str] | None = None) -> None:
    """What a successful build would record: digests, fingerprints, inputs, parent digests."""
    digests = digests if digests is not None else {}
    for step in plan.steps:
        key = step.variant.key
        upstream = step.variant.version.upstream
        made = (
            upstream.digest
            if upstream and upstream.digest
            else f"sha256:{abs(hash(step.fingerprint)):064d}"
        )
        digest = digests.setdefault(key, made)
        parent = step.variant.parent
        state.publish(
            step.variant.ref(plan.registry),
            Published(
                digest=digest,
                fingerprint=step.fingerprint,
                inputs=step.inputs,
                base_digest=digests[parent.key] if parent else None,
            ),
        )


def setup(write_catalog: CatalogWriter) -> tuple[Path, Catalog, Graph]:
    path = write_catalog(CATALOG % DIGEST_A, contexts=("java", "tomcat", "python"))
    catalog, graph = validate(path)
    return path, catalog, graph


def reasons(plan: Plan) -> dict[str, list[str]]:
    return {s.variant.key: [r.text for r in s.reasons] for s in plan.builds()}


def test_empty_registry_builds_everything_in_order(write_catalog: CatalogWriter) -> None:
    _, catalog, graph = setup(write_catalog)
    plan = plan_with_state(catalog, graph, MemoryState())
    assert [s.action for s in plan.steps] == [Action.BUILD] * len(plan.steps)
    assert set(reasons(plan)["java:17-debian12"]) == {"never published"}
    keys = [s.variant.key for s in plan.steps]
    assert (
        keys.index("debian:12")
        < keys.index("java:17-debian12")
        < keys.index("tomcat:10-java17-debian12")
    )


def test_unchanged_catalog_plans_zero_builds(write_catalog: CatalogWriter) -> None:
    _, catalog, graph = setup(write_catalog)
    state = MemoryState()
    publish_all(plan_with_state(catalog, graph, state), state)
    assert plan_with_state(catalog, graph, state).builds() == []


def test_touching_a_leaf_dockerfile_rebuilds_only_that_leaf(write_catalog: CatalogWriter) -> None:
    path, catalog, graph = setup(write_catalog)
    state = MemoryState()
    publish_all(plan_with_state(catalog, graph, state), state)
    (path.parent / "python" / "Dockerfile").write_text("FROM x\nRUN true\n")
    assert reasons(plan_with_state(catalog, graph, state)) == {
        "python:3.11-debian12": ["Dockerfile changed"]
    }


def test_context_and_args_changes_are_named(write_catalog: CatalogWriter) -> None:
    path, catalog, graph = setup(write_catalog)
    state = MemoryState()
    publish_all(plan_with_state(catalog, graph, state), state)
    (path.parent / "tomcat" / "server.xml").write_text("<Server/>")
    (path.parent / "tomcat" / ".dockerignore").write_text("*.md\n")
    plan = plan_with_state(catalog, graph, state)
    assert set(reasons(plan)) == {"tomcat:10-java17-debian12", "tomcat:10-java17-centos7.5.1804"}
    assert reasons(plan)["tomcat:10-java17-debian12"] == ["build context changed"]
    publish_all(plan, state)
    (path.parent / "tomcat" / "README.md").write_text("ignored by .dockerignore")
    assert plan_with_state(catalog, graph, state).builds() == []


def test_changing_the_package_list_rebuilds_the_os_and_its_subtree(
    write_catalog: CatalogWriter,
) -> None:
    path, catalog, graph = setup(write_catalog)
    state = MemoryState()
    publish_all(plan_with_state(catalog, graph, state), state)
    path.write_text(path.read_text().replace("[ca-certificates]", "[ca-certificates, curl]"))
    catalog, graph = validate(path)
    found = reasons(plan_with_state(catalog, graph, state))
    assert found == {
        "debian:12": ["bootstrap parameters changed (suite, packages, mirror...)"],
        "java:17-debian12": ["parent debian:12 is rebuilt"],
        "python:3.11-debian12": ["parent debian:12 is rebuilt"],
        "tomcat:10-java17-debian12": ["parent java:17-debian12 is rebuilt"],
    }


def test_upstream_pin_and_republished_parent_are_explained(write_catalog: CatalogWriter) -> None:
    path, catalog, graph = setup(write_catalog)
    state = MemoryState()
    publish_all(plan_with_state(catalog, graph, state), state)
    # The OS image is republished out of band (say, a security rebuild): same inputs, new digest.
    debian_ref = "r.test/my/debian:12"
    old = state.images[debian_ref]
    state.publish(debian_ref, Published("sha256:" + "c" * 64, old.fingerprint, old.inputs))
    path.write_text(path.read_text().replace(DIGEST_A, "b" * 64))
    catalog, graph = validate(path)
    found = reasons(plan_with_state(catalog, graph, state))
    assert found["centos:7.5.1804"] == [
        "upstream centos:7.5.1804 moved from sha256:aaaaaaaaaaaa.. to sha256:bbbbbbbbbbbb.."
    ]
    moved = found["java:17-debian12"][0]
    assert moved.startswith("parent debian:12 moved from sha256:") and moved.endswith(
        "to sha256:cccccccccccc.."
    )
    assert "debian:12" not in found


def test_a_parent_outside_the_selection_is_judged_as_published(
    write_catalog: CatalogWriter,
) -> None:
    """A child rebuilt alone on a parent someone else republished is current afterwards.

    Without this, every cascade of the child would rebuild it again, because its
    parent (foreign, outside the run) would always "be rebuilt".
    """
    _, catalog, graph = setup(write_catalog)
    state = MemoryState()
    digests: dict[str, str] = {}
    publish_all(plan_with_state(catalog, graph, state), state, digests)
    java = "r.test/my/java:17-debian12"
    state.publish(java, Published("sha256:" + "d" * 64, None, {}))  # no socle fingerprint
    child = {"tomcat:10-java17-debian12"}
    first = plan_with_state(catalog, graph, state, selected=child)
    assert reasons(first)["java:17-debian12"] == [
        "the published image carries no socle fingerprint"
    ]
    assert reasons(first)["tomcat:10-java17-debian12"] == [
        "parent java:17-debian12 moved from sha256:"
        f"{digests['java:17-debian12'][7:19]}.. to sha256:dddddddddddd.."
    ]
    # The child is rebuilt on the republished java, then the next cascade finds it current.
    (tomcat,) = [s for s in first.steps if s.variant.key in child]
    state.publish(
        tomcat.variant.ref(first.registry),
        Published("sha256:" + "e" * 64, tomcat.fingerprint, tomcat.inputs, "sha256:" + "d" * 64),
    )
    again = plan_with_state(catalog, graph, state, selected=child)
    assert "tomcat:10-java17-debian12" not in reasons(again)
    # A run of everything still rebuilds the foreign parent and so its child.
    whole = reasons(plan_with_state(catalog, graph, state))
    assert whole["tomcat:10-java17-debian12"] == ["parent java:17-debian12 is rebuilt"]


def test_plan_json_contract(write_catalog: CatalogWriter) -> None:
    import json

    _, catalog, graph = setup(write_catalog)
    data = json.loads(plan_with_state(catalog, graph, MemoryState()).to_json())
    first = data["images"][0]
    assert {"name", "version", "variant", "refs", "fingerprint", "action", "reasons"} <= set(first)
    assert first["action"] == "build" and first["fingerprint"].startswith("sha256:")
    assert (first["architectures"], first["index"]) == (["amd64"], False)


# --- properties ------------------------------------------------------------------------------


def random_catalog(levels: list[int], versions: int) -> str:
    lines = ["registry: r.test", "namespace: p", "images:"]
    previous: list[str] = []
    for depth, width in enumerate(levels):
        current = []
        for i in range(width):
            name = f"l{depth}i{i}"
            current.append(name)
            if depth == 0:
                pins = {str(v + 1): {"digest": f"sha256:{v:064d}"} for v in range(versions)}
                lines.append(f"  {name}: {{upstream: {name}, versions: {pins}}}")
            else:
                parent = previous[i % len(previous)]
                lines.append(f"  {name}: {{parents: [{parent}], context: ctx, versions: ['1']}}")
        previous = current
    return "\n".join(lines) + "\n"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    levels=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    versions=st.integers(1, 3),
    changed=st.integers(0, 100),
)
def test_never_a_child_before_its_parent_and_steady_state_is_empty(
    write_catalog: CatalogWriter, levels: list[int], versions: int, changed: int
) -> None:
    path = write_catalog(random_catalog(levels, versions), contexts=("ctx",))
    catalog, graph = validate(path)
    state = MemoryState()
    plan = plan_with_state(catalog, graph, state)
    seen: set[str] = set()
    for step in plan.steps:
        assert step.variant.parent is None or step.variant.parent.key in seen
        seen.add(step.variant.key)
    publish_all(plan, state)
    assert plan_with_state(catalog, graph, state).builds() == []
    # Drop one published image: exactly it and its descendants are rebuilt.
    victim = plan.steps[changed % len(plan.steps)].variant
    del state.images[victim.ref(catalog.registry)]
    rebuilt = {s.variant.key for s in plan_with_state(catalog, graph, state).builds()}
    assert rebuilt == {victim.key} | {d.key for d in graph.descendants(victim)}
