"""The scanner edge: what a vulnerability scanner is asked, and what it answers.

Every scanner, built in or external, reports :class:`Finding` values in a
:class:`ScanReport`; the policy gate and the display only ever see those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from socle.core.findings import Finding, FindingStatus, ScanReport, Severity, sort_findings
from socle.errors import SocleError

if TYPE_CHECKING:  # the SBOM model is for the scanners, not for every catalog
    from socle.sbom.model import Inventory


class ScanError(SocleError):
    """A scan that could not run or whose data could not be read."""


@dataclass(frozen=True)
class ScanTarget:
    """What is scanned: an image's OCI layout, its inventory and the name it goes by."""

    image: str
    digest: str
    layout: Path
    inventory: Inventory


class Scanner(Protocol):
    """A vulnerability scanner; implementations are listed by name in `socle.scan.SCANNERS`."""

    name: str

    def scan(self, target: ScanTarget) -> ScanReport:
        """Scan `target`; raise :class:`ScanError` when the scan cannot run."""
        ...


__all__ = [
    "Finding",
    "FindingStatus",
    "ScanError",
    "ScanReport",
    "ScanTarget",
    "Scanner",
    "Severity",
    "sort_findings",
]
