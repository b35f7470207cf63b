"""Fetch one image from a registry into a temporary OCI layout, to inventory or scan it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from socle.errors import InputError
from socle.registry import Manifest, Reference, RegistryClient
from socle.registry.manifest import INDEX_TYPES

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class PulledImage:
    """An image written as an OCI layout; `index_digest` when it was chosen from an index."""

    layout: Path
    digest: str
    index_digest: str | None = None


def pull_layout(
    client: RegistryClient, ref: Reference, out_dir: Path, *, platform: str = DEFAULT_PLATFORM
) -> PulledImage:
    """Write the image at `ref` (its `platform` manifest for an index) to `out_dir`.

    Blobs are checked against their digests as they arrive.
    """
    manifest = client.get_manifest(ref)
    index_digest = None
    if manifest.media_type in INDEX_TYPES:
        index_digest = manifest.digest
        manifest = client.get_manifest(ref.with_digest(_platform_digest(manifest, platform, ref)))
    for blob in manifest.blobs():
        _store(out_dir, blob.digest, client.get_blob(ref, blob.digest))
    _store(out_dir, manifest.digest, manifest.data)
    entry = {
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": len(manifest.data),
    }
    index = {"schemaVersion": 2, "manifests": [entry]}
    (out_dir / "index.json").write_text(json.dumps(index))
    (out_dir / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return PulledImage(out_dir, manifest.digest, index_digest)


def _platform_digest(index: Manifest, platform: str, ref: Reference) -> str:
    wanted = platform.split("/")
    found = []
    for entry in index.json().get("manifests") or []:
        plat = entry.get("platform") or {}
        parts = [plat.get("os", ""), plat.get("architecture", "")]
        if plat.get("variant"):
            parts.append(plat["variant"])
        found.append("/".join(parts))
        if parts[: len(wanted)] == wanted:
            return str(entry["digest"])
    raise InputError(
        f"{ref} has no {platform} image (it has {', '.join(found) or 'none'})",
        hint="choose one with --platform OS/ARCH",
    )


def _store(layout: Path, digest: str, data: bytes) -> None:
    algorithm, _, encoded = digest.partition(":")
    folder = layout / "blobs" / algorithm
    folder.mkdir(parents=True, exist_ok=True)
    (folder / encoded).write_bytes(data)
