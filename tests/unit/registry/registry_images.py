"""Tiny but real images for registry tests: a gzipped tar layer, a config, manifests, layouts."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from socle.oci.media import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

LAYER_TYPES = {
    OCI_MANIFEST: (
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
    DOCKER_MANIFEST: (
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ),
}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


@dataclass(frozen=True)
class TinyImage:
    """The blobs and manifest of a one-layer image; `manifest` is deliberately indented JSON."""

    config: bytes
    layer: bytes
    manifest: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        return {digest_of(self.config): self.config, digest_of(self.layer): self.layer}


def tar_gz(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A reproducible gzipped tar of `files`, and the digest of the uncompressed tar (diff_id)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            tar.addfile(info, io.BytesIO(content))
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0), digest_of(raw)


def tiny_image(text: str, media_type: str = OCI_MANIFEST, architecture: str = "amd64") -> TinyImage:
    """A valid one-layer linux image whose only file says `text`."""
    config_type, layer_type = LAYER_TYPES[media_type]
    layer, diff_id = tar_gz({"etc/socle-test": text.encode()})
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Labels": {"test": text}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type, config),
        "layers": [descriptor(layer_type, layer)],
    }
    return TinyImage(config, layer, json.dumps(manifest, indent=3).encode(), media_type)


def index_of(images: list[TinyImage]) -> bytes:
    """An OCI index over `images`, one platform each (amd64, arm64, ...)."""
    platforms = ["amd64", "arm64", "riscv64", "s390x"]
    manifests = [
        {
            **descriptor(image.media_type, image.manifest),
            "platform": {"architecture": arch, "os": "linux"},
        }
        for image, arch in zip(images, platforms, strict=False)
    ]
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, indent=2
    ).encode()


def write_layout(root: Path, image: TinyImage) -> Path:
    """An OCI image layout folder holding `image`."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in [image.config, image.layer, image.manifest]:
        (blobs / digest_of(data).removeprefix("sha256:")).write_bytes(data)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [descriptor(image.media_type, image.manifest)]}
    (root / "index.json").write_text(json.dumps(index))
    return root
