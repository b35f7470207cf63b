"""The run history: every build's run, outcomes and events, in SQLite or PostgreSQL.

`socle build`, `socle watch` and `socle serve` record into the same database;
the console reads it back. SQLAlchemy 2 models, Alembic migrations; a no-op
build records its run through the standard library's sqlite3 (sqlite.py), so
this package imports neither until a name below is asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HistoryStore", "RunRecorder", "default_url"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from socle.history import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
