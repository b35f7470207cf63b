"""Open, migrate and use the history database.

SQLite under socle's data folder by default (`history.db`), PostgreSQL by URL
(`postgresql+psycopg://user@127.0.0.1/socle`). Opening migrates an older
schema forward with Alembic and refuses one migrated by a newer socle.
Reads return plain frozen values, so no caller holds a session.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from socle.errors import InputError, SocleError
from socle.history import processes
from socle.history.interface import OutcomeRecord as OutcomeRecord
from socle.history.interface import default_url as default_url
from socle.history.interface import plain
from socle.history.models import Outcome, Run, RunEvent, VariantState
from socle.history.revisions import MIGRATIONS as MIGRATIONS

LOG_TAIL = 200  # events kept as a run's log tail on its page
STATUS_REASON_FIRST = ("failed", "vulnerable", "unsigned")  # their rows' first reason is theirs


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and pages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


@dataclass(frozen=True)
class OutcomeView:
    key: str
    status: str
    digest: str | None
    seconds: float
    error: str | None
    tags: tuple[str, ...]
    notes: tuple[str, ...]
    reasons: tuple[str, ...]
    details: Mapping[str, Any]
    run_id: int
    at: datetime | None = None  # when its run finished (or started)


@dataclass(frozen=True)
class RunView:
    id: int
    started_at: datetime
    finished_at: datetime | None
    trigger: str
    catalog: str
    registry: str
    status: str
    summary: str
    planned: int
    user: str | None
    reasons: tuple[Mapping[str, Any], ...] = ()
    reason: str = ""  # why it was started ("push of my/debian:12", "rebuild asked by ana")
    outcomes: tuple[OutcomeView, ...] = ()
    pid: int | None = None  # the process that recorded it
    host: str | None = None  # where that process ran

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class EventView:
    id: int
    at: datetime
    status: str
    key: str | None
    message: str
    digest: str | None
    seconds: float | None

    def line(self) -> str:
        """The event as one log line."""
        when = self.at.strftime("%H:%M:%S")
        parts = [when, self.status, self.key or "run"]
        if self.message:
            parts.append(self.message)
        if self.digest:
            parts.append(self.digest)
        took = f"{self.seconds:.1f} s" if self.seconds is not None else ""
        if took and took not in self.message:  # "built in 4.8 s" says it already
            parts.append(took)
        return " ".join(parts)


@dataclass(frozen=True)
class StateView:
    """One variant on the overview, as last refreshed from the registry."""

    key: str
    image: str
    repository: str
    parent: str | None
    level: int
    tags: tuple[str, ...]
    digest: str | None
    base_name: str | None
    base_digest: str | None
    created: datetime | None
    status: str  # current, stale, vulnerable, unsigned, failed, missing
    reasons: tuple[str, ...]
    annotations: Mapping[str, Any] = field(default_factory=dict)
    vulnerabilities: Mapping[str, int] = field(default_factory=dict)
    signed: str | None = None
    refreshed_at: datetime | None = None

    @property
    def plan_reasons(self) -> tuple[str, ...]:
        """Why the plan would rebuild it now, without the status's own reason.

        The refresh (serve/snapshot.py) puts the reason of a failed, vulnerable
        or unsigned status first and keeps the plan's reasons after it.
        """
        if self.status in STATUS_REASON_FIRST:
            return self.reasons[1:]
        return self.reasons


class HistoryStore:
    """The database: one engine, short sessions, safe to share between threads."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> HistoryStore:
        """Connect, check the schema's revision, and migrate it forward (or create it).

        One clear error when the database is unreachable, or was migrated by a
        newer socle than this one.
        """
        url = url or default_url()
        engine = _engine(url)
        store = cls(engine, url)
        from socle.history.migrate import check_and_upgrade

        check_and_upgrade(engine, url, migrate=migrate)
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except DBAPIError as exc:
                session.rollback()
                raise SocleError(
                    f"the history database {redact(self.url)} failed: {_first_line(exc)}"
                ) from None

    # -- writing ---------------------------------------------------------------------------

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
    ) -> RunRecorder:
        """Record a run as started; the recorder takes its events and its end."""
        with self.session() as session:
            run = Run(
                started_at=_now(),
                finished_at=None,
                trigger=trigger,
                catalog=catalog,
                registry_host=registry,
                status="running",
                summary="",
                reasons=[dict(r) for r in reasons],
                planned=planned,
                user=user,
                reason=reason,
                pid=os.getpid(),
                host=processes.host_name(),
                process=processes.identity(os.getpid()),
            )
            session.add(run)
            session.flush()
            run_id = run.id
        return RunRecorder(self, run_id)

    def mark_dead_runs(self) -> int:
        """Mark "interrupted" the runs of this host whose process ended without finishing them.

        A process killed outright (SIGKILL, the power lost) never records its
        end: its run would stay "running" and its live page would wait forever.
        Only runs recorded on this host are checked (a pid means nothing
        elsewhere), and runs recorded before socle kept the host are left alone.
        How many runs were marked.
        """
        host = processes.host_name()
        marked = 0
        with self.session() as session:
            rows = session.execute(
                select(Run.id, Run.pid, Run.process).where(
                    Run.status == "running",
                    Run.finished_at.is_(None),
                    Run.host == host,
                    Run.pid.is_not(None),
                )
            ).all()
            for run_id, pid, process in rows:
                if pid is None or processes.alive(pid, process):
                    continue
                done = session.execute(
                    update(Run)
                    .where(Run.id == run_id, Run.status == "running")
                    .values(
                        status="interrupted",
                        finished_at=_now(),
                        summary=f"its process (pid {pid} on {host}) ended without "
                        "finishing the run",
                    )
                )
                marked += int(getattr(done, "rowcount", 0) or 0)
        return marked

    def replace_states(self, catalog: str, states: Iterable[StateView]) -> None:
        """The overview's rows for `catalog`, all replaced at once."""
        now = _now()
        with self.session() as session:
            session.execute(delete(VariantState).where(VariantState.catalog == catalog))
            session.add_all(
                VariantState(
                    catalog=catalog,
                    key=s.key,
                    image=s.image,
                    repository=s.repository,
                    parent=s.parent,
                    level=s.level,
                    tags=list(s.tags),
                    digest=s.digest,
                    base_name=s.base_name,
                    base_digest=s.base_digest,
                    created=s.created,
                    status=s.status,
                    reasons=list(s.reasons),
                    annotations=dict(s.annotations),
                    vulnerabilities=dict(s.vulnerabilities),
                    signed=s.signed,
                    refreshed_at=s.refreshed_at or now,
                )
                for s in states
            )

    def prune_runs(self, keep: int) -> int:
        """Forget all but the newest `keep` runs; how many were removed."""
        with self.session() as session:
            ids = session.scalars(select(Run.id).order_by(Run.id.desc()).offset(keep)).all()
            if ids:
                session.execute(delete(RunEvent).where(RunEvent.run_id.in_(ids)))
                session.execute(delete(Outcome).where(Outcome.run_id.in_(ids)))
                session.execute(delete(Run).where(Run.id.in_(ids)))
            return len(ids)

    # -- reading ---------------------------------------------------------------------------

    def runs(self, *, limit: int = 50, offset: int = 0) -> list[RunView]:
        """The newest runs first, without their outcomes."""
        with self.session() as session:
            rows = session.scalars(
                select(Run).order_by(Run.id.desc()).limit(limit).offset(offset)
            ).all()
            return [_run_view(r, outcomes=False) for r in rows]

    def count_runs(self) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count(Run.id))) or 0)

    def run(self, run_id: int) -> RunView | None:
        """One run with its outcomes, or None."""
        with self.session() as session:
            row = session.get(Run, run_id)
            return _run_view(row, outcomes=True) if row is not None else None

    def events(self, run_id: int, *, after: int = 0, limit: int = 1000) -> list[EventView]:
        """A run's events after the event id `after`, oldest first."""
        with self.session() as session:
            rows = session.scalars(
                select(RunEvent)
                .where(RunEvent.run_id == run_id, RunEvent.id > after)
                .order_by(RunEvent.id)
                .limit(limit)
            ).all()
            return [_event_view(e) for e in rows]

    def log_tail(self, run_id: int, lines: int = LOG_TAIL) -> list[EventView]:
        """A run's last `lines` events, oldest first."""
        with self.session() as session:
            rows = session.scalars(
                select(RunEvent)
                .where(RunEvent.run_id == run_id)
                .order_by(RunEvent.id.desc())
                .limit(lines)
            ).all()
            return [_event_view(e) for e in reversed(rows)]

    def outcomes_of(self, key: str, *, limit: int = 20) -> list[OutcomeView]:
        """What the newest runs did to one variant, newest first."""
        with self.session() as session:
            rows = session.execute(
                select(Outcome, Run.finished_at, Run.started_at)
                .join(Run)
                .where(Outcome.key == key)
                .order_by(Outcome.run_id.desc())
                .limit(limit)
            ).all()
            return [_outcome_view(o, finished or started) for o, finished, started in rows]

    def latest_outcomes(self) -> dict[str, OutcomeView]:
        """Each variant's newest recorded outcome."""
        return self._newest_outcomes()

    def latest_built(self) -> dict[str, OutcomeView]:
        """Each variant's newest outcome with a digest (its gate results live there)."""
        return self._newest_outcomes(status="built")

    def _newest_outcomes(self, status: str | None = None) -> dict[str, OutcomeView]:
        with self.session() as session:
            newest = select(Outcome.key, func.max(Outcome.id).label("id"))
            if status is not None:
                newest = newest.where(Outcome.status == status)
            chosen = newest.group_by(Outcome.key).subquery()
            rows = session.execute(
                select(Outcome, Run.finished_at, Run.started_at)
                .join(chosen, Outcome.id == chosen.c.id)
                .join(Run)
            ).all()
            return {o.key: _outcome_view(o, finished or started) for o, finished, started in rows}

    def states(self, catalog: str) -> list[StateView]:
        """The overview's rows for `catalog`, parents first."""
        with self.session() as session:
            rows = session.scalars(
                select(VariantState)
                .where(VariantState.catalog == catalog)
                .order_by(VariantState.level, VariantState.key)
            ).all()
            return [_state_view(s) for s in rows]

    def state(self, catalog: str, key: str) -> StateView | None:
        with self.session() as session:
            row = session.get(VariantState, (catalog, key))
            return _state_view(row) if row is not None else None

    def last_finished(self) -> RunView | None:
        """The newest finished run."""
        with self.session() as session:
            row = session.scalars(
                select(Run).where(Run.finished_at.is_not(None)).order_by(Run.id.desc()).limit(1)
            ).first()
            return _run_view(row, outcomes=False) if row is not None else None

    def durations(self) -> list[tuple[str, str, float]]:
        """(key, status, seconds) of every recorded built or failed outcome (for histograms)."""
        with self.session() as session:
            rows = session.execute(
                select(Outcome.key, Outcome.status, Outcome.seconds).where(
                    Outcome.status.in_(("built", "failed"))
                )
            ).all()
            return [(k, s, float(sec)) for k, s, sec in rows]

    def outcome_counts(self) -> dict[str, int]:
        """How many outcomes of each status the history holds."""
        with self.session() as session:
            rows = session.execute(
                select(Outcome.status, func.count(Outcome.id)).group_by(Outcome.status)
            ).all()
            return {status: int(count) for status, count in rows}


