"""The executor against fakes of its edges: order, blocking, all-or-nothing tags."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from socle.builders.interface import BuildFailed, BuildRequest, BuildResult, RunResult
from socle.errors import GateFailed, SocleError
from socle.events import Event, Status
from socle.executor import Executor, Outcome, RunOptions
from socle.gates import Subject
from socle.journal import Journal
from socle.localimage import pull_layout
from socle.oci.layout import read_image_layout
from socle.oci.media import OCI_MANIFEST
from socle.oci.reference import Reference
from socle.planning import plan_with_state
from socle.registry.client import RegistryClient
from socle.registry.errors import AuthenticationFailed
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

    def remove(self, *names: str) -> None: ...


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


def test_a_failed_variant_shows_the_hint_of_its_error(write_catalog: CatalogWriter) -> None:
    class Refused(FakeBuilder):
        def build(self, request: BuildRequest) -> BuildResult:
            raise AuthenticationFailed(HOST, "the registry refused the configured credentials")

    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    statuses, events = run(path, client, Refused())
    assert statuses["mid:1.0-base1"] is Status.FAILED
    failed = next(e for e in events if e.key == "mid:1.0-base1" and e.status is Status.FAILED)
    assert failed.message == (
        f"authentication to {HOST} failed: the registry refused the configured credentials\n"
        f"hint: run `docker login {HOST}`"
    )


class Killed(BaseException):
    """The process dying: nothing in socle may catch it."""


class DyingRegistry(FakeRegistry):
    """A registry whose client dies after `after` tag PUTs once the tag phase has begun."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.armed = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        manifest_put = request.method == "PUT" and "/manifests/" in request.url.path
        journal = "/socle-moves/" in request.url.path
        if self.armed and manifest_put and not journal:
            if self.after == 0:
                raise Killed
            self.after -= 1
        return super().__call__(request)


def executor_for(path: Path, client: RegistryClient, events: list[Event]) -> Executor:
    catalog, graph = validate(path)
    return Executor(
        catalog,
        graph,
        client=client,
        builder=FakeBuilder(),
        observer=events.append,
        fetch=lambda ref, layout: pull_layout(client, ref, layout).layout,
    )


def floating(registry: FakeRegistry) -> dict[str, str]:
    """mid's floating tags and the digests they point at."""
    repo = registry.repo("t/mid")
    return {
        t: d for t, d in repo.tags.items() if t in ("1.0", "1", "1-base1", "2.0", "2", "2-base1")
    }


