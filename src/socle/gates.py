"""Trust gates: what an image must pass before any tag moves.

The executor runs the gates on a produced image before pushing its manifest
(tests, SBOM, scan and policy), side by side where they do not need each other:
the tests beside the SBOM, the scan once the SBOM is there; another gate waits
for those it names in `needs`, or for every gate declared before it. Their
results are merged in declared order, and the image's blobs are uploaded while
they run. Publishers (signature, provenance) run after the push by digest and
before the exact tag, so no tag ever points at an unsigned image. A gate records
its outcome as annotations on the image, or raises :class:`GateFailed`, which blocks the
image and its subtree.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from socle import __version__
from socle.builders.interface import Builder
from socle.core.convention import Variant
from socle.core.imagetest import ImageTest, effective_tests
from socle.core.policy import Policy, Verdict, evaluate
from socle.core.state import FINGERPRINT, INPUTS, SBOM, SCAN, TESTS
from socle.errors import GateFailed
from socle.oci.layout import read_image_layout
from socle.oci.media import BASE_DIGEST, BASE_NAME
from socle.oci.reference import Reference
from socle.scan import ScanReport, ScanTarget
from socle.scan.interface import Scanner
from socle.stack import StackPaths

if TYPE_CHECKING:  # the signing package imports cryptography: only a signing run needs it
    from socle.sbom import Inventory
    from socle.sbom.cache import LayerCache
    from socle.signing.interface import Signer

CYCLONEDX = "https://cyclonedx.org/bom"


@dataclass
class Subject:
    """The image under examination: its layout on disk and, on demand, a local image."""

    variant: Variant
    layout: Path
    local_name: str
    load: Callable[[], None]  # makes `local_name` runnable; idempotent
    annotations: dict[str, str] = field(default_factory=dict)  # socle's records (fingerprint...)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    notes: list[str] = field(default_factory=list)  # one line per gate for the run summary
    inventory: Inventory | None = None  # what the SBOM gate found, for the scan and the SBOM
    sbom: str | None = None  # the CycloneDX document, once the digest is known
    details: dict[str, object] = field(default_factory=dict)  # structured gate results (history)
    arch: str | None = None  # the platform of an index's image (its tests run under emulation)

    @property
    def name(self) -> str:
        """`tool:1-os1`, or `tool:1-os1 (arm64)` for one platform of an index."""
        key = self.variant.key
        return f"{key} ({self.arch})" if self.arch else key

    @property
    def file_stem(self) -> str:
        """The name of its report files: `tool_1-os1`, `tool_1-os1.arm64`."""
        stem = self.variant.key.replace(":", "_")
        return f"{stem}.{self.arch}" if self.arch else stem


class Gate(Protocol):
    """One check before publication."""

    name: str

    def check(self, subject: Subject) -> dict[str, str]:
        """Annotations recording the outcome; raise GateFailed to stop the image."""
        ...


class Publisher(Protocol):
    """One step after the push by digest and before any tag: signatures, attestations."""

    name: str

    def publish(self, subject: Subject, ref: Reference) -> None:
        """Attach something to the pushed image `ref` (by digest); raise SocleError on failure."""
        ...


def variant_tests(variant: Variant) -> tuple[ImageTest, ...]:
    """The tests that apply to `variant`: its ancestors', then its image's, then its version's."""
    inherited = variant_tests(variant.parent) if variant.parent is not None else ()
    return effective_tests(variant.version.tests, effective_tests(variant.image.tests, inherited))


