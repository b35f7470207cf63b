"""The CVE gate: thresholds, allowlist and expiry, unscanned images, and catalog parsing."""

from __future__ import annotations

import textwrap
from datetime import date

import pytest
import yaml

from socle.core.nodes import LOADER, Reader
from socle.core.policy import AllowEntry, Policy, evaluate, parse_policy
from socle.scan import Finding, FindingStatus, ScanReport, Severity

TODAY = date(2024, 6, 1)


def finding(cve: str, severity: Severity, status: FindingStatus = FindingStatus.OPEN) -> Finding:
    fixed = "5.36.0-7+deb12u2" if status is FindingStatus.FIXED else None
    return Finding(cve, "perl-base", "perl", "5.36.0-7+deb12u1", fixed, severity, status)


HIGH = finding("CVE-2023-31484", Severity.HIGH)
MEDIUM = finding("CVE-2024-56406", Severity.MEDIUM, FindingStatus.FIXED)
CRITICAL_FIXED = finding("CVE-2024-0001", Severity.CRITICAL, FindingStatus.FIXED)
NEGLIGIBLE = finding("CVE-2010-4756", Severity.NEGLIGIBLE)


def report(*findings: Finding) -> ScanReport:
    return ScanReport("debian", "img", "sha256:" + "3" * 64, findings, "tracker")


def entry(cve: str, expires: date) -> AllowEntry:
    return AllowEntry(cve, "not reachable at run time", "platform-team", expires)


def test_findings_above_the_maximum_block() -> None:
    verdict = evaluate(Policy(max_severity=Severity.MEDIUM), report(HIGH, MEDIUM), TODAY)
    assert not verdict.allowed
    assert verdict.blocking == (HIGH,)
    assert verdict.tolerated == (MEDIUM,)


def test_the_maximum_itself_is_tolerated() -> None:
    assert evaluate(Policy(max_severity=Severity.HIGH), report(HIGH), TODAY).allowed


def test_an_allowlisted_cve_passes_through_its_expiry_day() -> None:
    policy = Policy(max_severity=Severity.MEDIUM, allowlist=(entry(HIGH.cve, TODAY),))
    verdict = evaluate(policy, report(HIGH), TODAY)
    assert verdict.allowed
    assert verdict.allowlisted == (HIGH,)
    assert verdict.expired == ()


def test_an_expired_entry_stops_counting_and_the_verdict_says_so() -> None:
    lapsed = entry(HIGH.cve, date(2024, 5, 31))
    verdict = evaluate(Policy(allowlist=(lapsed,)), report(HIGH), TODAY)
    assert not verdict.allowed
    assert verdict.blocking == (HIGH,)
    assert verdict.expired == (lapsed,)
    assert verdict.explain() == [
        "CVE-2023-31484 in perl-base 5.36.0-7+deb12u1 (high): its allowlist entry expired on "
        "2024-05-31 (owner platform-team) blocks"
    ]


def test_expired_entries_are_reported_even_when_nothing_blocks() -> None:
    lapsed = entry("CVE-2020-0001", date(2024, 1, 1))
    verdict = evaluate(Policy(allowlist=(lapsed,)), report(MEDIUM), TODAY)
    assert verdict.allowed
    assert verdict.explain() == [
        "allowlist entry for CVE-2020-0001 (owner platform-team) expired on 2024-01-01: "
        "it no longer counts"
    ]


def test_ignore_unfixed_blocks_only_what_an_upgrade_fixes() -> None:
    policy = Policy(max_severity=Severity.LOW, ignore_unfixed=True)
    verdict = evaluate(policy, report(HIGH, CRITICAL_FIXED), TODAY)
    assert verdict.blocking == (CRITICAL_FIXED,)
    assert verdict.explain()[0].startswith(
        "CVE-2024-0001 in perl-base 5.36.0-7+deb12u1 (critical, fixed in"
    )


def test_fail_on_replaces_the_threshold_but_keeps_the_allowlist() -> None:
    policy = Policy(max_severity=Severity.CRITICAL, allowlist=(entry(HIGH.cve, TODAY),))
    verdict = evaluate(policy, report(HIGH, MEDIUM, NEGLIGIBLE), TODAY, fail_on=Severity.MEDIUM)
    assert verdict.blocking == (MEDIUM,)
    assert verdict.allowlisted == (HIGH,)
    everything = evaluate(Policy(), report(NEGLIGIBLE), TODAY, fail_on=Severity.NEGLIGIBLE)
    assert everything.blocking == (NEGLIGIBLE,)


