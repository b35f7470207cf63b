"""Reading an OCI image layout folder (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from socle.errors import InputError
from socle.registry.errors import DigestMismatch
from socle.registry.manifest import IMAGE_TYPES, Descriptor, Manifest
from socle.registry.reference import is_digest


@dataclass(frozen=True)
class LayoutImage:
    """The one image manifest of a layout folder, and where its blobs are."""

    root: Path
    manifest: Manifest

    def blob_path(self, digest: str) -> Path:
        """The file holding the blob `digest`; :class:`InputError` when it is missing."""
        return layout_blob(self.root, digest)


def layout_blob(root: Path, digest: str) -> Path:
    """The file of blob `digest` in the layout at `root`; :class:`InputError` when missing."""
    algorithm, _, encoded = digest.partition(":")
    path = root / "blobs" / algorithm / encoded
    if not is_digest(digest) or not path.is_file():
        raise InputError(f"the OCI layout {root} lacks the blob {digest}")
    return path


def read_layout(root: Path) -> LayoutImage:
    """The single image manifest of the layout at `root`, its digest checked."""
    descriptor = _only_manifest(root)
    data = layout_blob(root, descriptor.digest).read_bytes()
    manifest = Manifest.of(data, descriptor.media_type or None)
    if manifest.digest != descriptor.digest:
        raise DigestMismatch(f"{root}/index.json", descriptor.digest, manifest.digest)
    if manifest.media_type not in IMAGE_TYPES:
        raise InputError(
            f"the OCI layout {root} holds a {manifest.media_type or 'typeless'} document,"
            " not an image manifest"
        )
    return LayoutImage(root, manifest)


def _only_manifest(root: Path) -> Descriptor:
    index_path = root / "index.json"
    try:
        manifests = json.loads(index_path.read_text())["manifests"]
        descriptors = [Descriptor.from_json(item) for item in manifests]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{index_path} is not a readable OCI image index: {exc}",
            hint="point at a folder written by `buildah push ... oci:DIR` or `skopeo copy ... oci:DIR`",
        ) from None
    if len(descriptors) != 1:
        raise InputError(f"{index_path} lists {len(descriptors)} manifests; expected exactly one")
    return descriptors[0]
