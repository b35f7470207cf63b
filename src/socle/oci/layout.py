"""Write and read OCI image layouts (image-spec `image-layout.md`) in pure Python.

A layout is a folder with an `oci-layout` marker, an `index.json` and
content-addressed blobs under `blobs/sha256/`. Writing is deterministic: JSON is
canonical and layers are gzipped with a fixed level, no file name and mtime 0,
so the same tar files and config always give the same manifest digest (with the
same zlib). Layers are streamed: each tar is read once, hashed and compressed on
the way. Reading checks every small blob against its digest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from socle import atomic
from socle.canonical import canonical_json, sha256_digest
from socle.oci.content import NO_ANNOTATIONS, Descriptor, Manifest
from socle.oci.errors import LayoutError
from socle.oci.media import (
    IMAGE_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_NAME,
)

LAYOUT_VERSION = "1.0.0"
# zlib's default level: 3x faster than 9 for about 0.4 % more bytes on a Debian rootfs.
GZIP_LEVEL = 6
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class LayoutImage:
    """One image of an OCI layout: its manifest (bytes kept exact), config and layers."""

    path: Path
    manifest: Manifest
    config: Mapping[str, Any]
    config_descriptor: Descriptor
    layers: tuple[Descriptor, ...]
    ref_name: str | None = None

    @property
    def digest(self) -> str:
        """The manifest digest."""
        return self.manifest.digest

    def blob_path(self, digest: str) -> Path:
        """Where the blob with `digest` lives in this layout; :class:`LayoutError` if missing."""
        path = blob_path(self.path, digest)
        if not path.is_file():
            raise LayoutError(f"the OCI layout {self.path} lacks the blob {digest}")
        return path

    @property
    def diff_ids(self) -> tuple[str, ...]:
        """The sha256 digests of the uncompressed layers, from the config."""
        return tuple(self.config.get("rootfs", {}).get("diff_ids", ()))


def blob_path(layout: Path, digest: str) -> Path:
    """Where the blob with `digest` (`sha256:<hex>`) lives under `layout`."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or algorithm != "sha256" or not encoded.isalnum():
        raise LayoutError(f"unsupported digest {digest!r}", hint="socle writes sha256 digests only")
    return layout / "blobs" / algorithm / encoded


# --- writing -------------------------------------------------------------------------------


def write_image_layout(
    out_dir: Path,
    *,
    layers: Sequence[Path],
    config: Mapping[str, Any],
    annotations: Mapping[str, str] = NO_ANNOTATIONS,
    ref_name: str | None = None,
) -> str:
    """Write a one-image OCI layout into `out_dir` and return the manifest digest.

    `layers` are uncompressed tar files, bottom first; they are gzipped into
    blobs and their sha256 become `rootfs.diff_ids` in the config (any given
    `rootfs` is replaced). `config` must name `architecture` and `os`.
    `annotations` go on the manifest; `ref_name` (e.g. a tag) is recorded in
    `index.json` as `org.opencontainers.image.ref.name`. An existing layout in
    `out_dir` has its `index.json` replaced; blobs are content-addressed.
    """
    missing = [key for key in ("architecture", "os") if not config.get(key)]
    if missing:
        raise LayoutError(f"the image config lacks {', '.join(missing)}")
    (out_dir / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    written = [write_layer_blob(out_dir, tar) for tar in layers]
    full_config = {
        **config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in written]},
    }
    config_desc = write_blob(out_dir, canonical_json(full_config), OCI_CONFIG)
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc.to_json(),
        "layers": [layer.to_json() for layer, _ in written],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_desc = write_blob(out_dir, canonical_json(manifest), OCI_MANIFEST)
    if ref_name:
        manifest_desc = Descriptor(
            manifest_desc.media_type, manifest_desc.digest, manifest_desc.size, {REF_NAME: ref_name}
        )
    write_index(out_dir, [manifest_desc])
    return manifest_desc.digest


def write_index(out_dir: Path, manifests: Sequence[Descriptor]) -> None:
    """Write the `oci-layout` marker and an `index.json` listing `manifests`."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [m.to_json() for m in manifests],
    }
    atomic.write_bytes(out_dir / "oci-layout", canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
    atomic.write_bytes(out_dir / "index.json", canonical_json(index))


def write_blob(layout: Path, data: bytes, media_type: str) -> Descriptor:
    """Store `data` as a blob of `layout` and describe it."""
    digest = sha256_digest(data)
    path = blob_path(layout, digest)
    if not path.exists():
        atomic.write_bytes(path, data)
    return Descriptor(media_type, digest, len(data))


class _HashingSink:
    """A write-only file that hashes and counts what goes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


