"""The built-in Debian matcher: version order, tracker statuses, releases, the report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from debian.debian_support import version_compare

from socle.errors import InputError
from socle.sbom import Distro, Ecosystem, Inventory, Package
from socle.scan import FindingStatus, ScanTarget, Severity
from socle.scan.debian import DebianTrackerScanner, assess, codename, severity
from socle.scan.tracker import TrackerSnapshot, load_tracker

DATA = Path(__file__).resolve().parents[2] / "data" / "debian-tracker.json"
BOOKWORM = Distro("debian", "12", "bookworm")


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("5.36.0-7", "5.36.0-7+deb12u1"),  # a security update sorts above its base
        ("5.36.0-7+deb12u1", "5.36.0-7+deb12u2"),
        ("3.0.13-1~deb12u1", "3.0.13-1"),  # a backport (~) sorts below the release
        ("1.0~rc1", "1.0"),
        ("9.9", "1:0.1"),  # any epoch beats none
        ("1:1.2.11.dfsg-3", "1:1.2.13.dfsg-1"),
        ("1.0-1", "1.0-1+b1"),  # a binNMU sorts above its source version
        ("2.36-9+deb12u3", "2.36-9+deb12u10"),  # numbers, not strings
    ],
)
def test_debian_version_order(older: str, newer: str) -> None:
    assert version_compare(older, newer) < 0
    fixed = {"status": "resolved", "fixed_version": newer}
    assert assess(older, fixed) == (FindingStatus.FIXED, newer)
    assert assess(newer, {"status": "resolved", "fixed_version": older}) is None


def test_fixed_version_zero_means_never_affected() -> None:
    assert assess("0.1", {"status": "resolved", "fixed_version": "0"}) is None


def test_resolved_without_a_version_is_not_a_finding() -> None:
    assert assess("1.0", {"status": "resolved"}) is None


def test_open_and_undetermined_are_findings_without_a_fix() -> None:
    assert assess("1.0", {"status": "open"}) == (FindingStatus.OPEN, None)
    assert assess("1.0", {"status": "undetermined"}) == (FindingStatus.UNDETERMINED, None)


def test_end_of_life_is_its_own_status() -> None:
    entry = {"status": "open", "urgency": "end-of-life"}
    assert assess("1.0", entry) == (FindingStatus.END_OF_LIFE, None)


@pytest.mark.parametrize(
    ("urgency", "expected"),
    [
        ("unimportant", Severity.NEGLIGIBLE),
        ("low", Severity.LOW),
        ("low**", Severity.LOW),
        ("medium", Severity.MEDIUM),
        ("high", Severity.HIGH),
        ("not yet assigned", Severity.UNKNOWN),
        ("end-of-life", Severity.UNKNOWN),
        ("", Severity.UNKNOWN),
    ],
)
def test_urgency_to_severity(urgency: str, expected: Severity) -> None:
    assert severity(urgency) is expected


def test_codename_from_version_id_then_os_release() -> None:
    assert codename(BOOKWORM) == "bookworm"
    assert codename(Distro("debian", "11.9")) == "bullseye"
    assert codename(Distro("debian", None, "trixie")) == "trixie"


def test_other_distributions_are_refused_with_a_hint() -> None:
    with pytest.raises(InputError, match="Debian images only") as caught:
        codename(Distro("ubuntu", "22.04", "jammy", "Ubuntu 22.04.4 LTS"))
    assert caught.value.hint and "trivy" in caught.value.hint
    with pytest.raises(InputError, match="without /etc/os-release"):
        codename(None)


def deb(name: str, version: str, source: str, source_version: str | None = None) -> Package:
    return Package(Ecosystem.DEB, name, version, source, source_version or version, "amd64")


IMAGE = Inventory(
    BOOKWORM,
    (
        deb("perl-base", "5.36.0-7+deb12u1", "perl"),
        deb("libperl5.36", "5.36.0-7+deb12u1", "perl"),
        deb("libc6", "2.36-9+deb12u4", "glibc"),
        deb("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
        deb("libgcc-s1", "12.2.0-14+b1", "gcc-12", "12.2.0-14"),
        deb("libssl3", "3.0.13-1~deb12u1", "openssl"),
        deb("base-files", "12.4+deb12u5", "base-files"),
        Package(Ecosystem.PYTHON, "perl", "1.0", "perl", "1.0"),  # not a Debian package
    ),
)


def scan(source: str) -> list[tuple[str, str, str, str | None, str]]:
    scanner = DebianTrackerScanner(load_tracker(source))
    report = scanner.scan(
        ScanTarget("127.0.0.1:5000/my/base:12", "sha256:" + "0" * 64, Path("."), IMAGE)
    )
    return [
        (f.cve, f.package, f.status.value, f.fixed_version, f.severity.value)
        for f in report.findings
    ]


EXPECTED = [
    ("CVE-2023-31484", "libperl5.36", "open", None, "high"),
    ("CVE-2023-31484", "perl-base", "open", None, "high"),
    ("CVE-2024-56406", "libperl5.36", "fixed", "5.36.0-7+deb12u2", "medium"),
    ("CVE-2024-56406", "perl-base", "fixed", "5.36.0-7+deb12u2", "medium"),
    ("CVE-2023-4039", "libgcc-s1", "fixed", "12.2.0-14+deb12u1", "low"),
    ("CVE-2023-45853", "zlib1g", "undetermined", None, "unknown"),
    ("CVE-2010-4756", "libc6", "open", None, "negligible"),
]


def test_scan_of_the_test_tracker_data_worst_first() -> None:
    assert scan(str(DATA)) == EXPECTED


def test_file_urls_take_the_same_path() -> None:
    assert scan(DATA.as_uri()) == EXPECTED


def test_report_names_the_release_source_and_date() -> None:
    snapshot = TrackerSnapshot("tracker.json", datetime(2024, 3, 1, tzinfo=UTC), {}, ("old",))
    target = ScanTarget("img", "sha256:" + "0" * 64, Path("."), IMAGE)
    report = DebianTrackerScanner(snapshot).scan(target)
    assert report.findings == ()
    assert report.database == "Debian Security Tracker (bookworm) from tracker.json"
    assert report.database_date == datetime(2024, 3, 1, tzinfo=UTC)
    assert report.warnings == ("old",)


def test_an_invalid_installed_version_is_a_warning() -> None:
    broken = Inventory(BOOKWORM, (deb("perl-base", "not a version!", "perl"),))
    data = {
        "perl": {
            "CVE-2024-1": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "5.0"}}}
        }
    }
    snapshot = TrackerSnapshot("t", datetime(2024, 3, 1, tzinfo=UTC), data)
    report = DebianTrackerScanner(snapshot).scan(ScanTarget("i", "d", Path("."), broken))
    assert report.findings == ()
    assert len(report.warnings) == 1 and "perl-base" in report.warnings[0]
