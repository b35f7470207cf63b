"""The one SOURCE_DATE_EPOCH rule and the one timestamp format every socle image carries."""

from __future__ import annotations

from datetime import UTC, datetime


def day_epoch(now: datetime | None = None) -> int:
    """SOURCE_DATE_EPOCH of a run: its day at 00:00 UTC, so one day's builds agree."""
    day = (now or datetime.now(UTC)).astimezone(UTC).date()
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def rfc3339(epoch: int) -> str:
    """`epoch` as an RFC 3339 UTC timestamp, e.g. 2024-01-31T00:00:00Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
