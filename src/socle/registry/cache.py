"""Manifests cached in memory: immutable by digest, so never stale while they exist."""

from __future__ import annotations

import threading
from collections import OrderedDict

from socle.oci.content import Manifest


class ManifestCache:
    """A bounded, thread-safe LRU of manifests keyed by (registry/repository, digest)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], Manifest] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, digest: str) -> Manifest | None:
        """The manifest `digest` of repository `name`, if cached."""
        with self._lock:
            found = self._items.get((name, digest))
            if found is not None:
                self._items.move_to_end((name, digest))
            return found

    def put(self, name: str, manifest: Manifest) -> None:
        """Remember `manifest` as present in repository `name`."""
        with self._lock:
            self._items[(name, manifest.digest)] = manifest
            self._items.move_to_end((name, manifest.digest))
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def discard(self, name: str, digest: str) -> None:
        """Forget a deleted manifest."""
        with self._lock:
            self._items.pop((name, digest), None)
