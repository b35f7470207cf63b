"""Pending security updates as a rebuild reason: the detector against fakes of its edges.

The published OS image comes from a fake image source, apt's simulation from a
fake builder; what is checked is what `socle plan --security-updates` (and
`socle build`, which plans the same way) shows a user.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from socle.builders.interface import BuildRequest, BuildResult, RunResult
from socle.commands.display import plan_table
from socle.core.plan import Plan
from socle.core.state import MemoryState, Published
from socle.detectors import security_reasons
from socle.errors import SocleError
from socle.job import BuildJob, JobSettings
from socle.planning import plan_with_state
from socle.validate import validate
from tests.conftest import CatalogWriter
from tests.unit.test_localimage import FakeSource

MIRROR = "http://127.0.0.1:9/debian"
CATALOG = f"""
registry: r.test
namespace: my
images:
  debian:
    bootstrap: {{suite: bookworm, mirror: "{MIRROR}"}}
    versions: ["12"]
  java:
    parents: [debian]
    versions: ["17"]
"""
CHECKED = "socle-check/debian:12"


def inst(package: str, old: str, new: str) -> str:
    """One `apt-get -s upgrade` line offering `new` from the security archive."""
    return f"Inst {package} [{old}] ({new} Debian-Security:12/oldstable-security [amd64])\n"


POINT_RELEASE = (
    "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])\n"
)
THREE = (
    "Reading package lists...\n"
    + inst("perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2")
    + POINT_RELEASE
    + inst("libgcrypt20", "1.10.1-3", "1.10.1-3+deb12u1")
    + inst("liblzma5", "5.4.1-1", "5.4.1-1+deb12u2")
)


class AptBuilder:
    """A builder whose containers print `simulation` as apt's output; records what ran."""

    name = "fake"

    def __init__(self, simulation: str = "", exit_code: int = 0) -> None:
        self.simulation = simulation
        self.exit_code = exit_code
        self.loaded: list[str] = []
        self.removed: list[str] = []
        self.runs: list[tuple[str, list[str], str | None, str]] = []

    def build(self, request: BuildRequest) -> BuildResult:
        raise AssertionError("planning builds nothing")

    def load(self, layout: Path, name: str) -> None:
        assert (layout / "index.json").is_file(), "the published image is fetched first"
        self.loaded.append(name)

    def run(
        self, name: str, command: Sequence[str], *, user: str | None = None, network: str = "none"
    ) -> RunResult:
        assert name in self.loaded and name not in self.removed
        self.runs.append((name, list(command), user, network))
        return RunResult(self.exit_code, self.simulation, "E: mirror down\n")

    def remove(self, *names: str) -> None:
        self.removed.extend(names)


class PublishedRegistry:
    """What BuildJob reads: the published state, and `client` to fetch published images."""

    def __init__(self, state: MemoryState, source: FakeSource) -> None:
        self.state = state
        self.client = source

    def lookup(self, refs: Sequence[str]) -> dict[str, Published | None]:
        return self.state.lookup(refs)


def published(write_catalog: CatalogWriter) -> tuple[Path, PublishedRegistry]:
    """The catalog with everything published and current (the OS image in `FakeSource`)."""
    path = write_catalog(CATALOG, contexts=("java",))
    catalog, graph = validate(path)
    source = FakeSource()
    os_image = source.add_image("amd64")
    state = MemoryState()
    for step in plan_with_state(catalog, graph, state).steps:
        parent = step.variant.parent
        digest = os_image.digest if parent is None else "sha256:" + "b" * 64
        base = state.images[parent.ref("r.test")].digest if parent else None
        record = Published(digest, step.fingerprint, step.inputs, base)
        state.publish(step.variant.ref("r.test"), record)
    return path, PublishedRegistry(state, source)


def job_plan(
    path: Path, registry: PublishedRegistry, builder: AptBuilder, *, security: bool = True
) -> Plan:
    """The plan `socle plan --security-updates` makes, with the fakes as its edges."""
    catalog, graph = validate(path)
    settings = JobSettings(security_updates=security)
    job = BuildJob(catalog, graph, registry, settings, lock_dir=path.parent / "locks")  # type: ignore[arg-type]
    job.__dict__["builder"] = builder  # the cached property, set before first use
    return job.plan()


