"""Outcome notifications: a JSON line per event, and a chat webhook per run.

Both are observers of the executor's events (:mod:`socle.events`) and never
raise into a build: a log collector that went away or a chat service that is
down costs a warning, not an image.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TextIO

from socle.errors import InputError
from socle.events import Event, Observer, Status

if TYPE_CHECKING:  # httpx: imported when a webhook is configured, not by every build
    import httpx

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 10.0
RETRY_DELAY = 2.0
NAMES_SHOWN = 20  # per status in a chat message; the rest is counted


def tee(*observers: Observer) -> Observer:
    """One observer that passes every event to each of `observers`, in order."""

    def each(event: Event) -> None:
        for observer in observers:
            observer(event)

    return each


class JsonLines:
    """Writes each event as one JSON object per line, in Elastic Common Schema names.

    EFK indexes the lines as they are, beside the applications' logs: see
    :func:`ecs_record`. Writes from parallel builds are serialised. If the
    stream breaks (a closed pipe), one warning is logged and later events are
    dropped.
    """

    def __init__(
        self, stream: TextIO | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._broken = False

    def __call__(self, event: Event) -> None:
        line = json.dumps(ecs_record(event, self._clock()), sort_keys=False) + "\n"
        with self._lock:
            if self._broken:
                return
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError) as exc:  # ValueError: write to a closed file
                self._broken = True
                log.warning("the JSON event log stopped: %s", exc)


def ecs_record(event: Event, now: datetime) -> dict[str, object]:
    """One event as ECS fields: dotted keys, as ecs-logging writes them.

    `event.action` is the status, `event.outcome` says success or failure once
    an image is done with, and what only socle knows lives under `socle.*`.
    Absent values are left out rather than written as null.
    """
    record: dict[str, object] = {
        "@timestamp": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "log.level": _LEVELS.get(event.status, "info"),
        "message": event.message,
        "ecs.version": ECS_VERSION,
        "log.logger": "socle",
        "event.action": event.status.value,
        "event.outcome": _OUTCOMES.get(event.status),
        "socle.key": event.key,
        "socle.digest": event.digest,
        "socle.seconds": event.seconds,
    }
    return {k: v for k, v in record.items() if v not in (None, "")}


ECS_VERSION = "8.11.0"
_LEVELS = {Status.FAILED: "error", Status.BLOCKED: "warn"}
_OUTCOMES = {
    Status.BUILT: "success", Status.SKIPPED: "success", Status.TAGGED: "success",
    Status.FAILED: "failure", Status.BLOCKED: "failure",
}  # fmt: skip


class HasOutcome(Protocol):
    """What a run summary needs of an executor outcome."""

    @property
    def key(self) -> str: ...

    status: Status


@dataclass(frozen=True)
class RunReport:
    """Which images a run built, which failed, and which were blocked by a failed parent."""

    built: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()

    @classmethod
    def of(cls, outcomes: Iterable[HasOutcome]) -> RunReport:
        """The report of the executor's outcomes."""
        by_status: dict[Status, list[str]] = {}
        for outcome in outcomes:
            by_status.setdefault(outcome.status, []).append(outcome.key)
        return cls(
            built=tuple(by_status.get(Status.BUILT, ())),
            failed=tuple(by_status.get(Status.FAILED, ())),
            blocked=tuple(by_status.get(Status.BLOCKED, ())),
        )

    @property
    def ok(self) -> bool:
        """True when nothing failed or was blocked."""
        return not (self.failed or self.blocked)

    def text(self, title: str = "socle") -> str:
        """A few lines for a chat channel: the counts, then the names per status."""
        if not (self.built or self.failed or self.blocked):
            return f"{title}: nothing to build, every image is current"
        counts = f"{len(self.built)} built, {len(self.failed)} failed, {len(self.blocked)} blocked"
        lines = [f"{title}: {counts}" if self.ok else f"{title}: FAILED ({counts})"]
        for label, names in (
            ("failed", self.failed),
            ("blocked", self.blocked),
            ("built", self.built),
        ):
            if names:
                lines.append(f"{label}: {_names(names)}")
        return "\n".join(lines)


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(_escape(name) for name in names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _escape(text: str) -> str:
    """Slack's three control characters, so an image name is never read as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class RunCollector:
    """An observer that remembers each image's last final status, for a :class:`RunReport`."""

    _FINAL = (Status.BUILT, Status.FAILED, Status.BLOCKED)

    def __init__(self) -> None:
        self._status: dict[str, Status] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.key is not None and event.status in self._FINAL:
            with self._lock:
                self._status[event.key] = event.status

    def report(self) -> RunReport:
        """What the events seen so far add up to."""
        with self._lock:
            items = list(self._status.items())
        return RunReport(
            built=tuple(k for k, s in items if s is Status.BUILT),
            failed=tuple(k for k, s in items if s is Status.FAILED),
            blocked=tuple(k for k, s in items if s is Status.BLOCKED),
        )


class WebhookNotifier:
    """POSTs a Slack-compatible `{"text": ...}` summary of a run to a URL.

    Also an observer: fed the executor's events, :meth:`finish` sends what
    they add up to. `timeout` applies to the client it makes, not to one given. One retry after a transport error or a 5xx/429 answer;
    a failure is logged as a warning and reported as False, never raised.
    """

    def __init__(
        self,
        url: str,
        *,
        title: str = "socle",
        timeout: float = WEBHOOK_TIMEOUT,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"webhook URL {url!r} must start with http:// or https://")
        import httpx

        self._url = url
        self._title = title
        self._client = client or httpx.Client(timeout=timeout)
        self._sleep = sleep
        self._collector = RunCollector()

    def __call__(self, event: Event) -> None:
        self._collector(event)

    def finish(self) -> bool:
        """Send the summary of the events observed; True if the webhook took it."""
        return self.notify(self._collector.report())

    def notify(self, report: RunReport) -> bool:
        """Send `report`; True if the webhook answered 2xx."""
        return self.post({"text": report.text(self._title)})

    def post(self, payload: dict[str, object]) -> bool:
        """POST `payload` as JSON, retrying once; True on a 2xx answer."""
        problem, retry = self._attempt(payload)
        if problem is not None and retry:
            self._sleep(RETRY_DELAY)
            problem, _ = self._attempt(payload)
        if problem is None:
            return True
        where = _where(self._url)
        log.warning("the run notification was not delivered to %s: %s", where, problem)
        return False

    def _attempt(self, payload: dict[str, object]) -> tuple[str | None, bool]:
        """(None, _) when delivered, else (what went wrong, whether a retry may help)."""
        import httpx

        try:
            response = self._client.post(self._url, json=payload)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}", True
        if response.is_success:
            return None, False
        retry = response.status_code >= 500 or response.status_code == 429
        return f"HTTP {response.status_code} {response.text[:200]}".strip(), retry

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def _where(url: str) -> str:
    """The URL without its path: chat webhook paths are secrets."""
    import httpx

    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"
