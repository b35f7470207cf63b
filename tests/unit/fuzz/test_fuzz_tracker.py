"""Fuzz the Debian Security Tracker's JSON: parsed, then matched against an image's packages.

The property: any body gives findings for the image or a ScanError, and the
scan report serializes (the gate and `--json` read it).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import example, given

from socle.sbom import Distro, Ecosystem, Inventory, Package
from socle.scan import ScanTarget
from socle.scan.debian import DebianTrackerScanner
from socle.scan.tracker import TrackerSnapshot, parse_tracker
from tests.conftest import ROOT
from tests.unit.fuzz.mutations import FUZZ, json_bytes, refuses_cleanly

SEED = json.loads((ROOT / "tests/data/debian-tracker.json").read_text())
IMAGE = Inventory(
    Distro("debian", "12", "bookworm"),
    tuple(
        Package(Ecosystem.DEB, name, version, source, version, "amd64")
        for name, version, source in (
            ("perl-base", "5.36.0-7+deb12u1", "perl"),
            ("libc6", "2.36-9+deb12u4", "glibc"),
            ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
            ("libgcc-s1", "12.2.0-14", "gcc-12"),
            ("libssl3", "3.0.13-1~deb12u1", "openssl"),
        )
    ),
)
TARGET = ScanTarget("127.0.0.1:5000/my/base:12", "sha256:" + "0" * 64, Path("."), IMAGE)


def scan(body: bytes) -> None:
    data = refuses_cleanly(lambda: parse_tracker(body, "tracker.json"))
    if not isinstance(data, dict):
        return
    snapshot = TrackerSnapshot("tracker.json", datetime(2026, 1, 1, tzinfo=UTC), data)
    report = refuses_cleanly(lambda: DebianTrackerScanner(snapshot).scan(TARGET))
    if not isinstance(report, Exception):
        json.dumps(report.to_json())


def test_the_seed_has_findings() -> None:
    assert DebianTrackerScanner(
        TrackerSnapshot("t", datetime(2026, 1, 1, tzinfo=UTC), SEED)
    ).scan(TARGET).findings


@FUZZ
@given(json_bytes(SEED))
@example(b"[" * 100_000)  # RecursionError: nested too deep
@example(b'{"perl": {"CVE-2023-31484": {"releases": null}}}')  # AttributeError on None.get
@example(b'{"perl": {"CVE-2023-31484": {"releases": []}}}')  # AttributeError on list.get
def test_tracker_data(body: bytes) -> None:
    scan(body)