def write_layer_blob(layout: Path, tar: Path) -> tuple[Descriptor, str]:
    """Gzip the tar file `tar` into a layer blob; return its descriptor and diff_id.

    One pass over the tar: the uncompressed bytes feed the diff_id hash and the
    compressor, the compressed bytes feed the blob digest and the file.
    """
    blobs = layout / "blobs" / "sha256"
    diff_id = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=blobs, prefix=".layer-", delete=False) as tmp:
        try:
            sink = _HashingSink(tmp)
            with (
                tar.open("rb") as source,
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=sink, compresslevel=GZIP_LEVEL, mtime=0
                ) as compressed,
            ):
                while chunk := source.read(CHUNK_SIZE):
                    diff_id.update(chunk)
                    compressed.write(chunk)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    digest = "sha256:" + sink.sha256.hexdigest()
    atomic.move_into_place(tmp.name, blob_path(layout, digest), mode=0o644)
    return Descriptor(OCI_LAYER_GZIP, digest, sink.size), "sha256:" + diff_id.hexdigest()


# --- reading -------------------------------------------------------------------------------


def read_image_layout(layout: Path, *, ref_name: str | None = None) -> LayoutImage:
    """Read the image of an OCI layout, checking the manifest and config digests.

    With several manifests in `index.json`, `ref_name` picks one by its
    `org.opencontainers.image.ref.name` annotation.
    """
    _check_marker(layout)
    chosen = index_descriptor(layout, ref_name=ref_name)
    data = read_blob(layout, chosen.digest)
    manifest = Manifest.of(data, chosen.media_type or None)
    if manifest.media_type not in IMAGE_TYPES:
        raise LayoutError(
            f"the OCI layout {layout} holds a {manifest.media_type or 'typeless'} document,"
            " not an image manifest"
        )
    doc = manifest.json()
    try:
        config_desc = Descriptor.from_json(doc.get("config") or {})
        layers = tuple(Descriptor.from_json(layer) for layer in doc.get("layers") or [])
    except (KeyError, TypeError, ValueError) as exc:
        raise LayoutError(f"{layout}: manifest {manifest.digest} has a bad descriptor ({exc!r})") from None
    config = _parse_json(read_blob(layout, config_desc.digest), f"config {config_desc.digest}")
    return LayoutImage(
        path=layout,
        manifest=manifest,
        config=config,
        config_descriptor=config_desc,
        layers=layers,
        ref_name=chosen.annotations.get(REF_NAME),
    )


def index_descriptor(layout: Path, *, ref_name: str | None = None) -> Descriptor:
    """The manifest descriptor of `index.json`: the only one, or the one named `ref_name`."""
    try:
        index = json.loads((layout / "index.json").read_bytes())
        manifests = [Descriptor.from_json(item) for item in index["manifests"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LayoutError(
            f"{layout} is not a readable OCI image layout: {exc}",
            hint="point at a folder written by `buildah push ... oci:DIR` or `skopeo copy ... oci:DIR`",
        ) from None
    if ref_name is not None:
        named = [m for m in manifests if m.annotations.get(REF_NAME) == ref_name]
        if len(named) == 1:
            return named[0]
        names = sorted(m.annotations.get(REF_NAME, m.digest) for m in manifests)
        raise LayoutError(
            f"{layout}: expected ref {ref_name!r} in index.json, found {len(named)}",
            hint=f"pass one of: {', '.join(names)}" if names else None,
        )
    if len(manifests) != 1:
        raise LayoutError(f"{layout} holds {len(manifests)} manifests, expected exactly one")
    return manifests[0]


def read_blob(layout: Path, digest: str) -> bytes:
    """The bytes of a (small) blob, verified against its digest."""
    path = blob_path(layout, digest)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise LayoutError(f"the OCI layout {layout} lacks the blob {digest}") from exc
    actual = sha256_digest(data)
    if actual != digest:
        raise LayoutError(f"{layout}: blob {digest} is corrupt (its content hashes to {actual})")
    return data


def _check_marker(layout: Path) -> None:
    marker = _load_json(layout / "oci-layout")
    if marker.get("imageLayoutVersion") != LAYOUT_VERSION:
        raise LayoutError(
            f"{layout}: unsupported imageLayoutVersion {marker.get('imageLayoutVersion')!r}"
        )


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise LayoutError(
            f"{path} is missing", hint=f"is {path.parent} an OCI image layout?"
        ) from exc
    return _parse_json(data, str(path))


def _parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise LayoutError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise LayoutError(f"{what} is not a JSON object")
    return value
