"""Manifests cached in memory: immutable by digest, so never stale while they exist."""

from __future__ import annotations

import threading
from collections import OrderedDict

from socle.oci.content import Descriptor, Manifest


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


class TagsSeen:
    """What one client last read or wrote at each tag: its run's view, reused on request.

    A tag can move, so this is never consulted unless a caller asks for it
    (the tag phase of the run that read the plan). Whatever the client itself
    puts at a tag replaces what it read there, and a read that started before
    that write cannot overwrite it: the view includes this run's own pushes.
    Deleting a manifest forgets every tag seen at it.
    """

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Descriptor | None] = {}  # (name, tag): None = absent
        self._written: dict[tuple[str, str], int] = {}  # the clock of each tag's last write
        self._clock = 0
        self._lock = threading.Lock()

    def get(self, name: str, tag: str) -> tuple[bool, Descriptor | None]:
        """(True, what was seen) if the tag was seen, else (False, None)."""
        with self._lock:
            key = (name, tag)
            return (True, self._items[key]) if key in self._items else (False, None)

    def now(self) -> int:
        """The clock to pass to :meth:`read` for a request about to be sent."""
        with self._lock:
            return self._clock

    def read(self, name: str, tag: str, found: Descriptor | None, since: int) -> None:
        """Remember an answer asked at `since`, unless the client wrote the tag meanwhile."""
        with self._lock:
            if self._written.get((name, tag), -1) < since:
                self._items[(name, tag)] = found

    def wrote(self, name: str, tag: str, found: Descriptor) -> None:
        with self._lock:
            self._clock += 1
            self._written[(name, tag)] = self._clock
            self._items[(name, tag)] = found

    def forget(self, name: str, digest: str) -> None:
        """Forget the tags seen at a deleted manifest."""
        with self._lock:
            self._clock += 1
            for key, found in list(self._items.items()):
                if key[0] == name and found is not None and found.digest == digest:
                    del self._items[key]
                    self._written[key] = self._clock
