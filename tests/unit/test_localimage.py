from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from socle.canonical import canonical_json, sha256_digest
from socle.errors import InputError
from socle.localimage import LayoutSource, pull_layout, restore_parent_blobs
from socle.oci.content import Descriptor, Manifest, Platform
from socle.oci.layout import read_image_layout, write_blob, write_image_layout, write_index
from socle.oci.media import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST
from socle.oci.reference import Reference


class FakeSource:
    """An ImageSource over a dict of blobs and manifests, counting what is fetched."""

    def __init__(self) -> None:
        self.manifests: dict[str, Manifest] = {}
        self.blobs: dict[str, bytes] = {}
        self.fetched: list[str] = []

    def add_image(self, arch: str) -> Descriptor:
        config = canonical_json(
            {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        )
        layer = f"layer for {arch}".encode()
        for blob in (config, layer):
            self.blobs[sha256_digest(blob)] = blob
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Descriptor(OCI_CONFIG, sha256_digest(config), len(config)).to_json(),
            "layers": [Descriptor(OCI_LAYER_GZIP, sha256_digest(layer), len(layer)).to_json()],
        }
        manifest = Manifest.of(canonical_json(doc))
        self.manifests[manifest.digest] = manifest
        return Descriptor(
            OCI_MANIFEST, manifest.digest, len(manifest.data), platform=Platform("linux", arch)
        )

    def add_index(self, *children: Descriptor) -> Manifest:
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [c.to_json() for c in children],
        }
        index = Manifest.of(canonical_json(doc))
        self.manifests["tag"] = self.manifests[index.digest] = index
        return index

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        found = self.manifests.get(ref.digest or "tag")
        return found.descriptor if found else None

    def get_manifest(self, ref: Reference) -> Manifest:
        self.fetched.append(ref.digest or "tag")
        return self.manifests[ref.digest or "tag"]

    def get_blob(self, ref: Reference, digest: str) -> bytes:
        self.fetched.append(digest)
        return self.blobs[digest]


REF = Reference.parse("127.0.0.1:5000/my/debian:12")


def test_the_wanted_platform_of_an_index_becomes_a_readable_layout(tmp_path: Path) -> None:
    source = FakeSource()
    amd, arm = source.add_image("amd64"), source.add_image("arm64")
    index = source.add_index(amd, arm)

    pulled = pull_layout(source, REF, tmp_path / "image", platform="linux/arm64")

    assert (pulled.digest, pulled.index_digest) == (arm.digest, index.digest)
    image = read_image_layout(pulled.layout)
    assert image.digest == arm.digest
    assert image.config["architecture"] == "arm64"
    assert amd.digest not in source.fetched  # only what the platform needs is fetched


def test_a_missing_platform_names_the_ones_there_are(tmp_path: Path) -> None:
    source = FakeSource()
    source.add_index(source.add_image("amd64"))
    with pytest.raises(InputError, match=r"has no linux/s390x image \(it has linux/amd64\)"):
        pull_layout(source, REF, tmp_path / "image", platform="linux/s390x")


def _tar(path: Path, name: str, data: bytes) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_a_childs_recompressed_parent_layer_becomes_the_parents_published_blob(
    tmp_path: Path,
) -> None:
    base = _tar(tmp_path / "base.tar", "bin/sh", b"#!" * 1000)
    own = _tar(tmp_path / "own.tar", "app", b"mine")
    config = {"architecture": "amd64", "os": "linux"}
    write_image_layout(tmp_path / "parent", layers=[base], config=config)
    write_image_layout(tmp_path / "child", layers=[base, own], config=config)
    parent = read_image_layout(tmp_path / "parent")
    # What buildah's export does: the same tar (diff_id), compressed again otherwise.
    child = read_image_layout(tmp_path / "child")
    again = gzip.compress(gzip.decompress(child.blob_path(child.layers[0].digest).read_bytes()), 1)
    moved = write_blob(tmp_path / "child", again, OCI_LAYER_GZIP)
    manifest = child.manifest.json()
    manifest["layers"][0] = moved.to_json()
    write_index(
        tmp_path / "child", [write_blob(tmp_path / "child", canonical_json(manifest), OCI_MANIFEST)]
    )
    assert read_image_layout(tmp_path / "child").layers[0].digest != parent.layers[0].digest

    ref = Reference("127.0.0.1:5000", "my/base", digest=parent.digest)
    put_back = restore_parent_blobs(LayoutSource(tmp_path / "parent"), ref, tmp_path / "child")

    restored = read_image_layout(tmp_path / "child")
    assert put_back == 1
    assert restored.layers[0] == parent.layers[0]
    assert (
        restored.blob_path(parent.layers[0].digest).read_bytes()
        == parent.blob_path(parent.layers[0].digest).read_bytes()
    )
    assert restored.layers[1] == child.layers[1] and restored.diff_ids == child.diff_ids
    assert restore_parent_blobs(LayoutSource(tmp_path / "parent"), ref, tmp_path / "child") == 0
