"""Trivy and Grype, when installed, as scanners: run on the image's OCI layout, JSON mapped
to :class:`~socle.scan.interface.Finding` values.

Both read the layout socle already fetched (`trivy image --input DIR`,
`grype oci-dir:DIR`), so they scan exactly the digest socle inventoried. They
keep their own vulnerability databases (and fetch them as they see fit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from socle.process import CommandError, run
from socle.sbom.model import Inventory
from socle.scan.interface import (
    Finding,
    FindingStatus,
    ScanError,
    ScanReport,
    ScanTarget,
    Severity,
    sort_findings,
)

SCAN_TIMEOUT = 1800.0
TRIVY_STATUSES = {
    "fixed": FindingStatus.FIXED,
    "affected": FindingStatus.OPEN,
    "fix_deferred": FindingStatus.OPEN,
    "will_not_fix": FindingStatus.WONT_FIX,
    "end_of_life": FindingStatus.END_OF_LIFE,
}
GRYPE_STATES = {
    "fixed": FindingStatus.FIXED,
    "not-fixed": FindingStatus.OPEN,
    "wont-fix": FindingStatus.WONT_FIX,
}


def _severity(text: object) -> Severity:
    try:
        return Severity(str(text or "unknown").strip().lower())
    except ValueError:
        return Severity.UNKNOWN


def _sources(inventory: Inventory) -> dict[str, str]:
    """Binary package → source package, to fill in what a scanner's JSON leaves out."""
    return {p.name: p.source_name for p in inventory.packages}


def _json(output: str, tool: str) -> dict[str, Any]:
    try:
        doc = json.loads(output)
    except ValueError as exc:
        raise ScanError(f"{tool} printed something that is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ScanError(f"{tool} printed JSON that is not an object")
    return doc


def _date(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


# --- Trivy ----------------------------------------------------------------------------------


def trivy_findings(doc: Mapping[str, Any], inventory: Inventory) -> list[Finding]:
    """The findings of `trivy image --format json` output."""
    sources = _sources(inventory)
    return [
        _trivy_finding(vuln, sources)
        for result in doc.get("Results") or []
        for vuln in result.get("Vulnerabilities") or []
    ]


def _trivy_finding(vuln: Mapping[str, Any], sources: Mapping[str, str]) -> Finding:
    package = str(vuln.get("PkgName", ""))
    status = TRIVY_STATUSES.get(str(vuln.get("Status", "")), FindingStatus.UNDETERMINED)
    fixed = str(vuln.get("FixedVersion") or "") or None
    if fixed and status is FindingStatus.UNDETERMINED:
        status = FindingStatus.FIXED  # older Trivy versions give no Status
    return Finding(
        cve=str(vuln.get("VulnerabilityID", "")),
        package=package,
        source_package=str(vuln.get("SrcName") or sources.get(package, package)),
        installed=str(vuln.get("InstalledVersion", "")),
        fixed_version=fixed,
        severity=_severity(vuln.get("Severity")),
        status=status,
    )


def trivy_db_date(version_doc: Mapping[str, Any]) -> datetime | None:
    """When Trivy's vulnerability database was built, from `trivy version --format json`."""
    return _date((version_doc.get("VulnerabilityDB") or {}).get("UpdatedAt"))


class TrivyScanner:
    """Runs `trivy image --input LAYOUT --format json`."""

    name = "trivy"

    def scan(self, target: ScanTarget) -> ScanReport:
        """Scan the layout of `target` with Trivy."""
        cmd = ["trivy", "image", "--quiet", "--format", "json", "--input", str(target.layout)]
        doc = _json(_run(cmd), "trivy")
        return ScanReport(
            scanner=self.name,
            image=target.image,
            digest=target.digest,
            findings=sort_findings(trivy_findings(doc, target.inventory)),
            database="Trivy vulnerability database",
            database_date=self._db_date(),
        )

    def _db_date(self) -> datetime | None:
        try:
            return trivy_db_date(_json(_run(["trivy", "version", "--format", "json"]), "trivy"))
        except ScanError:
            return None


# --- Grype ----------------------------------------------------------------------------------


def grype_findings(doc: Mapping[str, Any], inventory: Inventory) -> list[Finding]:
    """The findings of `grype -o json` output."""
    sources = _sources(inventory)
    return [_grype_finding(match, sources) for match in doc.get("matches") or []]


def _grype_finding(match: Mapping[str, Any], sources: Mapping[str, str]) -> Finding:
    vuln = match.get("vulnerability") or {}
    artifact = match.get("artifact") or {}
    fix = vuln.get("fix") or {}
    package = str(artifact.get("name", ""))
    upstreams = [str(u.get("name")) for u in artifact.get("upstreams") or [] if u.get("name")]
    versions = [str(v) for v in fix.get("versions") or []]
    return Finding(
        cve=_grype_cve(vuln, match),
        package=package,
        source_package=upstreams[0] if upstreams else sources.get(package, package),
        installed=str(artifact.get("version", "")),
        fixed_version=versions[0] if versions else None,
        severity=_severity(vuln.get("severity")),
        status=GRYPE_STATES.get(str(fix.get("state", "")), FindingStatus.UNDETERMINED),
    )


def _grype_cve(vuln: Mapping[str, Any], match: Mapping[str, Any]) -> str:
    """The CVE id: Grype reports a distro advisory id (DLA-, GHSA-) with the CVE as related."""
    own = str(vuln.get("id", ""))
    if own.startswith("CVE-"):
        return own
    related = (str(r.get("id", "")) for r in match.get("relatedVulnerabilities") or [])
    return next((r for r in related if r.startswith("CVE-")), own)


def grype_db_date(doc: Mapping[str, Any]) -> datetime | None:
    """When Grype's database was built (`descriptor.db.built`, or `.db.status.built`)."""
    db = (doc.get("descriptor") or {}).get("db") or {}
    return _date(db.get("built") or (db.get("status") or {}).get("built"))


class GrypeScanner:
    """Runs `grype oci-dir:LAYOUT -o json`."""

    name = "grype"

    def scan(self, target: ScanTarget) -> ScanReport:
        """Scan the layout of `target` with Grype."""
        doc = _json(_run(["grype", f"oci-dir:{target.layout}", "-o", "json", "-q"]), "grype")
        return ScanReport(
            scanner=self.name,
            image=target.image,
            digest=target.digest,
            findings=sort_findings(grype_findings(doc, target.inventory)),
            database="Grype vulnerability database",
            database_date=grype_db_date(doc),
        )


def _run(cmd: list[str]) -> str:
    try:
        return run(cmd, timeout=SCAN_TIMEOUT).stdout
    except CommandError as exc:
        raise ScanError(exc.message, hint=exc.hint) from None
