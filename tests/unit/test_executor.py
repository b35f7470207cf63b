"""The executor against fakes of its edges: order, blocking, all-or-nothing tags."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx

from socle.builders.interface import BuildFailed, BuildRequest, BuildResult, RunResult
from socle.events import Event, Status
from socle.executor import Executor, RunOptions
from socle.localimage import pull_layout
from socle.oci.reference import Reference
from socle.planning import plan_with_state
from socle.registry.client import RegistryClient
from socle.registry.state import RegistryState
from socle.validate import validate
from tests.conftest import CatalogWriter
from tests.unit.registry.registry_fakes import FakeRegistry
from tests.unit.registry.registry_images import tiny_image, write_layout

HOST = "registry.test"


class FakeBuilder:
    """Writes a tiny layout per build; fails the images named in `broken`."""

    name = "fake"

    def __init__(self, broken: Sequence[str] = ()) -> None:
        self.broken = set(broken)
        self.built: list[str] = []

    def build(self, request: BuildRequest) -> BuildResult:
        self.built.append(request.name)
        if any(b in request.name for b in self.broken):
            raise BuildFailed(request.name, "STEP 2/2: RUN false\nerror: exit status 1")
        write_layout(request.output, tiny_image(request.name + str(len(self.built))))
        return BuildResult(request.output, "")

    def load(self, layout: Path, name: str) -> None: ...

    def run(
        self, name: str, command: Sequence[str], *, user: str | None = None, network: str = "none"
    ) -> RunResult:
        return RunResult(0, "")

    def remove(self, name: str) -> None: ...


CATALOG = f"""
registry: {HOST}
namespace: t
images:
  base:
    upstream: {HOST}/up/base
    versions: {{"1": {{digest: "%s"}}}}
  mid:
    parents: [base]
    default_parent: base:1
    versions: ["1.0", "2.0"]
  leaf:
    parents: ["mid:2.0-base1"]
    versions: ["3"]
  other:
    parents: [base]
    versions: ["9"]
"""


def setup(write_catalog: CatalogWriter, registry: FakeRegistry) -> tuple[RegistryClient, Path]:
    client = RegistryClient(transport=httpx.MockTransport(registry), sleep=lambda _: None)
    path = write_catalog("", contexts=("mid", "leaf", "other"))
    layout = write_layout(path.parent / "up", tiny_image("base"))
    manifest = client.push_layout(layout, Reference(HOST, "up/base"))
    path.write_text(CATALOG % manifest.digest)
    return client, path


def run(
    path: Path, client: RegistryClient, builder: FakeBuilder
) -> tuple[dict[str, Status], list[Event]]:
    catalog, graph = validate(path)
    events: list[Event] = []
    state = RegistryState(client, cache=path.parent / "cache")
    plan = plan_with_state(catalog, graph, state)

    def fetch(ref: Reference, layout: Path) -> Path:  # the skopeo edge, through the fake instead
        return pull_layout(client, ref, layout).layout

    executor = Executor(
        catalog,
        graph,
        client=client,
        builder=builder,
        observer=events.append,
        options=RunOptions(jobs=2),
        fetch=fetch,
    )
    outcomes = executor.run(plan)
    return {o.key: o.status for o in outcomes}, events


def tags(registry: FakeRegistry, repository: str) -> set[str]:
    return set(registry.repo(repository).tags)


def test_everything_builds_parents_first_and_every_tag_moves(write_catalog: CatalogWriter) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    statuses, events = run(path, client, FakeBuilder())
    assert set(statuses.values()) == {Status.BUILT}
    built = [e.key for e in events if e.status is Status.BUILT]
    assert built.index("mid:2.0-base1") < built.index("leaf:3-mid2.0-base1")
    assert tags(registry, "t/mid") == {
        "1.0-base1",
        "1.0",
        "1-base1",
        "1",
        "2.0-base1",
        "2.0",
        "2-base1",
        "2",
    }
    # A second run finds everything current.
    statuses, _ = run(path, client, FakeBuilder())
    assert set(statuses.values()) == {Status.SKIPPED}


def test_a_failed_variant_blocks_its_subtree_and_freezes_its_family(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    run(path, client, FakeBuilder())
    before = {t: registry.repo("t/mid").tags[t] for t in tags(registry, "t/mid")}
    for name in ("mid", "other"):
        (path.parent / name / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN changed\n"
        )
    statuses, events = run(path, client, FakeBuilder(broken=["mid:2.0"]))
    assert statuses["mid:2.0-base1"] is Status.FAILED
    assert statuses["leaf:3-mid2.0-base1"] is Status.BLOCKED
    assert statuses["mid:1.0-base1"] is Status.BUILT and statuses["other:9-base1"] is Status.BUILT
    after = registry.repo("t/mid").tags
    # mid 1.0 got its new exact tag, but no floating tag of the family moved.
    assert after["1.0-base1"] != before["1.0-base1"]
    assert {t: after[t] for t in ("1.0", "1", "1-base1", "2.0", "2.0-base1")} == {
        t: before[t] for t in ("1.0", "1", "1-base1", "2.0", "2.0-base1")
    }
    assert any(e.status is Status.FAILED and "RUN false" in e.message for e in events)
