"""What a vulnerability scan found: severities, findings and reports (pure values).

The scanners that produce them are edges (:mod:`socle.scan`); the policy that
judges them (:mod:`socle.core.policy`) reads only these values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from socle.errors import InputError


@functools.total_ordering
class Severity(Enum):
    """How bad a vulnerability is; ordered negligible < unknown < low < ... < critical."""

    NEGLIGIBLE = "negligible"
    UNKNOWN = "unknown"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order, 0 for negligible."""
        return list(Severity).index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    @classmethod
    def parse(cls, text: str) -> Severity:
        """A severity from its name in any case; :class:`InputError` listing the names."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise InputError(f"unknown severity {text!r}: use one of {names}") from None


class FindingStatus(Enum):
    """Whether the vulnerable package can be fixed by upgrading."""

    FIXED = "fixed"  # a fixed version exists: upgrading removes the finding
    OPEN = "open"  # affected, no fix published yet
    UNDETERMINED = "undetermined"
    WONT_FIX = "wont-fix"
    END_OF_LIFE = "end-of-life"


@dataclass(frozen=True)
class Finding:
    """One vulnerability in one installed package."""

    cve: str
    package: str
    source_package: str
    installed: str
    fixed_version: str | None
    severity: Severity
    status: FindingStatus

    def to_json(self) -> dict[str, Any]:
        """The finding as plain JSON values."""
        return {
            "cve": self.cve,
            "package": self.package,
            "source_package": self.source_package,
            "installed": self.installed,
            "fixed_version": self.fixed_version,
            "severity": self.severity.value,
            "status": self.status.value,
        }


@dataclass(frozen=True)
class ScanReport:
    """A scanner's findings for one image, and how current its data was."""

    scanner: str
    image: str
    digest: str
    findings: tuple[Finding, ...]
    database: str
    database_date: datetime | None = None
    warnings: tuple[str, ...] = ()

    def at_or_above(self, severity: Severity) -> tuple[Finding, ...]:
        """The findings of `severity` or worse."""
        return tuple(f for f in self.findings if f.severity >= severity)

    def counts(self) -> Mapping[Severity, int]:
        """How many findings of each severity, worst first, zeros left out."""
        counts = dict.fromkeys(sorted(Severity, reverse=True), 0)
        for finding in self.findings:
            counts[finding.severity] += 1
        return {s: n for s, n in counts.items() if n}

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        return {
            "scanner": self.scanner,
            "image": self.image,
            "digest": self.digest,
            "database": self.database,
            "database_date": self.database_date.isoformat() if self.database_date else None,
            "warnings": list(self.warnings),
            "findings": [f.to_json() for f in self.findings],
        }


def sort_findings(findings: list[Finding]) -> tuple[Finding, ...]:
    """Worst first, then by CVE and package, for stable reports."""
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.cve, f.package)))
