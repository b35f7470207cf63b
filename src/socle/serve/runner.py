"""The console's runs: one at a time, in a worker thread, with duplicate requests coalesced.

Webhooks and console buttons submit requests; a request equal to (or covered
by) one already waiting joins it instead of queueing a second cascade, and a
build from the same trigger and user is merged into the waiting one. The run
under way is never joined: it may have read the registry before the push.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from socle.errors import SocleError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What to run: a build (of `only` and descendants; empty = everything), promote or prune."""

    action: str = "build"  # build, promote, prune
    trigger: str = "serve"  # serve (a button), webhook
    only: frozenset[str] = frozenset()
    user: str | None = None
    reason: str = ""  # why, in words: "push of my/debian:12", "rebuild asked by ana"
    force: bool = False  # rebuild `only` even when current (a person pressed Rebuild)

    def policy(self) -> tuple[object, ...]:
        """What else decides the run's effect (a prune's keep and older-than)."""
        return ()

    def covers(self, other: RunRequest) -> bool:
        """Whether running this request does all `other` asks (so `other` need not queue)."""
        if self.action != other.action:
            return False
        if self.action == "prune":
            return self.policy() == other.policy()  # another keep or older-than: another prune
        if self.action != "build":
            return True
        if other.force and not self.force:
            return False
        # An empty `only` is everything: only another everything covers it.
        return not self.only or (bool(other.only) and other.only <= self.only)

    def mergeable(self, other: RunRequest) -> bool:
        """Whether one build can do both without misattributing it (same trigger and user)."""
        return (
            self.action == other.action == "build"
            and self.trigger == other.trigger
            and self.user == other.user
            and self.force == other.force
        )

    def merged(self, other: RunRequest) -> RunRequest:
        """One build request doing what both ask (each reason said once)."""
        only = frozenset() if not self.only or not other.only else self.only | other.only
        reasons = [r for part in (self.reason, other.reason) for r in part.split("; ") if r]
        return replace(self, only=only, reason="; ".join(dict.fromkeys(reasons)))


Execute = Callable[[RunRequest], None]


class Runner:
    """Runs requests one after another on one thread; `execute` does the work."""

    def __init__(self, execute: Execute) -> None:
        self._execute = execute
        self._pending: list[RunRequest] = []
        self._lock = threading.Condition()
        self._running: RunRequest | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="socle-runner", daemon=True)
        self.coalesced = 0  # requests that joined one already waiting

    def start(self) -> None:
        with self._lock:
            if self._thread.is_alive() or self._stopping:
                return
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the run under way (requests still waiting are dropped); idempotent."""
        with self._lock:
            self._stopping = True
            dropped, self._pending = len(self._pending), []
            self._lock.notify_all()
        if dropped:
            log.warning("stopped with %d run request(s) not started", dropped)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, request: RunRequest) -> bool:
        """Queue `request`; False when it joined a waiting request instead."""
        with self._lock:
            if self._stopping:
                log.warning("not queued, the console is stopping: %s", request.reason)
                return False
            for index, waiting in enumerate(self._pending):
                if waiting.covers(request):
                    self.coalesced += 1
                    return False
                if waiting.mergeable(request):
                    self._pending[index] = waiting.merged(request)
                    self.coalesced += 1
                    return False
            self._pending.append(request)
            self._lock.notify_all()
            return True

    @property
    def pending(self) -> list[RunRequest]:
        with self._lock:
            return list(self._pending)

    @property
    def running(self) -> RunRequest | None:
        with self._lock:
            return self._running

    def idle(self) -> bool:
        with self._lock:
            return self._running is None and not self._pending

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing runs or waits (tests and shutdown)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._running is None and not self._pending, timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    return
                self._running = self._pending.pop(0)
                request = self._running
            try:
                self._execute(request)
            except SocleError as exc:
                log.warning("%s (%s) failed: %s", request.action, request.reason, exc.message)
            except Exception:  # a failed run must not stop the console
                log.exception("%s (%s) failed", request.action, request.reason)
            finally:
                with self._lock:
                    self._running = None
                    self._lock.notify_all()
