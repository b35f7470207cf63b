"""Record runs into a current SQLite history with the standard library's sqlite3.

Every `socle build` records its run, even one with nothing to do, and
importing SQLAlchemy alone costs more than the rest of such a build. So when
the history is a plain `sqlite:///FILE` whose schema is at this socle's head,
the run, its events and its outcomes are written with plain SQL into the very
tables models.py declares, in the formats SQLAlchemy writes (its SQLite
`DATETIME` text, `json.dumps` for JSON columns): the console reads them back
through HistoryStore exactly as if SQLAlchemy had written them.

Anything else goes through HistoryStore: a file still to create, an older
schema to migrate, one from a newer socle (refused there), PostgreSQL, a URL
with options. :func:`open_current` answers None for those.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from socle.errors import SocleError
from socle.history import processes
from socle.history.interface import OutcomeRecord, plain
from socle.history.revisions import VERSION_TABLE, head

PREFIX = "sqlite:///"
MESSAGE_LIMIT = 4000  # as RunRecorder.record keeps an event's message


def open_current(url: str) -> SqliteHistory | None:
    """The history at `url` for sqlite3, or None when HistoryStore must open it.

    None unless `url` is `sqlite:///PATH` (no options, no escapes), PATH exists,
    and its `alembic_version` holds exactly this socle's head revision.
    """
    if not url.startswith(PREFIX):
        return None
    database = url[len(PREFIX) :]
    if not database or database == ":memory:" or any(c in database for c in "?%#"):
        return None
    if not Path(database).is_file():
        return None
    connection = None
    try:
        connection = sqlite3.connect(database, timeout=30, check_same_thread=False)
        _pragmas(connection)
        found = connection.execute(f"select version_num from {VERSION_TABLE}").fetchall()
        if [row[0] for row in found] != [head()]:
            connection.close()
            return None
    except sqlite3.Error:  # not a database, no version table, locked: HistoryStore says why
        if connection is not None:
            connection.close()
        return None
    return SqliteHistory(connection, url)


def _pragmas(connection: sqlite3.Connection) -> None:
    """The same as HistoryStore's engine sets on each connection."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=30000")
    connection.execute("PRAGMA foreign_keys=ON")


class SqliteHistory:
    """One sqlite3 connection, shared by the run's threads under a lock."""

    def __init__(self, connection: sqlite3.Connection, url: str) -> None:
        self.connection = connection
        self.url = url
        self._lock = threading.Lock()

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> SqliteHistory:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One transaction, committed at the end; a database error is a SocleError."""
        with self._lock:
            cursor = self.connection.cursor()
            try:
                yield cursor
                self.connection.commit()
            except sqlite3.Error as exc:
                self.connection.rollback()
                raise SocleError(
                    f"the history database {self.url} failed: {_first_line(exc)}"
                ) from None
            finally:
                cursor.close()

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
    ) -> SqliteRecorder:
        """Record a run as started; the recorder takes its events and its end."""
        with self.transaction() as cursor:
            cursor.execute(
                'insert into runs (started_at, finished_at, "trigger", catalog, registry, status,'
                " summary, reason, reasons, planned, user, pid, host, process)"
                " values (?, null, ?, ?, ?, 'running', '', ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(),
                    trigger,
                    catalog,
                    registry,
                    reason,
                    json.dumps([dict(r) for r in reasons]),
                    planned,
                    user,
                    os.getpid(),
                    processes.host_name(),
                    processes.identity(os.getpid()),
                ),
            )
            run_id = cursor.lastrowid
        assert run_id is not None
        return SqliteRecorder(self, run_id)

    def mark_dead_runs(self) -> int:
        """As HistoryStore.mark_dead_runs: this host's runs whose process ended unfinished."""
        host = processes.host_name()
        marked = 0
        with self.transaction() as cursor:
            rows = cursor.execute(
                "select id, pid, process from runs where status = 'running'"
                " and finished_at is null and host = ? and pid is not null",
                (host,),
            ).fetchall()
            for run_id, pid, process in rows:
                if processes.alive(pid, process):
                    continue
                cursor.execute(
                    "update runs set status = 'interrupted', finished_at = ?, summary = ?"
                    " where id = ? and status = 'running'",
                    (
                        _now(),
                        f"its process (pid {pid} on {host}) ended without finishing the run",
                        run_id,
                    ),
                )
                marked += max(cursor.rowcount, 0)
        return marked


class SqliteRecorder:
    """The run's events, then its outcomes and end, as RunRecorder writes them."""

    def __init__(self, history: SqliteHistory, run_id: int) -> None:
        self.history = history
        self.run_id = run_id
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
        with self.history.transaction() as cursor:
            cursor.execute(
                'insert into events (run_id, at, status, "key", message, digest, seconds)'
                " values (?, ?, ?, ?, ?, ?, ?)",
                (self.run_id, _now(), status, key, message[:MESSAGE_LIMIT], digest, seconds),
            )

    def finish(self, outcomes: Sequence[OutcomeRecord], *, status: str, summary: str) -> None:
        """Record every outcome and the run's end, in one transaction."""
        with self.history.transaction() as cursor:
            cursor.executemany(
                'insert into outcomes (run_id, "key", status, digest, seconds, error, tags, notes,'
                " reasons, details) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        self.run_id,
                        o.key,
                        o.status,
                        o.digest,
                        o.seconds,
                        o.error,
                        json.dumps(list(o.tags)),
                        json.dumps(list(o.notes)),
                        json.dumps(list(o.reasons)),
                        json.dumps(plain(o.details)),
                    )
                    for o in outcomes
                ],
            )
            cursor.execute(
                "update runs set finished_at = ?, status = ?, summary = ? where id = ?",
                (_now(), status, summary, self.run_id),
            )
            if cursor.rowcount != 1:
                raise sqlite3.IntegrityError(f"run {self.run_id} is not in the history")
        self.finished = True


def _now() -> str:
    """Now in UTC, as SQLAlchemy's SQLite DATETIME stores it (HistoryStore reads it as UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
