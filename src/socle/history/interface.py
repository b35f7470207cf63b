"""What recording a run needs from the history, without SQLAlchemy.

Two implementations write runs: :class:`socle.history.store.HistoryStore`
(SQLAlchemy: SQLite or PostgreSQL, migrations, every read the console makes)
and :class:`socle.history.sqlite.SqliteHistory` (the standard library's
sqlite3, for a SQLite file already at this socle's schema: what a `socle
build` with nothing to do uses, since importing SQLAlchemy alone costs more
than the rest of it). Both write the same rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self


def default_url() -> str:
    """$SOCLE_DB, else SQLite in socle's data folder ($XDG_DATA_HOME/socle/history.db)."""
    url = os.environ.get("SOCLE_DB")
    if url:
        return url
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return f"sqlite:///{base / 'socle' / 'history.db'}"


@dataclass(frozen=True)
class OutcomeRecord:
    """What the executor reports of one variant, as the history keeps it."""

    key: str
    status: str
    digest: str | None = None
    seconds: float = 0.0
    error: str | None = None
    tags: Sequence[str] = ()
    notes: Sequence[str] = ()
    reasons: Sequence[str] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


class Recorder(Protocol):
    """One run being recorded: its events as they come, then its outcomes and end."""

    run_id: int
    finished: bool

    def record(
        self,
        status: str,
        key: str | None,
        message: str = "",
        digest: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Store one event (thread-safe: the executor's workers call this)."""

    def finish(self, outcomes: Sequence[OutcomeRecord], *, status: str, summary: str) -> None:
        """Record every outcome and the run's end, in one transaction."""


class History(Protocol):
    """A history database that runs are recorded into."""

    def start_run(
        self,
        *,
        trigger: str,
        catalog: str,
        registry: str,
        reasons: Sequence[Mapping[str, Any]] = (),
        planned: int = 0,
        user: str | None = None,
        reason: str = "",
    ) -> Recorder:
        """Record a run as started; the recorder takes its events and its end."""

    def mark_dead_runs(self) -> int:
        """Mark "interrupted" the runs of this host whose process died; how many."""

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *_: object) -> None: ...


def plain(value: Any) -> Any:
    """JSON-safe copies of the gates' results."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