class RunRecorder:
    """An executor observer that records a run's events, then its outcomes and end."""

    def __init__(self, store: HistoryStore, run_id: int) -> None:
        self.store = store
        self.run_id = run_id
        self._lock = threading.Lock()
        self.finished = False

    def record(
        self,
        status: str,
        key: str | None,
        message: str = "",
        digest: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Store one event (thread-safe: the executor's workers call this)."""
        with self._lock, self.store.session() as session:
            session.add(
                RunEvent(
                    run_id=self.run_id,
                    at=_now(),
                    status=status,
                    key=key,
                    message=message[:4000],
                    digest=digest,
                    seconds=seconds,
                )
            )

    def finish(self, outcomes: Sequence[OutcomeRecord], *, status: str, summary: str) -> None:
        """Record every outcome and the run's end, in one transaction."""
        with self._lock, self.store.session() as session:
            run = session.get(Run, self.run_id)
            assert run is not None
            run.outcomes.extend(
                Outcome(
                    key=o.key,
                    status=o.status,
                    digest=o.digest,
                    seconds=o.seconds,
                    error=o.error,
                    tags=list(o.tags),
                    notes=list(o.notes),
                    reasons=list(o.reasons),
                    details=plain(o.details),
                )
                for o in outcomes
            )
            run.finished_at = _now()
            run.status = status
            run.summary = summary
        self.finished = True


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(
            f"--db: {redact(url)} is not a database URL",
            hint="e.g. sqlite:////var/lib/socle/history.db or "
            "postgresql+psycopg://socle@127.0.0.1/socle",
        ) from None
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    try:
        engine = create_engine(url, **options)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise InputError(
            f"--db: cannot use {redact(url)}: {_first_line(exc)}",
            hint="socle speaks sqlite:/// and postgresql+psycopg:// URLs",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # the console reads while a build writes
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, no fsync per event
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def unreachable(url: str, exc: Exception) -> SocleError:
    return SocleError(
        f"cannot open the history database {redact(url)}: {_first_line(exc)}",
        hint="check --db (or SOCLE_DB), that the server runs and accepts this user",
    )


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError | OperationalError) and exc.orig is not None:
        exc = exc.orig
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(when: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything socle stores is UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def _run_view(run: Run, *, outcomes: bool) -> RunView:
    finished = _aware(run.finished_at)
    started = _aware(run.started_at)
    assert started is not None
    return RunView(
        id=run.id,
        started_at=started,
        finished_at=finished,
        trigger=run.trigger,
        catalog=run.catalog,
        registry=run.registry_host,
        status=run.status,
        summary=run.summary,
        planned=run.planned,
        user=run.user,
        reasons=tuple(run.reasons or ()),
        reason=run.reason or "",
        pid=run.pid,
        host=run.host,
        outcomes=tuple(_outcome_view(o, finished or started) for o in run.outcomes)
        if outcomes
        else (),
    )


def _outcome_view(o: Outcome, at: datetime | None) -> OutcomeView:
    return OutcomeView(
        key=o.key,
        status=o.status,
        digest=o.digest,
        seconds=o.seconds,
        error=o.error,
        tags=tuple(o.tags or ()),
        notes=tuple(o.notes or ()),
        reasons=tuple(o.reasons or ()),
        details=o.details or {},
        run_id=o.run_id,
        at=_aware(at),
    )


def _event_view(e: RunEvent) -> EventView:
    at = _aware(e.at)
    assert at is not None
    return EventView(e.id, at, e.status, e.key, e.message, e.digest, e.seconds)


def _state_view(s: VariantState) -> StateView:
    return StateView(
        key=s.key,
        image=s.image,
        repository=s.repository,
        parent=s.parent,
        level=s.level,
        tags=tuple(s.tags or ()),
        digest=s.digest,
        base_name=s.base_name,
        base_digest=s.base_digest,
        created=_aware(s.created),
        status=s.status,
        reasons=tuple(s.reasons or ()),
        annotations=s.annotations or {},
        vulnerabilities=s.vulnerabilities or {},
        signed=s.signed,
        refreshed_at=_aware(s.refreshed_at),
    )
