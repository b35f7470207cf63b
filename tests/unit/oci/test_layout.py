from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from socle.canonical import canonical_json
from socle.oci.errors import LayoutError
from socle.oci.layout import read_image_layout, write_image_layout
from socle.oci.media import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST

CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-01-31T00:00:00Z",
    "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["bash"], "Labels": {"team": "platform"}},
    "history": [{"created": "2024-01-31T00:00:00Z", "created_by": "test"}],
}


def make_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def layers(tmp_path: Path) -> list[Path]:
    return [
        make_tar(tmp_path / "base.tar", {"etc/os-release": b"ID=debian\n", "bin/sh": b"\x7fELF"}),
        make_tar(tmp_path / "top.tar", {"app/run": b"#!/bin/sh\n"}),
    ]


def test_the_same_input_gives_the_same_digest_and_the_same_bytes(
    tmp_path: Path, layers: list[Path]
) -> None:
    first = write_image_layout(tmp_path / "a", layers=layers, config=CONFIG)
    second = write_image_layout(tmp_path / "b", layers=layers, config=dict(CONFIG))

    assert first == second
    assert first.startswith("sha256:")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_a_different_layer_gives_a_different_digest(tmp_path: Path, layers: list[Path]) -> None:
    other = make_tar(tmp_path / "other.tar", {"app/run": b"#!/bin/bash\n"})

    first = write_image_layout(tmp_path / "a", layers=layers, config=CONFIG)
    second = write_image_layout(tmp_path / "b", layers=[layers[0], other], config=CONFIG)

    assert first != second


def test_the_layout_follows_the_oci_image_layout_spec(tmp_path: Path, layers: list[Path]) -> None:
    out = tmp_path / "layout"
    digest = write_image_layout(
        out, layers=layers, config=CONFIG, annotations={"a": "b"}, ref_name="12"
    )

    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((out / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    [entry] = index["manifests"]
    assert entry["mediaType"] == OCI_MANIFEST
    assert entry["digest"] == digest
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "12"}
    manifest_bytes = (out / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert sha256(manifest_bytes) == digest
    assert entry["size"] == len(manifest_bytes)
    manifest = json.loads(manifest_bytes)
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER_GZIP] * 2
    assert manifest["annotations"] == {"a": "b"}


def test_layers_are_gzipped_reproducibly_and_diff_ids_hash_the_tars(
    tmp_path: Path, layers: list[Path]
) -> None:
    image = read_image_layout(_written(tmp_path, layers))

    for tar, descriptor, diff_id in zip(layers, image.layers, image.diff_ids, strict=True):
        blob = image.blob_path(descriptor.digest).read_bytes()
        assert sha256(blob) == descriptor.digest
        assert len(blob) == descriptor.size
        assert gzip.decompress(blob) == tar.read_bytes()
        assert diff_id == sha256(tar.read_bytes())
        assert blob[4:8] == b"\0\0\0\0", "gzip mtime must be 0"
        assert not blob[3] & 0x08, "gzip header must not carry a file name"


def test_reading_returns_what_was_written(tmp_path: Path, layers: list[Path]) -> None:
    out = tmp_path / "layout"
    digest = write_image_layout(out, layers=layers, config=CONFIG, ref_name="latest")

    image = read_image_layout(out)

    assert image.digest == digest
    assert image.manifest.media_type == OCI_MANIFEST
    assert sha256(image.manifest.data) == digest
    assert image.ref_name == "latest"
    assert image.config["config"]["Labels"] == {"team": "platform"}
    assert image.config["rootfs"]["type"] == "layers"
    assert len(image.diff_ids) == 2
    assert image.config_descriptor.media_type == OCI_CONFIG
    assert image.blob_path(image.config_descriptor.digest).is_file()


def test_json_is_canonical(tmp_path: Path, layers: list[Path]) -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == b'{"a":[1,{"c":3,"d":2}],"b":1}'
    image = read_image_layout(_written(tmp_path, layers))
    assert image.manifest.data == canonical_json(json.loads(image.manifest.data))


def test_a_given_rootfs_is_replaced_by_the_computed_one(tmp_path: Path, layers: list[Path]) -> None:
    config = {**CONFIG, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
    image = read_image_layout(_written(tmp_path, layers, config=config))
    assert image.diff_ids == tuple(sha256(tar.read_bytes()) for tar in layers)


def test_a_config_without_architecture_is_refused(tmp_path: Path, layers: list[Path]) -> None:
    with pytest.raises(LayoutError, match="architecture"):
        write_image_layout(tmp_path / "x", layers=layers, config={"os": "linux"})


def test_a_corrupt_blob_is_reported(tmp_path: Path, layers: list[Path]) -> None:
    out = _written(tmp_path, layers)
    image = read_image_layout(out)
    image.blob_path(image.config_descriptor.digest).write_bytes(b"{}")

    with pytest.raises(LayoutError, match="corrupt"):
        read_image_layout(out)


def test_a_folder_that_is_not_a_layout_is_reported_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(LayoutError) as caught:
        read_image_layout(tmp_path)
    assert "oci-layout" in caught.value.message
    assert caught.value.hint


def test_an_unknown_ref_name_lists_the_known_ones(tmp_path: Path, layers: list[Path]) -> None:
    out = tmp_path / "layout"
    write_image_layout(out, layers=layers, config=CONFIG, ref_name="12")

    with pytest.raises(LayoutError) as caught:
        read_image_layout(out, ref_name="13")
    assert "found 0" in caught.value.message


def test_big_layers_are_streamed_not_loaded(tmp_path: Path) -> None:
    big = tmp_path / "big.tar"
    with big.open("wb") as out:
        out.truncate(64 << 20)  # 64 MiB of zeros, sparse on disk

    tracemalloc.start()
    try:
        write_image_layout(tmp_path / "layout", layers=[big], config=CONFIG)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 8 << 20


def _written(tmp_path: Path, layers: list[Path], config: dict[str, object] = CONFIG) -> Path:
    out = tmp_path / "layout"
    write_image_layout(out, layers=layers, config=config)
    return out
