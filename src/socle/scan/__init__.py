"""Vulnerability scanners: one interface, one module per implementation, listed in `SCANNERS`.

Implementations are imported when a factory runs, so the policy gate can use
the interface's value types without loading scanners.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from socle.errors import InputError
from socle.scan.interface import (
    Finding,
    FindingStatus,
    ScanError,
    Scanner,
    ScanReport,
    ScanTarget,
    Severity,
)

__all__ = [
    "SCANNERS",
    "Finding",
    "FindingStatus",
    "ScanError",
    "ScanReport",
    "ScanSettings",
    "ScanTarget",
    "Scanner",
    "Severity",
]


@dataclass(frozen=True)
class ScanSettings:
    """What scanners may need: the tracker data source (file, file:// or http(s) URL)
    and the cache folder (default `$XDG_CACHE_HOME/socle`)."""

    db: str | None = None
    cache_dir: Path | None = None


def _debian(settings: ScanSettings) -> Scanner:
    from socle.scan.debian import DebianTrackerScanner
    from socle.scan.tracker import SOURCE_HINT, load_tracker

    if not settings.db:
        raise InputError("the debian scanner needs the tracker data", hint=SOURCE_HINT)
    return DebianTrackerScanner(load_tracker(settings.db, cache_dir=settings.cache_dir))


def _trivy(settings: ScanSettings) -> Scanner:
    from socle.scan.external import TrivyScanner

    _require("trivy")
    return TrivyScanner()


def _grype(settings: ScanSettings) -> Scanner:
    from socle.scan.external import GrypeScanner

    _require("grype")
    return GrypeScanner()


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise InputError(f"{tool} is not installed", hint="use --scanner debian, or install it")


SCANNERS: dict[str, Callable[[ScanSettings], Scanner]] = {
    "debian": _debian,
    "grype": _grype,
    "trivy": _trivy,
}
