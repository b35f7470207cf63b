"""The CVE gate: which scan results let an image get a tag, with auditable exceptions.

A :class:`Policy` tolerates findings up to `max_severity`; worse findings block
unless an allowlist entry covers their CVE. Each entry names who accepted the
risk, why, and until when: it counts through its `expires` day, and from the
next day on it no longer counts and the verdict says so. Without a scan
report there is no tag when `require_scan` holds (the default).

In the catalog (top-level `policy:`)::

    policy:
      max_severity: medium        # high and critical block
      ignore_unfixed: false       # true: findings without a fixed version never block
      require_scan: true
      allowlist:
        - cve: CVE-2023-31484
          reason: perl's CPAN client is not used at run time
          owner: platform-team
          expires: 2025-06-30
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import yaml

from socle.core.findings import Finding, FindingStatus, ScanReport, Severity
from socle.core.nodes import Entries, Reader

POLICY_KEYS = ("max_severity", "ignore_unfixed", "require_scan", "allowlist")
ENTRY_KEYS = ("cve", "reason", "owner", "expires")
CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")
DEFAULT_MAX_SEVERITY = Severity.MEDIUM


@dataclass(frozen=True)
class AllowEntry:
    """An accepted risk: one CVE, why, who owns the decision, and its last valid day."""

    cve: str
    reason: str
    owner: str
    expires: date

    def valid_on(self, today: date) -> bool:
        """True through the `expires` day itself."""
        return today <= self.expires


@dataclass(frozen=True)
class Policy:
    """The gate's settings; the defaults block high and critical findings."""

    max_severity: Severity = DEFAULT_MAX_SEVERITY
    allowlist: tuple[AllowEntry, ...] = ()
    require_scan: bool = True
    ignore_unfixed: bool = False

    def blocks(self, finding: Finding, fail_on: Severity | None = None) -> bool:
        """True when `finding` is worse than tolerated (allowlist aside).

        `fail_on` replaces the threshold: findings of that severity or worse block.
        """
        if self.ignore_unfixed and finding.status is not FindingStatus.FIXED:
            return False
        if fail_on is not None:
            return finding.severity >= fail_on
        return finding.severity > self.max_severity


@dataclass(frozen=True)
class Verdict:
    """Whether an image may be tagged, and the findings and entries that decided it."""

    allowed: bool
    blocking: tuple[Finding, ...] = ()
    allowlisted: tuple[Finding, ...] = ()
    expired: tuple[AllowEntry, ...] = ()
    tolerated: tuple[Finding, ...] = ()
    unscanned: bool = False

    def explain(self) -> list[str]:
        """One line per reason, for the user: what blocks, and which entries expired."""
        lines = []
        if self.unscanned:
            lines.append("the image was not scanned, and the policy requires a scan")
        lapsed = {entry.cve: entry for entry in self.expired}
        for finding in self.blocking:
            line = (
                f"{finding.cve} in {finding.package} {finding.installed} ({finding.severity.value}"
            )
            line += f", fixed in {finding.fixed_version})" if finding.fixed_version else ")"
            entry = lapsed.get(finding.cve)
            if entry:
                line += f": its allowlist entry expired on {entry.expires} (owner {entry.owner})"
            lines.append(line + " blocks")
        mentioned = {finding.cve for finding in self.blocking}
        lines.extend(
            f"allowlist entry for {e.cve} (owner {e.owner}) expired on {e.expires}: it no longer counts"
            for e in self.expired
            if e.cve not in mentioned
        )
        return lines


def evaluate(
    policy: Policy, report: ScanReport | None, today: date, *, fail_on: Severity | None = None
) -> Verdict:
    """Judge `report` (None: the image was not scanned) against `policy` on `today`.

    `fail_on` (the CLI's `--fail-on`) replaces the policy's threshold: findings of
    that severity or worse block unless allowlisted.
    """
    expired = tuple(e for e in policy.allowlist if not e.valid_on(today))
    if report is None:
        return Verdict(allowed=not policy.require_scan, expired=expired, unscanned=True)
    valid = {e.cve for e in policy.allowlist if e.valid_on(today)}
    blocking, allowlisted, tolerated = [], [], []
    for finding in report.findings:
        if finding.cve in valid:
            allowlisted.append(finding)
        elif policy.blocks(finding, fail_on):
            blocking.append(finding)
        else:
            tolerated.append(finding)
    return Verdict(
        allowed=not blocking,
        blocking=tuple(blocking),
        allowlisted=tuple(allowlisted),
        expired=expired,
        tolerated=tuple(tolerated),
    )


def parse_policy(reader: Reader, node: yaml.Node) -> Policy:
    """The policy of a `policy:` mapping; problems are recorded on `reader`, located."""
    entries = reader.mapping(node, "policy", POLICY_KEYS)
    severity = _severity(reader, entries["max_severity"][1]) if "max_severity" in entries else None
    allowlist = _allowlist(reader, entries["allowlist"][1]) if "allowlist" in entries else ()
    return Policy(
        max_severity=severity or DEFAULT_MAX_SEVERITY,
        allowlist=allowlist,
        require_scan=_flag(reader, entries, "require_scan", default=True),
        ignore_unfixed=_flag(reader, entries, "ignore_unfixed", default=False),
    )


def _flag(reader: Reader, entries: Entries, key: str, *, default: bool) -> bool:
    value = reader.boolean(entries[key][1], key) if key in entries else None
    return default if value is None else value


def _severity(reader: Reader, node: yaml.Node) -> Severity | None:
    text = reader.scalar(node, "max_severity")
    if text is None:
        return None
    try:
        return Severity(text.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in Severity)
        reader.error(node, f"unknown severity {text!r} for max_severity: use one of {names}")
        return None


def _allowlist(reader: Reader, node: yaml.Node) -> tuple[AllowEntry, ...]:
    if not isinstance(node, yaml.SequenceNode):
        reader.error(node, "allowlist must be a list of entries (cve, reason, owner, expires)")
        return ()
    result: list[AllowEntry] = []
    seen: set[str] = set()
    for item in node.value:
        entry = _entry(reader, item)
        if entry is None:
            continue
        if entry.cve in seen:
            reader.error(item, f"{entry.cve} is allowlisted twice")
            continue
        seen.add(entry.cve)
        result.append(entry)
    return tuple(result)


def _entry(reader: Reader, node: yaml.Node) -> AllowEntry | None:
    fields = reader.mapping(node, "each allowlist entry", ENTRY_KEYS)
    if not isinstance(node, yaml.MappingNode):
        return None  # the reader recorded it
    values: dict[str, str] = {}
    for key in ENTRY_KEYS:
        if key not in fields:
            reader.error(node, f"allowlist entry has no `{key}` (it needs {', '.join(ENTRY_KEYS)})")
            continue
        value = reader.scalar(fields[key][1], key)
        if value is not None and not value.strip():
            reader.error(fields[key][1], f"`{key}` of an allowlist entry is empty")
        elif value is not None:
            values[key] = value.strip()
    if "cve" in values and not CVE_RE.match(values["cve"]):
        reader.error(
            fields["cve"][1], f"invalid CVE id {values.pop('cve')!r}: expected CVE-YYYY-NNNN"
        )
    expires = (
        _date(reader, fields["expires"][1], values["expires"]) if "expires" in values else None
    )
    if expires is None or len(values) < len(ENTRY_KEYS):
        return None
    return AllowEntry(values["cve"], values["reason"], values["owner"], expires)


def _date(reader: Reader, node: yaml.Node, text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        reader.error(node, f"invalid date {text!r} for expires: expected YYYY-MM-DD")
        return None
