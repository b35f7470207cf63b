"""Watching tags of registries that cannot call back: HEAD each one every `interval`
seconds and report a digest that moved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

from socle.core.cascade import Pushed
from socle.errors import InputError, SocleError
from socle.oci.reference import Reference
from socle.registry.interface import ManifestResolver
from socle.watch.receiver import OnPush

log = logging.getLogger(__name__)


class Poller:
    """Watches tags by asking for their digest every `interval` seconds.

    The first answer for a tag is its baseline; a later different digest (or
    a tag that appears) is a :class:`Pushed`. A registry that fails to answer
    keeps the last digest known, so an outage is not a change.
    """

    def __init__(self, client: ManifestResolver, refs: Sequence[Reference], interval: float) -> None:
        if interval <= 0:
            raise InputError(f"the polling interval must be positive, got {interval}")
        for ref in refs:
            if ref.tag is None or ref.digest is not None:
                raise InputError(f"cannot watch {ref}: a tag moves, a digest does not")
        self._client = client
        self._refs = tuple(dict.fromkeys(refs))
        self._interval = interval
        self._known: dict[Reference, str | None] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> list[Pushed]:
        """HEAD every watched tag once; the tags whose digest changed since last time."""
        return [push for ref in self._refs if (push := self._check(ref)) is not None]

    def _check(self, ref: Reference) -> Pushed | None:
        try:
            found = self._client.head_manifest(ref)
        except SocleError as exc:
            log.warning("cannot poll %s: %s", ref, exc.message)
            return None
        digest = found.digest if found else None
        first = ref not in self._known
        before = self._known.get(ref)
        self._known[ref] = digest
        if first or digest is None or digest == before:
            return None
        return Pushed(ref.repository, ref.tag, digest, ref.registry)

    def run(self, on_push: OnPush, *, rounds: int | None = None) -> None:
        """Poll until :meth:`stop` (or `rounds` rounds), calling `on_push` for each change."""
        for count in _rounds(rounds):
            if count and self._stopped.wait(self._interval):
                return
            for push in self.poll_once():
                log.info("push: %s", push)
                try:
                    on_push(push)
                except Exception:  # the watcher outlives one failed cascade
                    log.exception("handling %s failed", push)

    def start(self, on_push: OnPush) -> None:
        """Run :meth:`run` in a background thread."""
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self.run, args=(on_push,), name="socle-poll", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling after the current round; wait for the background thread."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _rounds(limit: int | None) -> Iterator[int]:
    count = 0
    while limit is None or count < limit:
        yield count
        count += 1