def test_a_kill_inside_the_tag_phase_is_recorded_seen_and_completed_first(
    write_catalog: CatalogWriter,
) -> None:
    registry = DyingRegistry(after=1)
    client, path = setup(write_catalog, registry)
    run(path, client, FakeBuilder())
    old = floating(registry)
    (path.parent / "mid" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN new\n")

    events: list[Event] = []
    executor = executor_for(path, client, events)

    def arm(event: Event) -> None:
        events.append(event)
        registry.armed = registry.armed or event.status is Status.TAGGING

    executor.observer = arm
    state = RegistryState(client, cache=path.parent / "cache")
    with pytest.raises(Killed):
        executor.run(plan_with_state(executor.catalog, executor.graph, state))

    # Half-moved: one of mid's floating tags is on the new build, the others are not.
    mixed = floating(registry)
    moved = {t for t in mixed if mixed[t] != old[t]}
    assert len(moved) == 1, mixed
    # Every family's moves were recorded before the first PUT (leaf is rebuilt with mid),
    # and a reader sees them.
    records = executor.journal.pending(["t/mid", "t/leaf", "t/other", "t/base"])
    assert [r.repository for r in records] == ["t/leaf", "t/mid"]
    assert {m.tag for m in records[1].moves} == set(old)
    assert "t/mid: an interrupted run left its floating tags half-moved" in records[1].describe()

    # The next run completes the record before it builds anything, then finds all current.
    registry.armed = False
    events.clear()
    again = executor_for(path, client, events)
    outcomes = again.run(plan_with_state(again.catalog, again.graph, state))
    assert [e.message.split(":")[0] for e in events[:1]] == ["t/leaf"]
    assert events[0].status is Status.TAGGING and "completing it" in events[0].message
    assert not any(e.status is Status.BUILDING for e in events)
    assert {o.status for o in outcomes} == {Status.SKIPPED}
    exact = registry.repo("t/mid").tags
    final = floating(registry)
    assert final["2.0"] == final["2"] == exact["2.0-base1"]
    assert final["1.0"] == final["1"] == exact["1.0-base1"]
    assert again.journal.pending(["t/mid", "t/leaf"]) == []


def test_a_record_that_is_not_socles_is_one_clear_error(write_catalog: CatalogWriter) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    catalog, _ = validate(path)
    junk = Reference(HOST, "t/socle-moves", tag="t--mid")
    client.put_manifest(junk, b'{"schemaVersion": 2, "annotations": {}}', OCI_MANIFEST)
    journal = Journal(client, HOST, catalog.namespace)
    with pytest.raises(SocleError) as raised:
        journal.pending(["t/mid"])
    assert "t/socle-moves:t--mid is not a socle move record" in raised.value.message
    assert "delete the tag t--mid of t/socle-moves" in (raised.value.hint or "")


class SlowBuilder(FakeBuilder):
    """Holds every build until `release` is set, like a long `RUN` step."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def build(self, request: BuildRequest) -> BuildResult:
        self.started.set()
        assert self.release.wait(timeout=10)
        return super().build(request)


def test_ctrl_c_stops_running_builds_before_they_push_or_tag(write_catalog: CatalogWriter) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    catalog, graph = validate(path)
    builder = SlowBuilder()

    started: list[str] = []

    def interrupt(event: Event) -> None:
        # Ctrl-C lands in the main thread while a build runs; that build ends a moment later.
        if event.status is Status.BUILDING and event.key and not event.key.startswith("base:"):
            started.append(event.key)
            if len(started) == 2:
                assert builder.started.wait(timeout=10)  # the first build is running
                threading.Timer(0.2, builder.release.set).start()
                raise KeyboardInterrupt

    executor = Executor(
        catalog,
        graph,
        client=client,
        builder=builder,
        observer=interrupt,
        fetch=lambda ref, layout: pull_layout(client, ref, layout).layout,
    )
    state = RegistryState(client, cache=path.parent / "cache")
    with pytest.raises(KeyboardInterrupt):
        executor.run(plan_with_state(catalog, graph, state))
    assert builder.release.is_set()  # the running build did finish building...
    for name in ("t/mid", "t/leaf", "t/other"):
        assert tags(registry, name) == set(), name  # ...and was neither pushed nor tagged
    assert not registry.seen("PUT", "/t/mid/manifests/")


class FakeGate:
    """A gate that logs when it runs, waits where told, and fails where told."""

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        after: FakeGate | None = None,
        barrier: threading.Barrier | None = None,
        fails: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.after = after  # ends only once this gate has ended, on the same image
        self.barrier = barrier
        self.fails = fails
        self.done: dict[str, threading.Event] = defaultdict(threading.Event)

    def check(self, subject: Subject) -> dict[str, str]:
        key = subject.variant.key
        self.log.append(f"{key} {self.name} start")
        if self.barrier is not None:
            self.barrier.wait()  # breaks (an error) unless its partner runs at the same time
        if self.after is not None:
            assert self.after.done[key].wait(timeout=10)
        if self.name == "scan":
            assert subject.inventory == f"inventory of {key}"
        if self.name == "sbom":
            subject.inventory = f"inventory of {key}"  # type: ignore[assignment]
        subject.notes.append(f"{self.name}: ok")
        subject.details[self.name] = True
        self.log.append(f"{key} {self.name} end")
        self.done[key].set()
        if self.fails:
            raise GateFailed(f"{self.name} failed for {key}")
        return {f"test.{self.name}": "passed", "test.last": self.name}


def gated_run(
    path: Path, client: RegistryClient, gates: Sequence[FakeGate]
) -> tuple[dict[str, Outcome], list[Event]]:
    catalog, graph = validate(path)
    events: list[Event] = []
    executor = Executor(
        catalog,
        graph,
        client=client,
        builder=FakeBuilder(),
        observer=events.append,
        options=RunOptions(jobs=1),
        gates=gates,
        fetch=lambda ref, layout: pull_layout(client, ref, layout).layout,
    )
    state = RegistryState(client, cache=path.parent / "cache")
    outcomes = executor.run(plan_with_state(catalog, graph, state))
    return {o.key: o for o in outcomes}, events


def base_and_other(path: Path) -> None:
    """Keep the upstream image and one child built on it."""
    text = path.read_text()
    path.write_text(text[: text.index("  mid:")] + text[text.index("  other:") :])


OTHER = "other:9-base1"


def test_the_image_tests_run_beside_the_sbom_and_the_scan_waits_for_the_inventory(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    base_and_other(path)
    log: list[str] = []
    sbom = FakeGate("sbom", log)
    scan = FakeGate("scan", log)
    # The tests end last: after the scan, which needed the SBOM's inventory.
    tests = FakeGate("tests", log, after=scan)
    outcomes, _ = gated_run(path, client, [tests, sbom, scan])
    other = outcomes[OTHER]
    assert other.status is Status.BUILT, other.error
    assert log.index(f"{OTHER} scan start") > log.index(f"{OTHER} sbom end")
    assert log.index(f"{OTHER} tests end") > log.index(f"{OTHER} scan end")
    # What the gates recorded is in their declared order, not the order they finished in.
    assert other.notes == ["tests: ok", "sbom: ok", "scan: ok"]
    assert list(other.details) == ["tests", "sbom", "scan"]


def test_the_tests_and_the_sbom_of_one_image_run_at_the_same_time(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    base_and_other(path)
    log: list[str] = []
    side_by_side = threading.Barrier(2, timeout=10)  # one after the other, it breaks
    gates = [
        FakeGate("tests", log, barrier=side_by_side),
        FakeGate("sbom", log, barrier=side_by_side),
    ]
    outcomes, _ = gated_run(path, client, gates)
    assert {o.status for o in outcomes.values()} == {Status.BUILT}


def test_the_pushed_manifest_is_the_same_whichever_gate_finishes_first(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    base_and_other(path)
    pushed = []
    for tests_last in (True, False):
        log: list[str] = []
        (path.parent / "other" / "Dockerfile").write_text(f"FROM scratch\nRUN {tests_last}\n")
        tests, sbom = FakeGate("tests", log), FakeGate("sbom", log)
        if tests_last:
            tests.after = sbom
        else:
            sbom.after = tests
        gated_run(path, client, [tests, sbom, FakeGate("scan", log)])
        ends = [line for line in log if line.startswith(OTHER) and line.endswith(" end")]
        assert (ends.index(f"{OTHER} tests end") > ends.index(f"{OTHER} sbom end")) is tests_last
        repo = registry.repo("t/other")
        manifest = json.loads(repo.manifests[repo.tags["9-base1"]][1])
        records = manifest["annotations"]
        pushed.append({k: v for k, v in records.items() if k.startswith("test.")})
    # Merged in the declared order: a key two gates record is the later-declared gate's.
    assert pushed[0] == pushed[1]
    assert pushed[0] == {
        "test.tests": "passed",
        "test.sbom": "passed",
        "test.scan": "passed",
        "test.last": "scan",
    }


def test_the_first_failed_gate_in_declared_order_is_the_one_reported(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    base_and_other(path)
    log: list[str] = []
    sbom = FakeGate("sbom", log, fails=True)
    # The tests fail too, but only after the SBOM has: declared first, theirs is the error.
    tests = FakeGate("tests", log, after=sbom, fails=True)
    scan = FakeGate("scan", log)
    outcomes, events = gated_run(path, client, [tests, sbom, scan])
    base = outcomes["base:1"]
    assert base.status is Status.FAILED
    assert base.error is not None and base.error.startswith("tests failed for base:1")
    assert "base:1 scan start" not in log  # it needs the SBOM, which failed
    assert not [e for e in events if e.status is Status.TESTING and e.message == "scan"]
    assert list(base.details) == ["tests"]  # as if the gates had run one after the other
    assert outcomes[OTHER].status is Status.BLOCKED
    assert tags(registry, "t/base") == set()


class Signer:
    """A publisher that holds mid 2.0's signature until its child's build has started."""

    name = "signature"

    def __init__(self, child_started: threading.Event, *, refuses: bool = False) -> None:
        self.child_started = child_started
        self.refuses = refuses

    def publish(self, subject: Subject, ref: Reference) -> None:
        if subject.variant.key != "mid:2.0-base1":
            return
        assert self.child_started.wait(timeout=10), "the child waited for the signature"
        if self.refuses:
            raise SocleError("the signer refused mid:2.0-base1")


class HoldingGate:
    """A gate that holds mid 2.0's gates until its child's build has started."""

    name = "tests"

    def __init__(self, child_started: threading.Event, *, refuses: bool = False) -> None:
        self.child_started = child_started
        self.refuses = refuses

    def check(self, subject: Subject) -> dict[str, str]:
        if subject.variant.key == "mid:2.0-base1":
            assert self.child_started.wait(timeout=10), "the child waited for its parent's gates"
            if self.refuses:
                raise GateFailed("mid:2.0-base1: 1 of 3 tests failed")
        return {}


class ChildWatcher(FakeBuilder):
    """Notes when the leaf's build starts, what it builds on, and what was loaded before."""

    def __init__(self) -> None:
        super().__init__()
        self.child_started = threading.Event()
        self.loaded: list[str] = []
        self.child_base = ""
        self.loaded_before_child: list[str] = []

    def build(self, request: BuildRequest) -> BuildResult:
        if "leaf" in request.name:
            self.child_base = request.build_args["BASE_IMAGE"]
            self.loaded_before_child = list(self.loaded)
            self.child_started.set()
        return super().build(request)

    def load(self, layout: Path, name: str) -> None:
        self.loaded.append(name)


def overlapped_run(
    path: Path,
    client: RegistryClient,
    builder: ChildWatcher,
    signer: Signer | None = None,
    gates: Sequence[HoldingGate] = (),
) -> tuple[dict[str, Outcome], list[Event]]:
    catalog, graph = validate(path)
    events: list[Event] = []
    executor = Executor(
        catalog,
        graph,
        client=client,
        builder=builder,
        observer=events.append,
        options=RunOptions(jobs=3),
        publishers=[signer] if signer is not None else [],
        gates=gates,
        fetch=lambda ref, layout: pull_layout(client, ref, layout).layout,
    )
    state = RegistryState(client, cache=path.parent / "cache")
    outcomes = executor.run(plan_with_state(catalog, graph, state))
    return {o.key: o for o in outcomes}, events


def manifest_puts(registry: FakeRegistry) -> list[str]:
    return [
        r.url.path.removeprefix("/v2/")
        for r in registry.requests
        if r.method == "PUT" and "/manifests/" in r.url.path and "socle-moves" not in r.url.path
    ]


def test_a_child_builds_while_its_parent_is_signed_and_is_published_after_it(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    builder = ChildWatcher()
    outcomes, events = overlapped_run(path, client, builder, Signer(builder.child_started))
    assert {o.status for o in outcomes.values()} == {Status.BUILT}
    puts = manifest_puts(registry)
    parent_tag = puts.index("t/mid/manifests/2.0-base1")
    leaf = [i for i, p in enumerate(puts) if p.startswith("t/leaf/")]
    assert leaf and min(leaf) > parent_tag, puts  # not even pushed by digest before
    # It was built on the digest its parent was published at.
    repo = registry.repo("t/leaf")
    manifest = json.loads(repo.manifests[repo.tags["3-mid2.0-base1"]][1])
    parent = registry.repo("t/mid").tags["2.0-base1"]
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == parent
    built = [e.key for e in events if e.status is Status.BUILT]
    assert built.index("mid:2.0-base1") < built.index("leaf:3-mid2.0-base1")


def test_a_child_built_beside_a_parent_that_is_then_refused_is_blocked_and_unpublished(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    builder = ChildWatcher()
    signer = Signer(builder.child_started, refuses=True)
    outcomes, events = overlapped_run(path, client, builder, signer)
    assert outcomes["mid:2.0-base1"].status is Status.FAILED
    leaf = outcomes["leaf:3-mid2.0-base1"]
    assert leaf.status is Status.BLOCKED and leaf.error == "mid:2.0-base1 failed"
    assert any(
        e.status is Status.BLOCKED and e.message == "not built: mid:2.0-base1 failed"
        for e in events
    )
    assert builder.child_started.is_set()  # its build did run...
    assert not [p for p in manifest_puts(registry) if p.startswith("t/leaf/")]  # ...unpublished
    assert tags(registry, "t/leaf") == set()
    assert outcomes["mid:1.0-base1"].status is Status.BUILT


def test_a_child_builds_on_its_local_parent_while_the_parents_gates_run(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    builder = ChildWatcher()
    outcomes, events = overlapped_run(
        path, client, builder, gates=[HoldingGate(builder.child_started)]
    )
    assert {o.status for o in outcomes.values()} == {Status.BUILT}
    # FROM the parent's final image in the builder's storage, loaded before the child began.
    assert re.fullmatch(r"socle-build/[0-9a-f]{8}/final/mid:2\.0-base1", builder.child_base)
    assert builder.child_base in builder.loaded_before_child
    # Published only after its parent: nothing of the leaf precedes the parent's exact tag.
    puts = manifest_puts(registry)
    parent_tag = puts.index("t/mid/manifests/2.0-base1")
    leaf = [i for i, p in enumerate(puts) if p.startswith("t/leaf/")]
    assert leaf and min(leaf) > parent_tag, puts
    # It records the digest its parent was published at, decided by the parent's gates.
    repo = registry.repo("t/leaf")
    manifest = json.loads(repo.manifests[repo.tags["3-mid2.0-base1"]][1])
    parent = registry.repo("t/mid").tags["2.0-base1"]
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == parent
    assert (
        manifest["annotations"]["org.opencontainers.image.base.name"] == f"{HOST}/t/mid:2.0-base1"
    )


def test_a_child_built_while_its_parent_is_refused_by_a_gate_is_blocked_and_unpublished(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    builder = ChildWatcher()
    gate = HoldingGate(builder.child_started, refuses=True)
    outcomes, events = overlapped_run(path, client, builder, gates=[gate])
    mid = outcomes["mid:2.0-base1"]
    assert mid.status is Status.FAILED and "1 of 3 tests failed" in (mid.error or "")
    leaf = outcomes["leaf:3-mid2.0-base1"]
    assert leaf.status is Status.BLOCKED and leaf.error == "mid:2.0-base1 failed"
    assert builder.child_started.is_set()  # its build did run...
    assert not [p for p in manifest_puts(registry) if p.startswith("t/leaf/")]  # ...unpublished
    assert not [p for p in manifest_puts(registry) if p.startswith("t/mid/manifests/2.0")]
    assert tags(registry, "t/leaf") == set()
    assert outcomes["mid:1.0-base1"].status is Status.BUILT


# -- an image's blobs go up while its gates run ----------------------------------------


class BlobWatcher:
    """A gate that waits until the registry holds the image's layers and config.

    It ends (and fails, when told) only once they are all there, and notes how
    many upload requests the registry had seen for the image by then.
    """

    name = "tests"

    def __init__(self, registry: FakeRegistry, repository: str, *, fails: bool = False) -> None:
        self.registry = registry
        self.repository = repository
        self.fails = fails
        self.manifest_puts_seen: int | None = None
        self.uploads_seen: int | None = None

    def check(self, subject: Subject) -> dict[str, str]:
        if subject.variant.image.repository != self.repository:
            return {}  # the upstream image: copied before its gates, nothing to wait for
        wanted = {b.digest for b in read_image_layout(subject.layout).manifest.blobs()}
        deadline = time.monotonic() + 10
        while not wanted <= set(self.registry.repo(self.repository).blobs):
            assert time.monotonic() < deadline, "the blobs were not uploaded during the gate"
            time.sleep(0.01)
        self.manifest_puts_seen = len(self.puts("/manifests/"))
        self.uploads_seen = len(self.puts("/blobs/uploads/"))
        if self.fails:
            raise GateFailed(f"tests failed for {subject.variant.key}")
        return {"test.tests": "passed"}

    def puts(self, fragment: str) -> list[httpx.Request]:
        return self.registry.seen("PUT", f"/v2/{self.repository}{fragment}")


def test_an_images_blobs_go_up_while_its_gates_run_then_only_its_manifest(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    base_and_other(path)
    gate = BlobWatcher(registry, "t/other")
    outcomes, _ = gated_run(path, client, [gate])  # type: ignore[list-item]
    assert outcomes[OTHER].status is Status.BUILT, outcomes[OTHER].error
    assert gate.manifest_puts_seen == 0  # the blobs were there before any manifest...
    assert gate.uploads_seen  # ...uploaded while the gate ran...
    assert len(gate.puts("/blobs/uploads/")) == gate.uploads_seen  # ...and none after it
    # The manifest pushed carries the gate's annotation and references those blobs.
    repo = registry.repo("t/other")
    manifest = json.loads(repo.manifests[repo.tags["9-base1"]][1])
    assert manifest["annotations"]["test.tests"] == "passed"
    assert {manifest["config"]["digest"], *(x["digest"] for x in manifest["layers"])} <= set(
        repo.blobs
    )


def test_a_refused_image_leaves_its_early_blobs_unreferenced_and_nothing_published(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    base_and_other(path)
    gate = BlobWatcher(registry, "t/other", fails=True)
    outcomes, _ = gated_run(path, client, [gate])  # type: ignore[list-item]
    other = outcomes[OTHER]
    assert other.status is Status.FAILED and other.error == f"tests failed for {OTHER}"
    repo = registry.repo("t/other")
    assert repo.blobs  # uploaded during the gate, referenced by nothing
    assert repo.manifests == {} and repo.tags == {}
    assert not gate.puts("/manifests/")


class RefusingUploads(FakeRegistry):
    """A registry that refuses every blob upload into one repository."""

    def __init__(self, repository: str) -> None:
        super().__init__()
        self.refused = f"/v2/{repository}/blobs/uploads/"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path.startswith(self.refused):
            self.requests.append(request)
            return httpx.Response(
                403, json={"errors": [{"code": "DENIED", "message": "quota exceeded"}]}
            )
        return super().__call__(request)


def test_a_failed_early_upload_fails_the_image_with_the_pushs_own_error(
    write_catalog: CatalogWriter,
) -> None:
    registry = RefusingUploads("t/other")
    client, path = setup(write_catalog, registry)
    base_and_other(path)
    log: list[str] = []
    outcomes, _ = gated_run(path, client, [FakeGate("tests", log)])
    other = outcomes[OTHER]
    assert other.status is Status.FAILED
    # The same one line a push of that layout by digest gives.
    layout = write_layout(path.parent / "again", tiny_image("again"))
    with pytest.raises(SocleError) as pushed:
        client.push_layout(layout, Reference(HOST, "t/other"))
    session = re.compile(r"uploads/\d+\?_state=s\d+")  # each push has its own session
    assert session.sub("uploads/N", other.error or "") == session.sub(
        "uploads/N", pushed.value.diagnostics()
    )
    assert f"hint: run `docker login {HOST}`" in (other.error or "")
    assert f"{OTHER} tests end" in log  # the gates ran; the image failed on its upload
    assert registry.repo("t/other").manifests == {} and tags(registry, "t/other") == set()


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, even in a suite started with SIGINT ignored (`cmd &`)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_during_the_gates_stops_the_early_upload_before_any_manifest(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    base_and_other(path)
    catalog, graph = validate(path)
    stopped: list[bool] = []

    class Interrupting:
        """Ctrl-C lands in the main thread while this gate runs, which then ends."""

        name = "tests"

        def check(self, subject: Subject) -> dict[str, str]:
            if subject.variant.image.repository == "t/other":
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
                deadline = time.monotonic() + 10
                while not executor._stopping.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)
                stopped.append(executor._stopping.is_set())
            return {}

    executor = Executor(
        catalog,
        graph,
        client=client,
        builder=FakeBuilder(),
        gates=[Interrupting()],  # type: ignore[list-item]
        fetch=lambda ref, layout: pull_layout(client, ref, layout).layout,
    )
    state = RegistryState(client, cache=path.parent / "cache")
    with pytest.raises(KeyboardInterrupt):
        executor.run(plan_with_state(catalog, graph, state))
    assert stopped == [True]  # the gate ended after the run was interrupted...
    assert not registry.seen("PUT", "/v2/t/other/manifests/")  # ...and no manifest went up
    assert tags(registry, "t/other") == set()
