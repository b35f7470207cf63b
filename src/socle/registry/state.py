"""The published state read from a live registry: one HEAD per reference, cached manifests.

Manifests are immutable by digest, so they are kept on disk once fetched; a
steady-state plan then costs one HEAD per reference, sent in parallel over the
client's keep-alive pool.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from socle import atomic
from socle.core.state import Published
from socle.oci.content import Descriptor, Manifest
from socle.oci.errors import InvalidManifest
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient

WORKERS = 16


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "socle" / "manifests"


class RegistryState:
    """:class:`~socle.core.state.PublishedState` backed by an OCI registry."""

    def __init__(self, client: RegistryClient, *, cache: Path | None = None) -> None:
        self.client = client
        self.cache = cache if cache is not None else cache_dir()

    @classmethod
    def from_config(cls) -> RegistryState:
        return cls(RegistryClient.from_config())

    def __enter__(self) -> RegistryState:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.client.close()

    def lookup(self, refs: Sequence[str]) -> dict[str, Published | None]:
        """What each reference points at now, with socle's records read from its annotations."""
        references = [Reference.parse(ref) for ref in refs]
        descriptors = self.client.head_manifests(references)
        pairs = list(zip(references, descriptors, strict=True))
        if not pairs:
            return {}
        # Manifests missing from the disk cache are fetched in parallel too (cold runs).
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(pairs))) as pool:
            found = pool.map(lambda pair: self.published(*pair), pairs)
            return dict(zip(refs, found, strict=True))

    def published(self, reference: Reference, descriptor: Descriptor | None) -> Published | None:
        if descriptor is None:
            return None
        manifest = self.manifest_json(reference, descriptor.digest)
        raw = manifest.get("annotations")
        annotations = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        return Published.from_annotations(descriptor.digest, annotations)

    def manifest_json(self, ref: Reference, digest: str) -> dict[str, object]:
        """The manifest at `digest` as a JSON object (InvalidManifest when it is none)."""
        path = self.cache / digest.replace(":", "-")
        with contextlib.suppress(OSError, InvalidManifest):  # no cache entry, or a damaged one
            return Manifest("", digest, path.read_bytes()).json()
        manifest = self.client.get_manifest(ref.with_digest(digest))
        document = manifest.json()
        with contextlib.suppress(OSError):  # the cache is an optimisation; a read-only home still plans
            atomic.write_bytes(path, manifest.data)
        return document
