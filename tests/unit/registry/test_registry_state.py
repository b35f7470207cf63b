"""The published state: one request per reference, and nothing fetched twice in a run."""

from __future__ import annotations

import json
from pathlib import Path

from socle.core.state import FINGERPRINT
from socle.oci.media import OCI_MANIFEST
from socle.registry.state import RegistryState
from tests.unit.registry.registry_fakes import HOST, FakeRegistry, MakeClient, digest_of


def publish(fake: FakeRegistry, repository: str, tag: str, fingerprint: str) -> str:
    data = json.dumps({"schemaVersion": 2, "annotations": {FINGERPRINT: fingerprint}}).encode()
    digest = digest_of(data)
    fake.repo(repository).manifests[digest] = (OCI_MANIFEST, data)
    fake.repo(repository).tags[tag] = digest
    return digest


def counts(fake: FakeRegistry) -> dict[str, int]:
    return {
        "HEAD": len(fake.seen("HEAD", "/manifests/")),
        "GET tag": len([r for r in fake.seen("GET", "/manifests/") if "sha256:" not in r.url.path]),
        "GET digest": len(fake.seen("GET", "/manifests/sha256:")),
    }


FP = ["sha256:" + c * 64 for c in "0123456789"]


def catalog(fake: FakeRegistry) -> list[str]:
    """Eight published tags (two of them on one manifest) and one never published."""
    refs = [f"{HOST}/my/app:{i}" for i in range(8)]
    for i in range(7):
        publish(fake, "my/app", str(i), FP[i])
    fake.repo("my/app").tags["7"] = fake.repo("my/app").tags["0"]  # a second tag, same manifest
    return [*refs, f"{HOST}/my/app:missing"]


def test_a_cold_plan_is_one_get_per_tag_and_a_warm_one_one_head(
    fake: FakeRegistry, make_client: MakeClient, tmp_path: Path
) -> None:
    refs = catalog(fake)
    with RegistryState(make_client(fake), cache=tmp_path) as state:
        cold = state.lookup([*refs, *refs])  # asked twice: still one request each
    assert counts(fake) == {"HEAD": 0, "GET tag": len(refs), "GET digest": 0}
    assert [p.fingerprint if p else None for p in (cold[r] for r in refs)] == [
        *FP[:7],
        FP[0],
        None,
    ]
    fake.requests.clear()
    with RegistryState(make_client(fake), cache=tmp_path) as state:
        warm = state.lookup(refs)
    # Seen before: a HEAD each, the manifests read from the disk cache; the missing tag
    # was never seen, so it is asked with a GET (a 404 either way).
    assert counts(fake) == {"HEAD": len(refs) - 1, "GET tag": 1, "GET digest": 0}
    assert warm == cold


def test_a_moved_tag_costs_one_get_of_its_new_manifest_and_only_one(
    fake: FakeRegistry, make_client: MakeClient, tmp_path: Path
) -> None:
    refs = catalog(fake)[:8]
    with RegistryState(make_client(fake), cache=tmp_path) as state:
        state.lookup(refs)
    moved = publish(fake, "my/app", "0", FP[9])
    fake.repo("my/app").tags["7"] = moved  # both tags of the shared manifest move together
    fake.requests.clear()
    with RegistryState(make_client(fake), cache=tmp_path) as state:
        found = state.lookup(refs)
        again = state.lookup(refs)  # the same run plans twice (security updates): no new GET
    assert counts(fake) == {"HEAD": 2 * len(refs), "GET tag": 0, "GET digest": 1}
    assert found[refs[0]] == found[refs[7]] == again[refs[0]]
    assert found[refs[0]] is not None and found[refs[0]].digest == moved


def test_a_damaged_hint_file_only_costs_the_cold_path(
    fake: FakeRegistry, make_client: MakeClient, tmp_path: Path
) -> None:
    refs = catalog(fake)[:3]
    (tmp_path / "tags.json").write_text("{not json")
    with RegistryState(make_client(fake), cache=tmp_path) as state:
        found = state.lookup(refs)
    assert counts(fake)["GET tag"] == 3 and all(found.values())
    assert json.loads((tmp_path / "tags.json").read_text()) == sorted(refs)
