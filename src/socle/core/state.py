"""What is published: the interface the planner reads, and an in-memory implementation.

The registry-backed implementation lives in :mod:`socle.registry.state`; the
in-memory one serves unit tests, benchmarks and `--dry-run` style previews.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from socle.oci.media import BASE_DIGEST, CREATED

# Annotations socle writes on every image it publishes (manifest annotations and config labels).
FINGERPRINT = "io.github.socle.fingerprint"
INPUTS = "io.github.socle.inputs"
TESTS = "io.github.socle.tests"  # what each trust gate found, recorded by socle.gates
SBOM = "io.github.socle.sbom"
SCAN = "io.github.socle.scan"
GATES = (TESTS, SBOM, SCAN)


@dataclass(frozen=True)
class Published:
    """What the planner needs to know about one published image."""

    digest: str
    fingerprint: str | None = None
    inputs: tuple[tuple[str, str], ...] = ()
    base_digest: str | None = None
    created: str | None = None
    gates: tuple[tuple[str, str], ...] = ()  # what each trust gate recorded (tests, sbom, scan)

    @classmethod
    def from_annotations(cls, digest: str, annotations: Mapping[str, str]) -> Published:
        """Read socle's records back from an image's annotations (tolerating foreign images)."""
        try:
            raw = json.loads(annotations.get(INPUTS, "{}"))
            inputs = tuple(sorted((str(k), str(v)) for k, v in raw.items()))
        except (ValueError, AttributeError, RecursionError):  # not socle's record, or damaged
            inputs = ()
        return cls(
            digest=digest,
            fingerprint=annotations.get(FINGERPRINT),
            inputs=inputs,
            base_digest=annotations.get(BASE_DIGEST),
            created=annotations.get(CREATED),
            gates=tuple((k.rsplit(".", 1)[1], annotations[k]) for k in GATES if k in annotations),
        )


class PublishedState(Protocol):
    """Reads what is published under exact references, in one batch."""

    def lookup(self, refs: Sequence[str]) -> dict[str, Published | None]:
        """`Published` for each reference, or None when nothing is published there."""
        ...


class MemoryState:
    """Published images held in a dict: for tests, benchmarks and previews."""

    def __init__(self, images: Mapping[str, Published] | None = None) -> None:
        self.images: dict[str, Published] = dict(images or {})

    def lookup(self, refs: Sequence[str]) -> dict[str, Published | None]:
        return {ref: self.images.get(ref) for ref in refs}

    def publish(self, ref: str, image: Published) -> None:
        self.images[ref] = image
