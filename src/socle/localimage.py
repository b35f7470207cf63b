"""The one way socle gets a published image onto local disk: for the gates, image
tests, the SBOM, the scan and the security-update detector.

The image is fetched with socle's own registry client (every blob checked
against its digest) into an OCI layout; :func:`local_copy` also loads it into
the builder, so it can run, and removes it again afterwards.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from socle.builders.interface import Builder
from socle.canonical import canonical_json
from socle.errors import InputError
from socle.oci.content import Descriptor, Manifest, Platform
from socle.oci.layout import index_descriptor, read_image_layout, write_blob, write_index
from socle.oci.reference import Reference
from socle.registry.interface import ImageSource

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class PulledImage:
    """An image written as an OCI layout; `index_digest` when it was chosen from an index."""

    layout: Path
    digest: str
    index_digest: str | None = None


def pull_layout(
    source: ImageSource, ref: Reference, out_dir: Path, *, platform: str = DEFAULT_PLATFORM
) -> PulledImage:
    """Write the image at `ref` (its `platform` manifest for an index) to `out_dir`.

    Blobs are checked against their digests as they arrive.
    """
    manifest = source.get_manifest(ref)
    index_digest = None
    if manifest.is_index:
        index_digest = manifest.digest
        chosen = manifest.for_platform(Platform.parse(platform))
        if chosen is None:
            found = ", ".join(str(c.platform) for c in manifest.children() if c.platform)
            raise InputError(
                f"{ref} has no {platform} image (it has {found or 'none'})",
                hint="choose one with --platform OS/ARCH",
            )
        manifest = source.get_manifest(ref.with_digest(chosen.digest))
    for blob in manifest.blobs():
        write_blob(out_dir, source.get_blob(ref, blob.digest), blob.media_type)
    write_blob(out_dir, manifest.data, manifest.media_type)
    write_index(out_dir, [manifest.descriptor])
    return PulledImage(out_dir, manifest.digest, index_digest)


def fetch_layout(source: ImageSource, ref: Reference, layout: Path) -> Path:
    """A local OCI layout of the published image `ref`, for gates and checks to examine."""
    return pull_layout(source, ref, layout).layout


@contextmanager
def local_copy(source: ImageSource, builder: Builder, ref: Reference, name: str) -> Iterator[Path]:
    """The published image `ref`, runnable in `builder` as `name`; yields its layout.

    Removed again on exit: for checks and tests of what is published.
    """
    with tempfile.TemporaryDirectory(prefix="socle-copy-") as tmp:
        layout = fetch_layout(source, ref, Path(tmp) / "layout")
        builder.load(layout, name)
        try:
            yield layout
        finally:
            builder.remove(name)


class LayoutSource:
    """The image of an OCI layout on disk, read as if published under any reference.

    A child built on a parent of the same run takes the parent's blobs from here:
    the parent may not be pushed yet.
    """

    def __init__(self, layout: Path) -> None:
        self.layout = layout
        self.image = read_image_layout(layout)

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        return self.image.manifest.descriptor

    def get_manifest(self, ref: Reference) -> Manifest:
        return self.image.manifest

    def get_blob(self, ref: Reference, digest: str) -> bytes:
        return self.image.blob_path(digest).read_bytes()


def restore_parent_blobs(source: ImageSource, parent: Reference, layout: Path) -> int:
    """Make the bottom layers of `layout`'s image the blobs `parent` published, byte for byte.

    A builder keeps the parent's layers (the same diff_ids) but may compress them
    again on export (buildah does, for a layer another tool compressed): the
    child would then store a second copy of each, and its digest would depend on
    the builder's compressor. The parent's own blobs are put back, matched by
    diff_id, so the gates see what is published and a push mounts them from the
    parent. `parent` is pinned by digest; an index (a build for one platform of a
    multi-platform parent) is left alone. Returns how many layers were put back.
    """
    published = source.get_manifest(parent)
    if published.is_index:
        return 0
    document = published.json()
    config = json.loads(source.get_blob(parent, str(document["config"]["digest"])))
    theirs = list(config.get("rootfs", {}).get("diff_ids", []))
    parent_layers = [Descriptor.from_json(item) for item in document.get("layers", [])]
    image = read_image_layout(layout)
    swaps: dict[int, Descriptor] = {}
    for index, (mine, their) in enumerate(zip(image.diff_ids, theirs, strict=False)):
        if mine != their or index >= len(parent_layers):
            break
        if image.layers[index].digest != parent_layers[index].digest:
            swaps[index] = parent_layers[index]
    if not swaps:
        return 0
    for descriptor in swaps.values():
        write_blob(layout, source.get_blob(parent, descriptor.digest), descriptor.media_type)
    manifest = image.manifest.json()
    for index, descriptor in swaps.items():
        manifest["layers"][index] = descriptor.to_json()
    entry = write_blob(layout, canonical_json(manifest), image.manifest.media_type)
    old = index_descriptor(layout)
    write_index(layout, [replace(entry, annotations=old.annotations, platform=old.platform)])
    return len(swaps)
