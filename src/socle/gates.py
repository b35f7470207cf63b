"""Trust gates: what an image must pass before any tag moves.

The executor runs each gate, in order, on a produced image before pushing it
(tests, SBOM, scan and policy); publishers (signature, provenance) run after
the push by digest and before the exact tag. A gate records its outcome as
annotations on the image, or raises :class:`GateFailed`, which blocks the
image and its subtree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from socle.builders.interface import Builder
from socle.convention import Variant
from socle.errors import SocleError
from socle.imagetests import ImageTest, effective_tests, run_tests, to_junit_xml
from socle.layout import read_image_layout

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
    notes: list[str] = field(default_factory=list)  # one line per gate for the run summary


class Gate(Protocol):
    """One check before publication."""

    name: str

    def check(self, subject: Subject) -> dict[str, str]:
        """Annotations recording the outcome; raise GateFailed to stop the image."""
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
