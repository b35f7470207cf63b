"""The run history: every build's run, outcomes and events, in SQLite or PostgreSQL.

`socle build`, `socle watch` and `socle serve` record into the same database;
the console reads it back. SQLAlchemy 2 models, Alembic migrations.
"""

from socle.history.store import HistoryStore, RunRecorder, default_url

__all__ = ["HistoryStore", "RunRecorder", "default_url"]
