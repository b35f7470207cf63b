"""push_layout and copy against in-memory registries (one or two hosts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socle.errors import InputError
from socle.oci.media import OCI_INDEX
from socle.oci.reference import Reference
from tests.unit.registry.registry_fakes import HOST, FakeHosts, FakeRegistry, MakeClient
from tests.unit.registry.registry_images import digest_of, index_of, tiny_image, write_layout

OTHER = "127.0.0.2:5000"


def store(
    fake: FakeRegistry, repository: str, manifest: bytes, media_type: str, blobs: dict[str, bytes]
) -> None:
    repo = fake.repo(repository)
    repo.blobs.update(blobs)
    repo.manifests[digest_of(manifest)] = (media_type, manifest)


def test_push_layout_uploads_blobs_and_puts_by_digest(
    make_client: MakeClient, fake: FakeRegistry, tmp_path: Path
) -> None:
    image = tiny_image("hello")
    dst = Reference.parse(f"{HOST}/os/debian:ignored")
    manifest = make_client(fake).push_layout(write_layout(tmp_path, image), dst)
    assert manifest.data == image.manifest
    repo = fake.repo("os/debian")
    assert repo.blobs == image.blobs
    assert repo.manifests[image.digest][1] == image.manifest
    assert repo.tags == {}
    assert fake.seen("PUT", "/manifests/")[0].url.path.endswith(image.digest)


def test_push_layout_merges_annotations_into_a_canonical_document(
    make_client: MakeClient, fake: FakeRegistry, tmp_path: Path
) -> None:
    image = tiny_image("hello")
    annotations = {"org.opencontainers.image.base.name": "127.0.0.1:5000/os/base:12"}
    manifest = make_client(fake).push_layout(
        write_layout(tmp_path, image), Reference.parse(f"{HOST}/os/debian"), annotations=annotations
    )
    expected = json.loads(image.manifest) | {"annotations": annotations}
    assert manifest.data == json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    assert manifest.digest == digest_of(manifest.data) != image.digest
    assert fake.repo("os/debian").manifests[manifest.digest][1] == manifest.data


def test_push_layout_mounts_from_sibling_repositories(
    make_client: MakeClient, fake: FakeRegistry, tmp_path: Path
) -> None:
    image = tiny_image("hello")
    fake.repo("os/base").blobs.update(image.blobs)
    make_client(fake).push_layout(
        write_layout(tmp_path, image), Reference.parse(f"{HOST}/os/debian"), mount_from=["os/base"]
    )
    assert len(fake.seen("POST", "mount=")) == 2
    assert not fake.seen("PUT", "/blobs/uploads/")


def test_push_layout_rejects_a_layout_with_several_manifests(
    make_client: MakeClient, fake: FakeRegistry, tmp_path: Path
) -> None:
    write_layout(tmp_path, tiny_image("a"))
    index = json.loads((tmp_path / "index.json").read_text())
    index["manifests"] *= 2
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(InputError, match="expected exactly one"):
        make_client(fake).push_layout(tmp_path, Reference.parse(f"{HOST}/os/debian"))


def test_copy_index_within_a_registry_mounts_every_blob(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    images = [tiny_image("amd"), tiny_image("arm", architecture="arm64")]
    for image in images:
        store(fake, "staging/java", image.manifest, image.media_type, image.blobs)
    index = index_of(images)
    store(fake, "staging/java", index, OCI_INDEX, {})

    src = Reference.parse(f"{HOST}/staging/java").with_digest(digest_of(index))
    copied = make_client(fake).copy(src, Reference.parse(f"{HOST}/release/java:17"))

    assert copied.digest == digest_of(index)
    release = fake.repo("release/java")
    assert set(release.manifests) == {digest_of(index), *(i.digest for i in images)}
    assert release.manifests[digest_of(index)][1] == index
    assert release.tags == {"17": digest_of(index)}
    assert len(fake.seen("POST", "mount=")) == 4
    assert not fake.seen("PUT", "/blobs/uploads/")
    assert not fake.seen("GET", "/blobs/")


def test_copy_between_registries_streams_blobs(make_client: MakeClient) -> None:
    hosts = FakeHosts()
    image = tiny_image("hello")
    store(hosts[HOST], "os/debian", image.manifest, image.media_type, image.blobs)
    client = make_client(hosts)

    src = Reference.parse(f"{HOST}/os/debian").with_digest(image.digest)
    copied = client.copy(src, Reference.parse(f"{OTHER}/mirror/debian"))

    assert copied.digest == image.digest
    mirror = hosts[OTHER].repo("mirror/debian")
    assert mirror.blobs == image.blobs
    assert mirror.manifests[image.digest][1] == image.manifest
    assert len(hosts[HOST].seen("GET", "/blobs/")) == 2
    assert not hosts[OTHER].seen("POST", "mount=")

    before = len(hosts[OTHER].requests)
    client.copy(src, Reference.parse(f"{OTHER}/mirror/debian"))
    assert [r.method for r in hosts[OTHER].requests[before:]] == ["HEAD"]  # already there
