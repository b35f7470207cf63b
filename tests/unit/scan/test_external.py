"""Trivy and Grype JSON mapped to findings; the adapters run whatever is on PATH."""

from __future__ import annotations

import json
import stat
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from socle.errors import InputError
from socle.sbom import Distro, Ecosystem, Inventory, Package
from socle.scan import (
    SCANNERS,
    Finding,
    FindingStatus,
    ScanError,
    ScanSettings,
    ScanTarget,
    Severity,
)
from socle.scan.external import (
    GrypeScanner,
    TrivyScanner,
    grype_db_date,
    grype_findings,
    trivy_db_date,
    trivy_findings,
)

DATA = Path(__file__).resolve().parents[2] / "data"
IMAGE = Inventory(
    Distro("debian", "12", "bookworm"),
    (
        Package(Ecosystem.DEB, "perl-base", "5.36.0-7+deb12u1", "perl", "5.36.0-7+deb12u1"),
        Package(Ecosystem.DEB, "libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4"),
        Package(Ecosystem.DEB, "zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1"),
    ),
)


def load(name: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads((DATA / name).read_text())
    return doc


def rows(findings: Sequence[Finding]) -> list[tuple[object, ...]]:
    return [
        (f.cve, f.package, f.source_package, f.installed, f.fixed_version, f.severity, f.status)
        for f in findings
    ]


def test_trivy_json_maps_to_findings() -> None:
    assert rows(trivy_findings(load("trivy-report.json"), IMAGE)) == [
        (
            "CVE-2023-31484",
            "perl-base",
            "perl",
            "5.36.0-7+deb12u1",
            None,
            Severity.HIGH,
            FindingStatus.OPEN,
        ),
        (
            "CVE-2024-56406",
            "perl-base",
            "perl",
            "5.36.0-7+deb12u1",
            "5.36.0-7+deb12u2",
            Severity.MEDIUM,
            FindingStatus.FIXED,
        ),
        (
            "CVE-2010-4756",
            "libc6",
            "glibc",
            "2.36-9+deb12u4",
            None,
            Severity.LOW,
            FindingStatus.WONT_FIX,
        ),
        (
            "CVE-2023-45853",
            "zlib1g",
            "zlib",
            "1:1.2.13.dfsg-1",
            None,
            Severity.CRITICAL,
            FindingStatus.UNDETERMINED,
        ),
        (
            "CVE-2023-32681",
            "requests",
            "requests",
            "2.28.1",
            "2.31.0",
            Severity.MEDIUM,
            FindingStatus.FIXED,
        ),
    ]


def test_trivy_database_date() -> None:
    assert trivy_db_date(load("trivy-version.json")) == datetime(
        2024, 3, 28, 6, 9, 43, 520000, tzinfo=UTC
    )
    assert trivy_db_date({}) is None


def test_grype_json_maps_to_findings_with_cve_ids() -> None:
    assert rows(grype_findings(load("grype-report.json"), IMAGE)) == [
        (
            "CVE-2023-31484",
            "perl-base",
            "perl",
            "5.36.0-7+deb12u1",
            None,
            Severity.HIGH,
            FindingStatus.OPEN,
        ),
        (
            "CVE-2023-32681",
            "requests",
            "requests",
            "2.28.1",
            "2.31.0",
            Severity.MEDIUM,
            FindingStatus.FIXED,
        ),
        (
            "CVE-2010-4756",
            "libc6",
            "glibc",
            "2.36-9+deb12u4",
            None,
            Severity.NEGLIGIBLE,
            FindingStatus.WONT_FIX,
        ),
    ]


def test_grype_database_date_in_both_descriptor_shapes() -> None:
    built = datetime(2024, 3, 28, 1, 32, 11, tzinfo=UTC)
    assert grype_db_date(load("grype-report.json")) == built
    assert (
        grype_db_date({"descriptor": {"db": {"status": {"built": "2024-03-28T01:32:11Z"}}}})
        == built
    )
    assert grype_db_date({}) is None


def fake_tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    return folder


def target(tmp_path: Path) -> ScanTarget:
    return ScanTarget("127.0.0.1:5000/my/base:12", "sha256:" + "1" * 64, tmp_path / "image", IMAGE)


def test_trivy_scanner_runs_trivy_on_the_layout(tmp_path: Path, bin_dir: Path) -> None:
    fake_tool(
        bin_dir,
        "trivy",
        f'echo "$@" >> {tmp_path}/args\n'
        f'if [ "$1" = version ]; then cat {DATA}/trivy-version.json; '
        f"else cat {DATA}/trivy-report.json; fi\n",
    )
    report = SCANNERS["trivy"](ScanSettings()).scan(target(tmp_path))
    assert report.scanner == "trivy"
    assert report.findings[0].severity is Severity.CRITICAL  # worst first
    assert report.database_date is not None and report.database_date.year == 2024
    calls = (tmp_path / "args").read_text().splitlines()
    assert calls[0] == f"image --quiet --format json --input {tmp_path}/image"


def test_grype_scanner_runs_grype_on_the_oci_dir(tmp_path: Path, bin_dir: Path) -> None:
    fake_tool(bin_dir, "grype", f'echo "$@" > {tmp_path}/args\ncat {DATA}/grype-report.json\n')
    report = GrypeScanner().scan(target(tmp_path))
    assert [f.cve for f in report.findings][0] == "CVE-2023-31484"
    assert (tmp_path / "args").read_text().strip() == f"oci-dir:{tmp_path}/image -o json -q"


def test_a_failing_scanner_is_a_scan_error_with_its_stderr(tmp_path: Path, bin_dir: Path) -> None:
    fake_tool(bin_dir, "trivy", 'echo "FATAL: db download failed" >&2\nexit 1\n')
    with pytest.raises(ScanError, match="db download failed"):
        TrivyScanner().scan(target(tmp_path))


def test_garbage_output_is_a_scan_error(tmp_path: Path, bin_dir: Path) -> None:
    fake_tool(bin_dir, "grype", "echo not json\n")
    with pytest.raises(ScanError, match="not JSON"):
        GrypeScanner().scan(target(tmp_path))


def test_a_missing_tool_is_named(bin_dir: Path) -> None:
    with pytest.raises(InputError, match="grype is not installed"):
        SCANNERS["grype"](ScanSettings())


def test_the_debian_scanner_needs_a_data_source() -> None:
    with pytest.raises(InputError, match="needs the tracker data") as caught:
        SCANNERS["debian"](ScanSettings())
    assert caught.value.hint and "SOCLE_DEBIAN_TRACKER" in caught.value.hint
