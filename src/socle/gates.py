"""Trust gates: what an image must pass before any tag moves.

The executor runs each gate, in order, on a produced image before pushing it
(tests, SBOM, scan and policy); publishers (signature, provenance) run after
the push by digest and before the exact tag, so no tag ever points at an
unsigned image. A gate records its outcome as
annotations on the image, or raises :class:`GateFailed`, which blocks the
image and its subtree.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from socle import __version__
from socle.builders.interface import Builder
from socle.convention import Variant
from socle.errors import SocleError
from socle.imagetests import ImageTest, effective_tests, run_tests, to_junit_xml
from socle.layout import read_image_layout
from socle.registry.client import RegistryClient
from socle.registry.reference import Reference
from socle.signing import SigningKey, attest, provenance_statement, sign
from socle.state import BASE_DIGEST, BASE_NAME, FINGERPRINT, INPUTS

TESTS = "io.github.socle.tests"


class GateFailed(SocleError):
    """An image did not pass a gate; the message says which and why."""


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
        subject.load()
        config = read_image_layout(subject.layout).config
        report = run_tests(self.builder, subject.local_name, config, tests)
        if self.reports is not None:
            self.reports.mkdir(parents=True, exist_ok=True)
            name = subject.variant.key.replace(":", "_")
            (self.reports / f"{name}.junit.xml").write_text(
                to_junit_xml(report, subject.variant.key)
            )
        summary = report.summary()
        subject.notes.append(f"tests: {summary}")
        if report.failed:
            details = "\n".join(f"  - {r.name}: {r.message}" for r in report.failed)
            raise GateFailed(
                f"image tests failed for {subject.variant.key} ({summary})\n{details}",
                hint="fix the image or the test in the catalog's `tests:`",
            )
        return {TESTS: summary}


class SignPublisher:
    """Signs the pushed digest and attests its SLSA provenance, in both cosign layouts."""

    name = "signature"

    def __init__(
        self, client: RegistryClient, key: SigningKey, *, catalog: Path, builder: str
    ) -> None:
        self.client = client
        self.key = key
        self.catalog = catalog
        self.builder = builder

    def publish(self, subject: Subject, ref: Reference) -> None:
        sign(self.client, ref, self.key)
        records = subject.annotations
        parents = {records[BASE_NAME]: records[BASE_DIGEST]} if BASE_NAME in records else {}
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
        attest(self.client, ref, self.key, statement)
        subject.notes.append("signed, provenance attested")