class TestGate:
    """Runs the declared image tests without network; writes JUnit XML when asked."""

    name = "tests"

    def __init__(self, builder: Builder, reports: Path | None = None) -> None:
        self.builder = builder
        self.reports = reports

    def check(self, subject: Subject) -> dict[str, str]:
        tests = variant_tests(subject.variant)
        if not tests:
            return {}
        from socle.imagetests import run_tests, to_junit_xml  # a no-op run never tests

        subject.load()
        config = read_image_layout(subject.layout).config
        report = run_tests(self.builder, subject.local_name, config, tests)
        if self.reports is not None:
            self.reports.mkdir(parents=True, exist_ok=True)
            (self.reports / f"{subject.file_stem}.junit.xml").write_text(
                to_junit_xml(report, subject.name)
            )
        summary = report.summary()
        subject.notes.append(f"tests: {summary}")
        subject.details["tests"] = [
            {"name": r.name, "kind": r.kind, "outcome": r.outcome.value, "message": r.message}
            for r in report.results
        ]
        if report.failed:
            details = "\n".join(f"  - {r.name}: {r.message}" for r in report.failed)
            raise GateFailed(
                f"image tests failed for {subject.name} ({summary})\n{details}",
                hint="fix the image or the test in the catalog's `tests:`",
            )
        return {TESTS: report.counts()}


class SbomGate:
    """Inventories the image's packages from its layers (dpkg, jars, Python) without running it.

    What each layer contributes is cached by the layer's digest (by default in
    socle's data folder), so an image reads only the layers its parent lacks.
    """

    name = "sbom"

    def __init__(self, cache: LayerCache | None = None) -> None:
        if cache is None:
            from socle.sbom.cache import LayerCache

            cache = LayerCache.under(StackPaths.default().root)
        self.cache = cache

    def check(self, subject: Subject) -> dict[str, str]:
        from socle.sbom.contents import read as read_inventory  # a no-op run never reads one

        reading = read_inventory(subject.layout, self.cache)
        subject.inventory = reading.inventory
        count = len(subject.inventory.packages)
        cached = f"{reading.cached} of {reading.layers} layers cached"
        subject.notes.append(f"sbom: {count} packages ({cached})")
        subject.details["packages"] = count
        subject.details["sbom_layers"] = {"layers": reading.layers, "cached": reading.cached}
        return {SBOM: f"{count} packages (CycloneDX attached as an attestation when signed)"}


class ScanGate:
    """Matches the inventory against known vulnerabilities and applies the catalog's policy.

    Without a scanner, the policy's `require_scan` decides: unscanned images
    never get a tag unless the policy says otherwise.
    """

    name = "scan"

    def __init__(
        self, scanner: Scanner | None, policy: Policy | None, reports: Path | None = None
    ) -> None:
        self.scanner = scanner
        self.policy = policy
        self.reports = reports

    def check(self, subject: Subject) -> dict[str, str]:
        report = self.scan(subject)
        verdict = evaluate(self.policy, report, date.today()) if self.policy is not None else None
        if report is not None:
            subject.details["scan"] = scan_details(report, verdict, self.policy)
        if verdict is not None and not verdict.allowed:
            raise GateFailed(
                f"the CVE policy blocks {subject.name}\n"
                + "\n".join(f"  - {line}" for line in verdict.explain()),
                hint="rebuild on patched packages, or add an allowlist entry with a reason, "
                "an owner and an expiry date to the catalog's `policy:`",
            )
        if report is None:
            subject.notes.append("scan: not scanned")
            return {}
        summary = scan_summary(report, verdict)
        subject.notes.append(f"scan: {summary}")
        return {SCAN: summary}

    def scan(self, subject: Subject) -> ScanReport | None:
        if self.scanner is None:
            return None
        assert subject.inventory is not None, "the SBOM gate runs before the scan gate"
        target = ScanTarget(subject.name, "", subject.layout, subject.inventory)
        report = self.scanner.scan(target)
        if self.reports is not None:
            self.reports.mkdir(parents=True, exist_ok=True)
            report_file = self.reports / f"{subject.file_stem}.scan.json"
            report_file.write_text(json.dumps(report.to_json(), indent=2))
        return report


