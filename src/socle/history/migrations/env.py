"""Alembic's environment for socle's history: the engine comes from the caller, never a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from socle.history.models import Base

config = context.config
engine = config.attributes.get("engine")
assert isinstance(engine, Engine), "socle.history.migrate passes its engine"

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
    )
    with context.begin_transaction():
        context.run_migrations()
