"""socle's built-in scanner: Debian packages matched against the Debian Security Tracker.

The tracker is keyed by *source* package, then issue (CVE-... or TEMP-...),
then release codename: `{"status": "resolved"|"open"|"undetermined",
"fixed_version": ..., "urgency": ...}`. A binary package is vulnerable when
its source's entry for the image's release is open or undetermined, or when
its source version sorts below `fixed_version` in Debian's version order.
`fixed_version` "0" means that release was never affected.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from debian.debian_support import version_compare

from socle.errors import InputError
from socle.sbom.model import Distro, Ecosystem, Package
from socle.scan.interface import (
    Finding,
    FindingStatus,
    ScanReport,
    ScanTarget,
    Severity,
    sort_findings,
)
from socle.scan.tracker import TrackerSnapshot

CODENAMES = {
    "8": "jessie",
    "9": "stretch",
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "14": "forky",
    "15": "duke",
}
NEVER_AFFECTED = "0"
URGENCIES = {
    "unimportant": Severity.NEGLIGIBLE,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "not yet assigned": Severity.UNKNOWN,
    "end-of-life": Severity.UNKNOWN,
}


def codename(distro: Distro | None) -> str:
    """The tracker's release name for `distro` (VERSION_ID 12 → bookworm)."""
    if distro is None or distro.id != "debian":
        found = (distro.pretty_name or distro.id) if distro else "without /etc/os-release"
        raise InputError(
            f"the Debian Security Tracker covers Debian images only, and this one is {found}",
            hint="scan it with --scanner trivy or --scanner grype",
        )
    major = (distro.version_id or "").split(".", 1)[0]
    name = CODENAMES.get(major) or distro.codename
    if not name:
        raise InputError(f"cannot tell which Debian release {distro.label} is")
    return name


def severity(urgency: str) -> Severity:
    """The severity of a tracker urgency (`low**` and `low*` count as low)."""
    return URGENCIES.get(urgency.rstrip("*").strip().lower(), Severity.UNKNOWN)


def assess(installed: str, release: Mapping[str, Any]) -> tuple[FindingStatus, str | None] | None:
    """Whether a source at version `installed` is affected by one release entry.

    Returns (status, fixed version) when affected, None when not.
    """
    status = str(release.get("status", ""))
    fixed = release.get("fixed_version")
    if status == "resolved":
        if not fixed or fixed == NEVER_AFFECTED:
            return None
        if version_compare(installed, str(fixed)) < 0:
            return FindingStatus.FIXED, str(fixed)
        return None
    if str(release.get("urgency", "")).startswith("end-of-life"):
        return FindingStatus.END_OF_LIFE, None
    if status == "open":
        return FindingStatus.OPEN, None
    return FindingStatus.UNDETERMINED, None


def match(
    packages: tuple[Package, ...], data: Mapping[str, Any], release: str
) -> tuple[list[Finding], list[str]]:
    """Findings for the Debian packages of an image of `release`, and warnings."""
    findings: list[Finding] = []
    warnings: list[str] = []
    for package in packages:
        if package.ecosystem is not Ecosystem.DEB:
            continue
        try:
            findings.extend(_package_findings(package, data, release))
        except ValueError as exc:
            warnings.append(f"{package.name} {package.version}: {exc}")
    return findings, warnings


def _package_findings(package: Package, data: Mapping[str, Any], release: str) -> Iterator[Finding]:
    issues = data.get(package.source_name)
    if not isinstance(issues, Mapping):
        return
    for issue, info in issues.items():
        releases = info.get("releases") if isinstance(info, Mapping) else None
        entry = releases.get(release) if isinstance(releases, Mapping) else None
        if not isinstance(entry, Mapping):
            continue
        verdict = assess(package.source_version, entry)
        if verdict is None:
            continue
        status, fixed = verdict
        yield Finding(
            cve=str(issue),
            package=package.name,
            source_package=package.source_name,
            installed=package.version,
            fixed_version=fixed,
            severity=severity(str(entry.get("urgency", ""))),
            status=status,
        )


class DebianTrackerScanner:
    """Matches an image's Debian packages against one snapshot of the tracker data."""

    name = "debian"

    def __init__(self, tracker: TrackerSnapshot) -> None:
        self.tracker = tracker

    def scan(self, target: ScanTarget) -> ScanReport:
        """Scan the inventory of `target` (no subprocess, no network)."""
        release = codename(target.inventory.distro)
        findings, warnings = match(target.inventory.packages, self.tracker.data, release)
        return ScanReport(
            scanner=self.name,
            image=target.image,
            digest=target.digest,
            findings=sort_findings(findings),
            database=f"Debian Security Tracker ({release}) from {self.tracker.source}",
            database_date=self.tracker.fetched,
            warnings=(*self.tracker.warnings, *warnings),
        )