def shown(plan: Plan) -> str:
    console = Console(record=True, width=300, color_system=None)
    plan_table(plan, console)
    return console.export_text()


def reasons(plan: Plan) -> dict[str, list[str]]:
    return {s.variant.key: [r.text for r in s.reasons] for s in plan.builds()}


def test_pending_security_updates_rebuild_the_os_image_and_its_children(
    write_catalog: CatalogWriter,
) -> None:
    path, registry = published(write_catalog)
    builder = AptBuilder(THREE)

    plan = job_plan(path, registry, builder)

    text = (
        "3 pending security updates: libgcrypt20 1.10.1-3 -> 1.10.1-3+deb12u1, "
        "liblzma5 5.4.1-1 -> 5.4.1-1+deb12u2, perl-base 5.36.0-7+deb12u1 -> 5.36.0-7+deb12u2"
    )
    assert reasons(plan) == {
        "debian:12": [text],
        "java:17-debian12": ["parent debian:12 is rebuilt"],
    }
    assert [r.code for r in plan.steps[0].reasons] == ["security-updates"]
    table = shown(plan)
    assert text in table and "2 to build, 0 current, registry r.test" in table
    # The published image is checked in a throw-away copy, against the catalog's mirror.
    assert builder.loaded == builder.removed == [CHECKED]
    [(_, command, user, network)] = builder.runs
    assert (user, network) == ("0", "host")
    assert f"deb {MIRROR}-security bookworm-security main" in command[-1]


def test_the_check_runs_only_when_asked_and_only_on_published_os_images(
    write_catalog: CatalogWriter,
) -> None:
    path, registry = published(write_catalog)
    builder = AptBuilder(THREE)
    assert job_plan(path, registry, builder, security=False).builds() == []
    assert builder.loaded == []

    catalog, graph = validate(path)
    plan = plan_with_state(catalog, graph, registry)
    java = [v for v in graph.variants if v.image.name == "java"]
    assert security_reasons(catalog, plan, registry.client, builder, java) == {}
    assert builder.loaded == [], "only bootstrapped images are checked"
    unpublished = plan_with_state(catalog, graph, MemoryState())
    assert security_reasons(catalog, unpublished, registry.client, builder) == {}
    assert builder.loaded == [], "an image never published has nothing to update"


def test_no_pending_security_update_leaves_everything_current(
    write_catalog: CatalogWriter,
) -> None:
    path, registry = published(write_catalog)
    builder = AptBuilder("Reading package lists...\n" + POINT_RELEASE)
    plan = job_plan(path, registry, builder)
    assert plan.builds() == []
    assert "0 to build, 2 current" in shown(plan)
    assert builder.removed == [CHECKED]


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "1 pending security update: pkg0 1.0 -> 1.0+deb12u1"),
        (
            7,
            "7 pending security updates: pkg0 1.0 -> 1.0+deb12u1, pkg1 1.0 -> 1.0+deb12u1, "
            "pkg2 1.0 -> 1.0+deb12u1, pkg3 1.0 -> 1.0+deb12u1, pkg4 1.0 -> 1.0+deb12u1 "
            "and 2 more",
        ),
    ],
)
def test_the_reason_names_five_updates_and_counts_the_rest(
    write_catalog: CatalogWriter, count: int, expected: str
) -> None:
    path, registry = published(write_catalog)
    simulation = "".join(inst(f"pkg{i}", "1.0", "1.0+deb12u1") for i in range(count))
    plan = job_plan(path, registry, AptBuilder(simulation))
    assert reasons(plan)["debian:12"] == [expected]


def test_a_mirror_apt_cannot_reach_is_one_clear_error_and_the_copy_is_removed(
    write_catalog: CatalogWriter,
) -> None:
    path, registry = published(write_catalog)
    builder = AptBuilder(exit_code=90)  # the check script's "apt-get update failed"
    with pytest.raises(SocleError) as caught:
        job_plan(path, registry, builder)
    assert caught.value.message.splitlines()[0] == (
        f"apt in {CHECKED} could not update its package lists from its mirror"
    )
    assert "E: mirror down" in caught.value.message
    assert caught.value.hint is not None and "mirror" in caught.value.hint
    assert builder.removed == [CHECKED]
