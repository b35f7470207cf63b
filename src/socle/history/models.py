"""The history's tables (SQLAlchemy 2 declarative models).

Changing a table means a new Alembic revision in `migrations/versions/`;
`tests/unit/history/test_migrations.py` checks the models and the migrations agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Run(Base):
    """One `socle build` (or promote, or prune): who started it, what it was for, how it ended."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    trigger: Mapped[str] = mapped_column(String(32))  # cli, watch, serve, webhook, promote, prune
    catalog: Mapped[str] = mapped_column(String(1024))
    registry_host: Mapped[str] = mapped_column("registry", String(255))
    # running, succeeded, failed, interrupted (a run whose process died is marked interrupted by
    # HistoryStore.mark_dead_runs, from the host that ran it)
    status: Mapped[str] = mapped_column(String(16), index=True)
    summary: Mapped[str] = mapped_column(Text, default="")  # one line: what it did
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")  # why it was started
    reasons: Mapped[list[Any]] = mapped_column(default=list)  # [{"key":..., "reasons":[...]}]
    planned: Mapped[int] = mapped_column(Integer, default=0)
    user: Mapped[str | None] = mapped_column(String(255))  # the console user who asked, if any
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))  # where `pid` ran
    # the process's boot id, pid namespace and start time: tells a reused pid apart (Linux)
    process: Mapped[str | None] = mapped_column(String(128))

    outcomes: Mapped[list[Outcome]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Outcome.id"
    )


class Outcome(Base):
    """What one run did to one variant."""

    __tablename__ = "outcomes"
    __table_args__ = (Index("ix_outcomes_key_run", "key", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # built, skipped, failed, blocked
    digest: Mapped[str | None] = mapped_column(String(80))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[Any]] = mapped_column(default=list)  # tags moved
    notes: Mapped[list[Any]] = mapped_column(default=list)  # one line per gate
    reasons: Mapped[list[Any]] = mapped_column(default=list)  # why it was rebuilt
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # gate results (tests, cves...)

    run: Mapped[Run] = relationship(back_populates="outcomes")


class RunEvent(Base):
    """One progress event of a run, in order: the live page and the log tail read these."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_run_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    key: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str | None] = mapped_column(String(80))
    seconds: Mapped[float | None] = mapped_column(Float)


class VariantState(Base):
    """The overview's row for one variant, as last read from the registry (not per request)."""

    __tablename__ = "variant_states"

    catalog: Mapped[str] = mapped_column(String(1024), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    image: Mapped[str] = mapped_column(String(255))
    repository: Mapped[str] = mapped_column(String(255))
    parent: Mapped[str | None] = mapped_column(String(255))  # the parent variant's key
    level: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    digest: Mapped[str | None] = mapped_column(String(80))  # published digest of the exact tag
    base_name: Mapped[str | None] = mapped_column(String(512))
    base_digest: Mapped[str | None] = mapped_column(String(80))
    created: Mapped[datetime | None]  # when the published image was built
    status: Mapped[str] = mapped_column(String(16))  # current, stale, vulnerable, unsigned, failed
    reasons: Mapped[list[Any]] = mapped_column(default=list)  # why it would be rebuilt now
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)  # socle's records
    vulnerabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)  # severity -> count
    signed: Mapped[str | None] = mapped_column(String(16))  # yes, no, unknown
    refreshed_at: Mapped[datetime]
