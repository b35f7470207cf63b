"""`socle sbom` and `socle scan` against a real registry, with test tracker data.

The image is built by hand (a dpkg database, copyright files, a Python
distribution, a jar deleted by a whiteout in the upper layer), pushed with
skopeo, then read back through the registry by the commands.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from socle.commands.trust import sbom_cmd, scan_cmd
from socle.core.policy import AllowEntry, Policy, evaluate
from socle.errors import GateFailed
from socle.localimage import pull_layout
from socle.oci.layout import write_image_layout
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.sbom import Ecosystem, inventory
from socle.scan import ScanTarget
from socle.scan.debian import DebianTrackerScanner
from socle.scan.tracker import load_tracker
from tests.integration.conftest import LocalRegistry, require
from tests.unit.sbom.test_sbom import (
    DEP5,
    OLD_STYLE,
    OS_RELEASE,
    Symlink,
    dpkg_entry,
    dpkg_status,
    jar_bytes,
    tar_layer,
)

pytestmark = pytest.mark.integration

TRACKER = Path(__file__).resolve().parents[1] / "data" / "debian-tracker.json"
PERL_CVE = "CVE-2023-31484"  # open for perl in bookworm, urgency high, in the test data


def lower_layer() -> bytes:
    return tar_layer(
        {
            "usr/lib/os-release": OS_RELEASE,
            "etc/os-release": Symlink("../usr/lib/os-release"),
            "var/lib/dpkg/status": dpkg_status(
                dpkg_entry("perl-base", "5.36.0-7+deb12u1", "perl"),
                dpkg_entry("libc6", "2.36-9+deb12u4", "glibc"),
                dpkg_entry("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
                dpkg_entry("libgcc-s1", "12.2.0-14", "gcc-12 (12.2.0-14)"),
            ),
            "usr/share/doc/perl-base/copyright": DEP5,
            "usr/share/doc/libc6/copyright": OLD_STYLE,
            "opt/tools/legacy-1.0.jar": jar_bytes(
                {"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n"}
            ),
        }
    )


def upper_layer() -> bytes:
    return tar_layer(
        {
            "opt/tools/.wh.legacy-1.0.jar": b"",
            "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA": (
                b"Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nLicense: Apache 2.0\n"
            ),
        }
    )


@pytest.fixture(scope="module")
def image_ref(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    require("skopeo")
    work = tmp_path_factory.mktemp("scan-image")
    tars = []
    for name, data in (("lower.tar", lower_layer()), ("upper.tar", upper_layer())):
        (work / name).write_bytes(data)
        tars.append(work / name)
    layout = work / "layout"
    write_image_layout(layout, layers=tars, config={"architecture": "amd64", "os": "linux"})
    ref = f"{registry.host}/trust/base:12"
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"],
        check=True,
        capture_output=True,
    )
    return ref


def invoke(command: object, *args: str) -> Result:
    runner = CliRunner()
    return runner.invoke(command, list(args), env={"COLUMNS": "200"})  # type: ignore[arg-type]


def write_policy(tmp_path: Path, expires: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            max_severity: medium
            allowlist:
              - cve: {PERL_CVE}
                reason: CPAN.pm is never run in this image
                owner: platform-team
                expires: {expires}
            """
        )
    )
    return path


def test_sbom_command_writes_a_valid_cyclonedx_document(image_ref: str, tmp_path: Path) -> None:
    out = tmp_path / "sbom.json"
    result = invoke(sbom_cmd, image_ref, "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    image = doc["metadata"]["component"]
    assert image["purl"].startswith("pkg:oci/base@sha256:")
    assert "repository_url=" + image_ref.rsplit(":", 1)[0] in image["purl"]
    purls = {c["name"]: c.get("purl") for c in doc["components"]}
    assert purls["perl-base"] == (
        "pkg:deb/debian/perl-base@5.36.0-7%2Bdeb12u1?arch=amd64&distro=debian-12"
    )
    assert purls["requests"] == "pkg:pypi/requests@2.28.1"
    assert "legacy" not in purls  # deleted by the upper layer's whiteout
    assert purls["debian"] is None  # the operating system component


def test_scan_reports_the_open_perl_cve_and_fails_on_high(image_ref: str) -> None:
    result = invoke(scan_cmd, image_ref, "--db", str(TRACKER), "--fail-on", "high")
    assert result.exit_code == 1
    assert isinstance(result.exception, GateFailed)
    assert PERL_CVE in str(result.exception)
    assert PERL_CVE in result.stdout and "BLOCK" in result.stdout
    assert "Debian Security Tracker (bookworm)" in result.stdout


def test_scan_without_a_gate_exits_0_and_prints_json(image_ref: str) -> None:
    result = invoke(scan_cmd, image_ref, "--db", TRACKER.as_uri(), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    found = {(f["cve"], f["package"], f["status"]) for f in report["findings"]}
    assert (PERL_CVE, "perl-base", "open") in found
    assert ("CVE-2024-56406", "perl-base", "fixed") in found
    assert ("CVE-2023-4039", "libgcc-s1", "fixed") in found
    assert report["database_date"] is not None
    assert "verdict" not in report


def test_an_allowlisted_cve_passes_the_gate(image_ref: str, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, "2999-12-31")
    result = invoke(scan_cmd, image_ref, "--db", str(TRACKER), "--policy", str(policy), "--json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)["verdict"]
    assert verdict["allowed"] is True
    assert verdict["allowlisted"] == [PERL_CVE]


def test_an_expired_allowlist_entry_blocks_again_and_says_so(
    image_ref: str, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, "2020-01-31")
    result = invoke(scan_cmd, image_ref, "--db", str(TRACKER), "--policy", str(policy))
    assert result.exit_code == 1
    assert isinstance(result.exception, GateFailed)
    assert "allowlist entry expired on 2020-01-31 (owner platform-team)" in result.stdout


def test_the_library_path_gives_the_same_verdicts(image_ref: str, tmp_path: Path) -> None:
    ref = Reference.parse(image_ref)
    with RegistryClient.from_config() as client:
        pulled = pull_layout(client, ref, tmp_path / "image")
    found = inventory(pulled.layout)
    assert [p.name for p in found.of(Ecosystem.JAVA)] == []
    scanner = DebianTrackerScanner(load_tracker(str(TRACKER)))
    report = scanner.scan(ScanTarget(image_ref, pulled.digest, pulled.layout, found))
    entry = AllowEntry(PERL_CVE, "not used", "platform-team", date(2024, 6, 30))
    policy = Policy(allowlist=(entry,))
    assert evaluate(policy, report, date(2024, 6, 30)).allowed
    lapsed = evaluate(policy, report, date(2024, 7, 1))
    assert not lapsed.allowed and lapsed.expired == (entry,)
