"""Every build leaves a run in the history: its trigger, reasons, events and outcomes.

`socle build`, `socle watch` and the console's runner all go through
:func:`recorded`, so the console sees every run, whoever started it. A history
database that fails in the middle of a run costs a warning, never the build.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from socle.core.plan import Plan
from socle.errors import SocleError
from socle.events import Event, Observer, Status
from socle.history.interface import History, OutcomeRecord, Recorder

if TYPE_CHECKING:
    from socle.executor import Outcome

log = logging.getLogger(__name__)


@dataclass
class Recording:
    """The observer to pass to the executor, and the outcomes to hand back at the end.

    Events are written by a thread of their own, in order: neither the executor
    nor the progress a user watches (`--events json`) waits for the database.
    """

    recorder: Recorder | None
    outcomes: list[Outcome] = field(default_factory=list)
    _warned: bool = False

    def __post_init__(self) -> None:
        self._pending: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        if self.recorder is not None:
            self._writer = threading.Thread(target=self._write, name="socle-history", daemon=True)
            self._writer.start()

    def __call__(self, event: Event) -> None:
        if self._writer is not None:
            self._pending.put(event)

    def _write(self) -> None:
        assert self.recorder is not None
        while (event := self._pending.get()) is not None:
            try:
                self.recorder.record(
                    event.status.value, event.key, event.message, event.digest, event.seconds
                )
            except SocleError as exc:
                self._warn(exc)

    def flush(self) -> None:
        """Write every event received so far, then stop the writer (the run is ending)."""
        if self._writer is not None:
            self._pending.put(None)
            self._writer.join()
            self._writer = None

    def _warn(self, exc: SocleError) -> None:
        if not self._warned:
            log.warning("the run goes on without its history: %s", exc.message)
            self._warned = True

    @property
    def run_id(self) -> int | None:
        return self.recorder.run_id if self.recorder is not None else None


def plan_reasons(plan: Plan, selected: set[str] | None = None) -> list[dict[str, object]]:
    """The plan's builds and their reasons, as the run keeps them."""
    return [
        {"key": s.variant.key, "reasons": [r.text for r in s.reasons]}
        for s in plan.builds()
        if selected is None or s.variant.key in selected
    ]


def summarise(outcomes: Sequence[Outcome]) -> tuple[str, str]:
    """The run's status and its one-line summary."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status.value] = counts.get(o.status.value, 0) + 1
    bad = counts.get(Status.FAILED.value, 0) + counts.get(Status.BLOCKED.value, 0)
    text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing to do"
    return ("failed" if bad else "succeeded"), text


def to_record(outcome: Outcome) -> OutcomeRecord:
    return OutcomeRecord(
        key=outcome.key,
        status=outcome.status.value,
        digest=outcome.digest,
        seconds=outcome.seconds,
        error=outcome.error,
        tags=tuple(outcome.tags_moved),
        notes=tuple(outcome.notes),
        reasons=tuple(r.text for r in outcome.step.reasons),
        details=dict(outcome.details),
    )


@contextmanager
def recorded(
    store: History | None,
    *,
    trigger: str,
    catalog: str,
    registry: str,
    plan: Plan,
    selected: set[str] | None = None,
    user: str | None = None,
    reason: str = "",
) -> Iterator[Recording]:
    """Record one run around the block; set `recording.outcomes` before it ends.

    An exception leaving the block (Ctrl-C, a registry lost) ends the run as
    interrupted or failed, with the error as its summary.
    """
    recorder = None
    if store is not None:
        mark_dead_runs(store)
        reasons = plan_reasons(plan, selected)
        recorder = store.start_run(
            trigger=trigger,
            catalog=catalog,
            registry=registry,
            reasons=reasons,
            planned=len(reasons),
            user=user,
            reason=reason,
        )
    recording = Recording(recorder)
    try:
        yield recording
    except KeyboardInterrupt:
        _finish(recording, "interrupted", "interrupted (Ctrl-C or a signal)")
        raise
    except SocleError as exc:
        _finish(recording, "failed", exc.message)
        raise
    except BaseException as exc:
        _finish(recording, "failed", f"{type(exc).__name__}: {exc}")
        raise
    status, summary = summarise(recording.outcomes)
    _finish(recording, status, summary)


def mark_dead_runs(store: History) -> int:
    """Close the runs of this host whose process died (a failing database costs a warning)."""
    try:
        marked = store.mark_dead_runs()
    except SocleError as exc:
        log.warning("checking for dead runs failed: %s", exc.message)
        return 0
    if marked:
        log.info("%d run(s) marked interrupted: their process ended without finishing", marked)
    return marked


def _finish(recording: Recording, status: str, summary: str) -> None:
    recording.flush()
    if recording.recorder is None or recording.recorder.finished:
        return
    try:
        recording.recorder.finish(
            [to_record(o) for o in recording.outcomes], status=status, summary=summary
        )
    except SocleError as exc:
        recording._warn(exc)


def observers(*found: Observer | None) -> list[Observer]:
    return [o for o in found if o is not None]
