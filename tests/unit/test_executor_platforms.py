"""Variants of several architectures: one image per platform, published as one OCI index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from socle.bootstrap.mmdebstrap import BootstrapResult
from socle.builders.interface import BuildRequest, BuildResult
from socle.canonical import canonical_json, sha256_digest
from socle.core.state import FINGERPRINT, TESTS
from socle.errors import GateFailed
from socle.events import Event, Status
from socle.executor import Executor, Outcome, RunOptions
from socle.gates import Subject
from socle.localimage import pull_layout
from socle.oci.media import BASE_DIGEST, OCI_INDEX
from socle.oci.reference import Reference
from socle.planning import plan_with_state
from socle.registry.client import RegistryClient
from socle.registry.state import RegistryState
from socle.validate import validate
from tests.conftest import CatalogWriter
from tests.unit.registry.registry_fakes import FakeRegistry
from tests.unit.registry.registry_images import tiny_image, write_layout
from tests.unit.test_executor import FakeBuilder

HOST = "registry.test"
CATALOG = f"""
registry: {HOST}
namespace: t
architectures: [amd64, arm64]
images:
  base:
    upstream: {HOST}/up/base
    versions: {{"1": {{digest: "%s"}}}}
  tool:
    parents: [base]
    versions: ["1"]
  solo:
    parents: [base]
    architectures: [amd64]
    versions: ["2"]
"""


class PlatformBuilder(FakeBuilder):
    """Records each build's platform and parent; writes an image of that architecture."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[BuildRequest] = []
        self.loaded: list[str] = []

    def load(self, layout: Path, name: str) -> None:
        self.loaded.append(name)

    def build(self, request: BuildRequest) -> BuildResult:
        self.requests.append(request)
        arch = (request.platform or "linux/amd64").split("/")[1]
        write_layout(request.output, tiny_image(f"{request.name} {arch}", architecture=arch))
        return BuildResult(request.output, "")


class Gate:
    """Passes, except for the images of `refused` (a substring of the layout path)."""

    name = "tests"

    def __init__(self, refused: str | None = None) -> None:
        self.refused = refused
        self.seen: list[str] = []

    def check(self, subject: Subject) -> dict[str, str]:
        self.seen.append(subject.local_name)
        if self.refused is not None and self.refused in str(subject.layout):
            raise GateFailed(f"{subject.variant.key}: refused on {self.refused}")
        return {"test.gate": "passed", TESTS: "1 passed"}


class Signer:
    """Records what it signed, and which tags existed then."""

    name = "signature"

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self.signed: list[tuple[str, set[str]]] = []

    def publish(self, subject: Subject, ref: Reference) -> None:
        assert ref.digest is not None
        self.signed.append((ref.digest, set(self.registry.repo(ref.repository).tags)))


def upstream_index(client: RegistryClient, root: Path) -> tuple[str, dict[str, str]]:
    """`up/base` as an index of an amd64 and an arm64 image: (index digest, arch -> digest)."""
    platforms = {}
    entries = []
    for arch, variant in (("amd64", ""), ("arm64", "v8")):
        layout = write_layout(root / arch, tiny_image(f"base {arch}", architecture=arch))
        manifest = client.push_layout(layout, Reference(HOST, "up/base"))
        platforms[arch] = manifest.digest
        platform = {
            "architecture": arch,
            "os": "linux",
            **({"variant": variant} if variant else {}),
        }
        entries.append(
            {
                "mediaType": manifest.media_type,
                "digest": manifest.digest,
                "size": len(manifest.data),
                "platform": platform,
            }
        )
    data = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest = sha256_digest(data)
    client.put_manifest(Reference(HOST, "up/base", digest=digest), data, OCI_INDEX)
    return digest, platforms


def setup(
    write_catalog: CatalogWriter, registry: FakeRegistry
) -> tuple[RegistryClient, Path, str, dict[str, str]]:
    client = RegistryClient(transport=httpx.MockTransport(registry), sleep=lambda _: None)
    path = write_catalog("", contexts=("tool", "solo"))
    digest, platforms = upstream_index(client, path.parent / "up")
    path.write_text(CATALOG % digest)
    return client, path, digest, platforms


def execute(
    path: Path,
    client: RegistryClient,
    builder: FakeBuilder,
    *,
    gates: Sequence[Gate] = (),
    publishers: Sequence[Signer] = (),
) -> tuple[dict[str, Outcome], list[Event]]:
    catalog, graph = validate(path)
    events: list[Event] = []
    executor = Executor(
        catalog,
        graph,
        client=client,
        builder=builder,
        observer=events.append,
        options=RunOptions(jobs=2),
        gates=gates,
        publishers=publishers,
        fetch=lambda ref, layout: pull_layout(client, ref, layout).layout,
    )
    state = RegistryState(client, cache=path.parent / "cache")
    outcomes = executor.run(plan_with_state(catalog, graph, state))
    return {o.key: o for o in outcomes}, events


def manifest(client: RegistryClient, ref: str) -> dict[str, object]:
    found = client.get_manifest(Reference.parse(ref))
    return dict(json.loads(found.data))


