"""A pipeline's jobs against a fake registry: parent checks, exact tags only, promote."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.errors import InputError, SocleError
from socle.events import Status
from socle.job import BuildJob, JobSettings
from socle.registry.client import RegistryClient
from socle.registry.state import RegistryState
from socle.validate import validate
from tests.conftest import CatalogWriter
from tests.unit.registry.registry_fakes import FakeRegistry
from tests.unit.test_executor import CATALOG, FakeBuilder, setup

WRITES = ("PUT", "POST", "PATCH", "DELETE")
FLOATING = {"t/mid": {"1.0", "1", "1-base1", "2.0", "2", "2-base1"}, "t/other": {"9"}}


class Pipeline:
    """What a CI engine runs: one `socle build --only KEY --no-cascade` per job, then promote."""

    def __init__(self, path: Path, client: RegistryClient, builder: FakeBuilder) -> None:
        self.path = path
        self.client = client
        self.builder = builder

    def job(self, *only: str, cascade: bool = False) -> BuildJob:
        catalog, graph = validate(self.path)
        state = RegistryState(self.client, cache=self.path.parent / "cache")
        settings = JobSettings(only=only, cascade=cascade)
        job = BuildJob(catalog, graph, state, settings, lock_dir=self.path.parent / "locks")
        job.builder = self.builder  # type: ignore[misc]  # the fake, instead of buildah
        return job

    def build(self, key: str, expected: str | None = None) -> dict[str, Status]:
        job = self.job(key)
        plan = job.plan()
        job.check_parents(plan, expected)
        return {o.key: o.status for o in job.execute(plan) if o.key == key}

    def promote(self) -> list[str]:
        job = self.job()
        return job.promote(job.plan())


def pipeline(write_catalog: CatalogWriter, registry: FakeRegistry, **broken: str) -> Pipeline:
    """test_executor's catalog, where `other` also holds a floating tag (`9`)."""
    client, path = setup(write_catalog, registry)
    text = path.read_text()
    assert 'parents: [base]\n    versions: ["9"]' in CATALOG
    path.write_text(text.replace('versions: ["9"]', 'default_parent: base:1\n    versions: ["9"]'))
    return Pipeline(path, client, FakeBuilder(broken=list(broken.values())))


def floating(registry: FakeRegistry) -> dict[str, set[str]]:
    """The floating tags each family holds now."""
    return {name: tags & set(registry.repo(name).tags) for name, tags in FLOATING.items()}


def writes(registry: FakeRegistry) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in registry.requests if r.method in WRITES]


def test_a_job_before_its_parent_is_published_is_refused_naming_it(
    write_catalog: CatalogWriter,
) -> None:
    jobs = pipeline(write_catalog, FakeRegistry())
    with pytest.raises(SocleError) as raised:
        jobs.build("mid:1.0-base1")
    assert raised.value.message == "mid:1.0-base1: its parent base:1 is not published yet"
    assert raised.value.hint == "the job that builds base:1 must succeed first"
    assert jobs.builder.built == []


def test_a_job_handed_another_parent_digest_is_refused_naming_both(
    write_catalog: CatalogWriter,
) -> None:
    jobs = pipeline(write_catalog, FakeRegistry())
    jobs.build("base:1")
    published = jobs.job().plan().steps[0].published
    assert published is not None
    wrong = "sha256:" + "0" * 64
    with pytest.raises(SocleError) as raised:
        jobs.build("mid:1.0-base1", wrong)
    assert raised.value.message == (
        f"mid:1.0-base1: its parent base:1 is published as {published.digest}, "
        f"not {wrong} as the pipeline expects"
    )
    assert "run the pipeline again from that parent" in (raised.value.hint or "")
    assert jobs.builder.built == []
    assert jobs.build("mid:1.0-base1", published.digest) == {"mid:1.0-base1": Status.BUILT}


def test_a_parent_inside_the_selection_is_not_checked_but_expect_parent_needs_one_outside(
    write_catalog: CatalogWriter,
) -> None:
    jobs = pipeline(write_catalog, FakeRegistry())
    cascade = jobs.job("base", cascade=True)
    cascade.check_parents(cascade.plan())  # base builds first in the same run
    with pytest.raises(InputError) as raised:
        cascade.check_parents(cascade.plan(), "sha256:" + "0" * 64)
    assert raised.value.message.startswith("--expect-parent: base:1, leaf:3-mid2.0-base1, ")
    root = jobs.job("base:1")
    with pytest.raises(InputError, match="build on no parent outside the selection"):
        root.check_parents(root.plan(), "sha256:" + "0" * 64)
    everything = jobs.job()
    everything.check_parents(everything.plan(), None)


