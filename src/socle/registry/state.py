"""The published state read from a live registry: one request per reference, cached manifests.

Manifests are immutable by digest, so they are kept on disk once fetched; a
steady-state plan then costs one HEAD per reference, sent in parallel over the
client's keep-alive pool. A reference this machine never resolved is fetched
with one GET of its tag instead (its manifest is needed anyway): a cold plan is
one request per reference too, over the same pool. Within one state (one run)
no manifest is fetched twice, whatever the number of tags pointing at it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType

from socle import atomic
from socle.core.state import Published
from socle.oci.content import Manifest
from socle.oci.errors import InvalidManifest
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.registry.errors import ManifestNotFound

SEEN = "tags.json"  # in the cache folder: the references resolved before (a hint, never trusted)
Document = dict[str, object]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "socle" / "manifests"


class RegistryState:
    """:class:`~socle.core.state.PublishedState` backed by an OCI registry."""

    def __init__(self, client: RegistryClient, *, cache: Path | None = None) -> None:
        self.client = client
        self.cache = cache if cache is not None else cache_dir()
        self._documents: dict[str, Future[Document]] = {}  # by digest, for this state's life
        self._lock = threading.Lock()

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
        unique = list(dict.fromkeys(refs))
        if not unique:
            return {}
        seen = self._seen()
        # On the client's workers: their keep-alive connections serve the run's later batches too.
        answers = self.client.map(lambda r: self._resolve(r, r in seen), unique)
        found = dict(zip(unique, answers, strict=True))
        self._remember(seen, [ref for ref, published in found.items() if published is not None])
        return {ref: found[ref] for ref in refs}

    def _resolve(self, ref: str, seen: bool) -> Published | None:
        reference = Reference.parse(ref)
        if seen or reference.digest:
            descriptor = self.client.head_manifests([reference])[0]
            if descriptor is None:
                return None
            digest, document = descriptor.digest, self.manifest_json(reference, descriptor.digest)
        else:
            manifest = self.client.find_manifest(reference)
            if manifest is None:
                return None
            digest = manifest.digest
            document = self._once(digest, lambda: self._keep(manifest))
        raw = document.get("annotations")
        annotations = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        return Published.from_annotations(digest, annotations)

    def manifest_json(self, ref: Reference, digest: str) -> Document:
        """The manifest at `digest` as a JSON object (InvalidManifest when it is none)."""
        return self._once(digest, lambda: self._read(ref, digest))

    def _read(self, ref: Reference, digest: str) -> Document:
        path = self.cache / digest.replace(":", "-")
        with contextlib.suppress(OSError, InvalidManifest):  # no cache entry, or a damaged one
            return Manifest("", digest, path.read_bytes()).json()
        pinned = ref.with_digest(digest)
        manifest = self.client.find_manifest(pinned)
        if manifest is None:  # deleted since its HEAD
            raise ManifestNotFound(str(pinned))
        return self._keep(manifest)

    def _keep(self, manifest: Manifest) -> Document:
        document = manifest.json()
        path = self.cache / manifest.digest.replace(":", "-")
        with contextlib.suppress(
            OSError
        ):  # the cache is an optimisation; a read-only home still plans
            atomic.write_bytes(path, manifest.data)
        return document

    def _once(self, digest: str, fetch: Callable[[], Document]) -> Document:
        """`fetch()`'s document for `digest`, computed once however many threads ask."""
        with self._lock:
            future = self._documents.get(digest)
            owner = future is None
            if future is None:
                future = self._documents[digest] = Future()
        if owner:
            try:
                future.set_result(fetch())
            except BaseException as exc:
                with self._lock:  # a failure is not remembered: a later lookup tries again
                    del self._documents[digest]
                future.set_exception(exc)
        return future.result()

    def _seen(self) -> set[str]:
        with contextlib.suppress(OSError, ValueError):
            listed = json.loads((self.cache / SEEN).read_bytes())
            if isinstance(listed, list):
                return {str(ref) for ref in listed}
        return set()

    def _remember(self, seen: set[str], found: Sequence[str]) -> None:
        new = set(found) - seen
        if not new:
            return
        merged = self._seen() | seen | new  # another process may have added its own meanwhile
        with contextlib.suppress(OSError):
            atomic.write_bytes(self.cache / SEEN, json.dumps(sorted(merged)).encode())
