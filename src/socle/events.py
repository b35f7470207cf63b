"""Progress as events: the executor emits them, displays and logs subscribe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    """Where one variant stands in a run."""

    QUEUED = "queued"
    BUILDING = "building"
    TESTING = "testing"  # running a gate (tests, SBOM, scan)
    PUSHING = "pushing"
    BUILT = "built"
    SKIPPED = "skipped"
    FAILED = "failed"
    BLOCKED = "blocked"  # an ancestor failed
    TAGGING = "tagging"  # the tag phase: floating tags are moving (key None: the run)
    TAGGED = "tagged"


@dataclass(frozen=True)
class Event:
    """Something that happened to one variant (or, with key None, to the run)."""

    status: Status
    key: str | None
    message: str = ""
    digest: str | None = None
    seconds: float | None = None


Observer = Callable[[Event], None]


def ignore(event: Event) -> None:
    """An observer that listens to nothing (the default for library callers)."""