def test_jobs_set_exact_tags_only_a_retry_writes_nothing_and_promote_moves_the_rest(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    jobs = pipeline(write_catalog, registry)
    for key in ("base:1", "mid:1.0-base1", "mid:2.0-base1", "other:9-base1"):
        assert jobs.build(key) == {key: Status.BUILT}
    assert floating(registry) == {"t/mid": set(), "t/other": set()}
    assert not [w for w in writes(registry) if "/socle-moves/" in w], "no tag move recorded"
    assert registry.repo("t/mid").tags.keys() == {"1.0-base1", "2.0-base1"}

    before = writes(registry)
    assert "PUT /v2/t/mid/manifests/2.0-base1" in before
    assert jobs.build("mid:2.0-base1") == {"mid:2.0-base1": Status.SKIPPED}
    assert writes(registry) == before, "a retried job wrote to the registry"

    assert jobs.build("leaf:3-mid2.0-base1") == {"leaf:3-mid2.0-base1": Status.BUILT}
    assert jobs.promote() == []
    assert floating(registry) == FLOATING
    mid = registry.repo("t/mid").tags
    assert mid["2"] == mid["2.0"] == mid["2-base1"] == mid["2.0-base1"]
    assert mid["1"] == mid["1.0"] == mid["1-base1"] == mid["1.0-base1"]
    before = writes(registry)
    assert jobs.promote() == []
    assert writes(registry) == before, "a second promote wrote to the registry"


def test_promote_names_a_family_with_a_variant_missing_or_failed_and_moves_nothing_of_it(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    jobs = pipeline(write_catalog, registry, broken="mid:2.0")
    for key in ("base:1", "mid:1.0-base1", "other:9-base1"):
        jobs.build(key)
    assert jobs.promote() == [
        "mid: not promoted, 1 variant(s) not current: mid:2.0-base1 (never published)",
        "leaf: not promoted, 1 variant(s) not current: leaf:3-mid2.0-base1 (never published)",
    ]
    assert floating(registry) == {"t/mid": set(), "t/other": {"9"}}

    assert jobs.build("mid:2.0-base1") == {"mid:2.0-base1": Status.FAILED}
    assert jobs.promote()[0].startswith("mid: not promoted, 1 variant(s) not current: mid:2.0")
    assert floating(registry) == {"t/mid": set(), "t/other": {"9"}}


def test_a_cascading_only_run_still_moves_its_families_tags(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    jobs = pipeline(write_catalog, registry)
    job = jobs.job("base", cascade=True)
    assert job.moves_floating_tags and not jobs.job("base:1").moves_floating_tags
    job.execute(job.plan())
    assert floating(registry) == FLOATING


def test_a_run_needing_emulation_this_host_lacks_is_refused_before_any_build(
    write_catalog: CatalogWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socle.emulation

    real = socle.emulation.require_emulation
    unregistered = tmp_path / "binfmt_misc"  # binfmt_misc not mounted there
    monkeypatch.setattr(
        socle.emulation,
        "require_emulation",
        lambda arch: real(arch, root=unregistered, native="amd64"),
    )
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    path.write_text(path.read_text().replace("images:", "architectures: [amd64, arm64]\nimages:"))
    builder = FakeBuilder()
    made = Pipeline(path, client, builder).job()
    plan = made.plan()
    puts = len(registry.seen("PUT"))
    with pytest.raises(SocleError) as caught:
        made.execute(plan)
    assert caught.value.message == (
        f"cannot run arm64 programs on this amd64 machine: binfmt_misc is not mounted at "
        f"{unregistered}"
    )
    assert "qemu-user-static" in (caught.value.hint or "")
    assert builder.built == [] and len(registry.seen("PUT")) == puts  # nothing was built


def test_a_run_with_nothing_to_build_makes_no_gate_no_signer_and_runs_no_git(
    write_catalog: CatalogWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socle.executor

    registry = FakeRegistry()
    jobs = pipeline(write_catalog, registry)
    made: list[str] = []
    gates, publishers = BuildJob.gates, BuildJob.publishers
    monkeypatch.setattr(BuildJob, "gates", lambda job, b: made.append("gates") or gates(job, b))
    monkeypatch.setattr(
        BuildJob, "publishers", lambda job: made.append("publishers") or publishers(job)
    )
    of = socle.executor.Revision.of
    monkeypatch.setattr(
        socle.executor.Revision, "of", lambda folder: made.append("git") or of(folder)
    )
    job = jobs.job(cascade=True)
    assert {o.status for o in job.execute(job.plan())} == {Status.BUILT}
    assert made == ["gates", "publishers", "git"]

    made.clear()
    job = jobs.job(cascade=True)
    plan = job.plan()
    assert job.pending(plan) == 0
    assert {o.status for o in job.execute(plan)} == {Status.SKIPPED}
    assert made == []