def test_each_platform_is_built_on_its_parents_platform_and_published_as_one_index(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path, base_index, base = setup(write_catalog, registry)
    builder = PlatformBuilder()
    gate, signer = Gate(), Signer(registry)
    outcomes, _ = execute(path, client, builder, gates=[gate], publishers=[signer])
    assert {k: o.status for k, o in outcomes.items()} == {
        "base:1": Status.BUILT,
        "tool:1-base1": Status.BUILT,
        "solo:2-base1": Status.BUILT,
    }
    tool = [r for r in builder.requests if "tool" in r.name]
    # Each platform builds on the parent's image of that platform, loaded from this run's
    # copy, and records the parent under its published name.
    bases = [r.build_args["BASE_IMAGE"] for r in tool]
    assert [r.platform for r in tool] == ["linux/amd64", "linux/arm64/v8"]
    assert [b.rsplit("/", 1)[1] for b in bases] == ["base:1-amd64", "base:1-arm64"]
    assert all(b in builder.loaded for b in bases)
    assert {r.base_recorded_as for r in tool} == {f"{HOST}/t/base:1"}
    # The upstream index is re-published byte for byte, and its child is an index too.
    assert outcomes["base:1"].digest == base_index
    index = manifest(client, f"{HOST}/t/tool:1-base1")
    assert index["mediaType"] == OCI_INDEX
    entries = index["manifests"]
    assert isinstance(entries, list)
    assert [e["platform"] for e in entries] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    annotations = index["annotations"]
    assert isinstance(annotations, dict)
    assert annotations[BASE_DIGEST] == base_index  # index to index
    assert annotations[TESTS] == "amd64: 1 passed; arm64: 1 passed"
    platforms = {}
    for entry, arch in zip(entries, ("amd64", "arm64"), strict=True):
        own = manifest(client, f"{HOST}/t/tool@{entry['digest']}")["annotations"]
        assert isinstance(own, dict)
        assert own[BASE_DIGEST] == base[arch]  # platform manifest to platform manifest
        assert own["test.gate"] == "passed"
        platforms[arch] = own[FINGERPRINT]
    assert len({*platforms.values(), annotations[FINGERPRINT]}) == 3  # a fingerprint each
    # Every platform manifest and the index are signed, before any tag of the tool.
    signed = dict(signer.signed)
    tool_digests = {str(e["digest"]) for e in entries} | {outcomes["tool:1-base1"].digest}
    assert tool_digests <= set(signed)
    assert all(not signed[d] for d in tool_digests)
    # One architecture is one image, built on the parent's image of that platform.
    (solo,) = [r for r in builder.requests if "solo" in r.name]
    assert solo.platform == "linux/amd64"
    assert solo.build_args["BASE_IMAGE"] == bases[0]
    solo_manifest = manifest(client, f"{HOST}/t/solo:2-base1")
    assert solo_manifest["mediaType"] != OCI_INDEX
    solo_annotations = solo_manifest["annotations"]
    assert isinstance(solo_annotations, dict)
    assert solo_annotations[BASE_DIGEST] == base_index  # what the plan compares
    # Read back at the same levels, everything is current.
    again, _ = execute(path, client, PlatformBuilder())
    assert {o.status for o in again.values()} == {Status.SKIPPED}


def test_a_platform_that_fails_its_gates_blocks_the_whole_index(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path, _, _ = setup(write_catalog, registry)
    outcomes, events = execute(
        path, client, PlatformBuilder(), gates=[Gate(refused="tool_1-base1/arm64")]
    )
    tool = outcomes["tool:1-base1"]
    assert tool.status is Status.FAILED
    assert "refused on tool_1-base1/arm64" in (tool.error or "")
    # Not one manifest of the tool reached the registry: no index with a platform missing.
    assert registry.repo("t/tool").manifests == {}
    assert registry.repo("t/tool").tags == {}
    assert outcomes["solo:2-base1"].status is Status.BUILT  # its own family is unharmed
    assert outcomes["base:1"].status is Status.BUILT


def test_an_upstream_index_without_a_listed_platform_is_one_clear_error(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path, _, base = setup(write_catalog, registry)
    # Pin the upstream to its amd64 image alone: arm64 is listed but absent.
    text = path.read_text()
    path.write_text(text.replace(text.split('digest: "')[1].split('"')[0], base["amd64"]))
    outcomes, _ = execute(path, client, PlatformBuilder())
    base_outcome = outcomes["base:1"]
    assert base_outcome.status is Status.FAILED
    assert f"@{base['amd64']} is one image, not an index of linux/amd64, linux/arm64/v8" in (
        base_outcome.error or ""
    )
    assert registry.repo("t/base").manifests == {}  # refused before the copy
    assert outcomes["tool:1-base1"].status is Status.BLOCKED


def test_a_bootstrapped_os_is_bootstrapped_once_per_architecture(
    write_catalog: CatalogWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socle.bootstrap.mmdebstrap

    asked: list[tuple[str | None, dict[str, str]]] = []

    def fake_bootstrap(spec, out_dir, *, work_dir=None, labels=None):  # type: ignore[no-untyped-def]
        asked.append((spec.architecture, dict(labels or {})))
        arch = spec.architecture or "amd64"
        write_layout(out_dir, tiny_image(f"debian {arch}", architecture=arch))
        return BootstrapResult(out_dir, "", "", 0, 0.0, 0, "", arch)

    monkeypatch.setattr(socle.bootstrap.mmdebstrap, "bootstrap", fake_bootstrap)
    registry = FakeRegistry()
    client = RegistryClient(transport=httpx.MockTransport(registry), sleep=lambda _: None)
    path = write_catalog(
        f"""\
        registry: {HOST}
        namespace: t
        images:
          debian:
            bootstrap: {{suite: bookworm}}
            architectures: [amd64, arm64]
            versions: ["12"]
        """
    )
    outcomes, _ = execute(path, client, PlatformBuilder())
    assert outcomes["debian:12"].status is Status.BUILT
    assert [arch for arch, _ in asked] == ["amd64", "arm64"]
    fingerprints = {labels[FINGERPRINT] for _, labels in asked}
    assert len(fingerprints) == 2  # each platform image records its own fingerprint
    index = manifest(client, f"{HOST}/t/debian:12")
    entries = index["manifests"]
    assert isinstance(entries, list)
    assert [e["platform"]["architecture"] for e in entries] == ["amd64", "arm64"]
