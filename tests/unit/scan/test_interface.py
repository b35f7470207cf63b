"""The scanner interface's values: severity order, report summaries, JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socle.errors import InputError
from socle.scan import Finding, FindingStatus, ScanReport, Severity


def test_severity_order() -> None:
    ordered = [
        Severity.NEGLIGIBLE,
        Severity.UNKNOWN,
        Severity.LOW,
        Severity.MEDIUM,
        Severity.HIGH,
        Severity.CRITICAL,
    ]
    shuffled = [
        Severity.HIGH,
        Severity.NEGLIGIBLE,
        Severity.CRITICAL,
        Severity.LOW,
        Severity.UNKNOWN,
        Severity.MEDIUM,
    ]
    assert sorted(shuffled) == ordered
    assert Severity.UNKNOWN < Severity.LOW <= Severity.LOW < Severity.CRITICAL
    assert max(ordered) is Severity.CRITICAL


def test_severity_names_parse_in_any_case() -> None:
    assert Severity.parse(" High ") is Severity.HIGH
    with pytest.raises(InputError, match="negligible, unknown, low, medium, high, critical"):
        Severity.parse("severe")


def finding(cve: str, severity: Severity) -> Finding:
    return Finding(cve, "perl-base", "perl", "5.36.0-7", None, severity, FindingStatus.OPEN)


REPORT = ScanReport(
    scanner="debian",
    image="127.0.0.1:5000/my/base:12",
    digest="sha256:" + "2" * 64,
    findings=(
        finding("CVE-2024-1", Severity.CRITICAL),
        finding("CVE-2024-2", Severity.HIGH),
        finding("CVE-2024-3", Severity.HIGH),
        finding("CVE-2024-4", Severity.NEGLIGIBLE),
    ),
    database="tracker",
    database_date=datetime(2024, 3, 1, tzinfo=UTC),
)


def test_findings_at_or_above_a_severity() -> None:
    assert [f.cve for f in REPORT.at_or_above(Severity.HIGH)] == [
        "CVE-2024-1",
        "CVE-2024-2",
        "CVE-2024-3",
    ]
    assert REPORT.at_or_above(Severity.CRITICAL) == REPORT.findings[:1]


def test_counts_worst_first_without_zeros() -> None:
    assert list(REPORT.counts().items()) == [
        (Severity.CRITICAL, 1),
        (Severity.HIGH, 2),
        (Severity.NEGLIGIBLE, 1),
    ]


def test_report_json() -> None:
    doc = REPORT.to_json()
    assert doc["database_date"] == "2024-03-01T00:00:00+00:00"
    assert doc["findings"][0] == {
        "cve": "CVE-2024-1",
        "package": "perl-base",
        "source_package": "perl",
        "installed": "5.36.0-7",
        "fixed_version": None,
        "severity": "critical",
        "status": "open",
    }