def test_unscanned_images_never_get_a_tag_unless_the_policy_says_so() -> None:
    verdict = evaluate(Policy(), None, TODAY)
    assert not verdict.allowed and verdict.unscanned
    assert verdict.explain() == ["the image was not scanned, and the policy requires a scan"]
    assert evaluate(Policy(require_scan=False), None, TODAY).allowed


def test_a_clean_report_passes() -> None:
    verdict = evaluate(Policy(max_severity=Severity.NEGLIGIBLE), report(), TODAY)
    assert verdict.allowed and verdict.explain() == []


# --- parsing, with located problems -----------------------------------------------------------


def parse(text: str) -> tuple[Policy, list[str]]:
    reader = Reader("catalog.yaml")
    root = yaml.compose(textwrap.dedent(text), Loader=LOADER)
    assert root is not None
    node = root.value[0][1]  # the value of the top-level `policy:` key
    policy = parse_policy(reader, node)
    located = sorted(reader.problems, key=lambda p: (p.line, p.column))
    return policy, [str(p) for p in located]


def test_a_full_policy_parses() -> None:
    policy, problems = parse(
        """
        policy:
          max_severity: High
          ignore_unfixed: yes
          require_scan: false
          allowlist:
            - cve: CVE-2023-31484
              reason: CPAN is not used at run time
              owner: platform-team
              expires: 2025-06-30
        """
    )
    assert problems == []
    assert policy == Policy(
        max_severity=Severity.HIGH,
        allowlist=(
            AllowEntry(
                "CVE-2023-31484", "CPAN is not used at run time", "platform-team", date(2025, 6, 30)
            ),
        ),
        require_scan=False,
        ignore_unfixed=True,
    )


def test_an_empty_mapping_gives_the_defaults() -> None:
    policy, problems = parse("policy: {}\n")
    assert problems == [] and policy == Policy()
    assert policy.max_severity is Severity.MEDIUM and policy.require_scan


def test_problems_are_located() -> None:
    _, problems = parse(
        """
        policy:
          max_severity: severe
          require_scan: maybe
          colour: blue
          allowlist:
            - cve: CVE-23-1
              reason: typo in the id
              owner: sec
              expires: 2025-01-01
            - cve: CVE-2023-0001
              reason: ""
              owner: sec
              expires: 2025-02-30
            - cve: CVE-2023-0002
              owner: sec
            - just a string
        """
    )
    assert problems == [
        "catalog.yaml:3:17: error: unknown severity 'severe' for max_severity: use one of "
        "negligible, unknown, low, medium, high, critical",
        "catalog.yaml:4:17: error: require_scan must be true or false, not 'maybe'",
        "catalog.yaml:5:3: error: unknown key 'colour' in policy; "
        "expected one of max_severity, ignore_unfixed, require_scan, allowlist",
        "catalog.yaml:7:12: error: invalid CVE id 'CVE-23-1': expected CVE-YYYY-NNNN",
        "catalog.yaml:12:15: error: `reason` of an allowlist entry is empty",
        "catalog.yaml:14:16: error: invalid date '2025-02-30' for expires: expected YYYY-MM-DD",
        "catalog.yaml:15:7: error: allowlist entry has no `reason` (it needs cve, reason, owner, expires)",
        "catalog.yaml:15:7: error: allowlist entry has no `expires` (it needs cve, reason, owner, expires)",
        "catalog.yaml:17:7: error: each allowlist entry must be a mapping",
    ]


def test_a_cve_allowlisted_twice_is_a_problem() -> None:
    entry_text = """
            - cve: CVE-2023-31484
              reason: r
              owner: o
              expires: 2025-01-01"""
    _, problems = parse(
        "policy:\n  allowlist:" + textwrap.indent(textwrap.dedent(entry_text), "  ") * 2
    )
    assert problems == ["catalog.yaml:7:5: error: CVE-2023-31484 is allowlisted twice"]


@pytest.mark.parametrize("value", ["[]", "{}", "none"])
def test_allowlist_must_be_a_list(value: str) -> None:
    _, problems = parse(f"policy:\n  allowlist: {value}\n")
    if value == "[]":
        assert problems == []
    else:
        assert problems == [
            "catalog.yaml:2:14: error: allowlist must be a list of entries (cve, reason, owner, expires)"
        ]