def scan_details(
    report: ScanReport, verdict: Verdict | None, policy: Policy | None
) -> dict[str, object]:
    """The scan for the history: findings by severity, each finding, the allowlist entries used."""
    severities: dict[str, int] = {}
    for finding in report.findings:
        severities[finding.severity.value] = severities.get(finding.severity.value, 0) + 1
    entries = {e.cve: e for e in policy.allowlist} if policy is not None else {}
    allowlisted = [
        {
            "cve": f.cve,
            "package": f.package,
            "reason": entries[f.cve].reason if f.cve in entries else "",
            "owner": entries[f.cve].owner if f.cve in entries else "",
            "expires": entries[f.cve].expires.isoformat() if f.cve in entries else "",
        }
        for f in (verdict.allowlisted if verdict is not None else ())
    ]
    return {
        "scanner": report.scanner,
        "database_date": report.database_date.isoformat() if report.database_date else None,
        "severities": severities,
        "findings": [f.to_json() for f in report.findings[:500]],
        "allowlisted": allowlisted,
        "blocking": [f.cve for f in (verdict.blocking if verdict is not None else ())],
    }


def scan_summary(report: ScanReport, verdict: Verdict | None) -> str:
    when = report.database_date.date().isoformat() if report.database_date else "undated"
    text = f"{report.scanner} (data {when}): {len(report.findings)} findings"
    if verdict is not None:
        text += f", {len(verdict.allowlisted)} allowlisted, policy passed"
    return text


class SbomPublisher:
    """Writes the CycloneDX SBOM of the pushed digest (into --reports, and for the signer)."""

    name = "sbom"

    def __init__(self, reports: Path | None = None) -> None:
        self.reports = reports

    def publish(self, subject: Subject, ref: Reference) -> None:
        if subject.inventory is None or ref.digest is None:
            return
        from socle.sbom.bom import to_cyclonedx  # cyclonedx: 0.1 s a no-op run never needs

        subject.sbom = to_cyclonedx(
            subject.inventory, str(ref.with_tag(subject.variant.exact_tag)), ref.digest
        )
        if self.reports is not None:
            self.reports.mkdir(parents=True, exist_ok=True)
            (self.reports / f"{subject.file_stem}.cdx.json").write_text(subject.sbom)


class SignPublisher:
    """Signs the pushed digest and attests its SLSA provenance, in both cosign layouts."""

    name = "signature"

    def __init__(self, signer: Signer, *, catalog: Path, builder: str) -> None:
        self.signer = signer
        self.catalog = catalog
        self.builder = builder

    def publish(self, subject: Subject, ref: Reference) -> None:
        self.signer.sign(ref)
        records = subject.annotations
        parents = {records[BASE_NAME]: records[BASE_DIGEST]} if BASE_NAME in records else {}
        from socle.signing.provenance import provenance_statement

        statement = provenance_statement(
            ref,
            catalog=str(self.catalog),
            image=subject.variant.image.name,
            version=subject.variant.version.name,
            variant=subject.variant.exact_tag,
            parents=parents,
            fingerprint={
                "fingerprint": records.get(FINGERPRINT),
                "inputs": json.loads(records.get(INPUTS, "{}")),
            },
            builder_id=f"socle/{__version__} ({self.builder})",
            invocation_id=str(uuid.uuid4()),
            started_on=subject.started,
            finished_on=datetime.now(UTC),
        )
        self.signer.attest(ref, statement)
        if subject.sbom is not None:
            self.signer.attest(ref, sbom_statement(ref, subject.sbom))
        subject.notes.append(
            "signed, provenance attested" + (", SBOM attested" if subject.sbom else "")
        )


def sbom_statement(ref: Reference, sbom: str) -> dict[str, object]:
    """An in-toto Statement carrying the CycloneDX SBOM (cosign's `--type cyclonedx` shape)."""
    assert ref.digest is not None
    algorithm, _, value = ref.digest.partition(":")
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": ref.name, "digest": {algorithm: value}}],
        "predicateType": CYCLONEDX,
        "predicate": json.loads(sbom),
    }
