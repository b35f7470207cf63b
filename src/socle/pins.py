"""Upstream pins: re-resolve each upstream tag to its digest and rewrite the pins file.

The pins file maps `image:version` (catalog names) to the upstream digest, one
line each, sorted, so a change is a one-line diff a reviewer can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from socle import atomic
from socle.core.catalog import Catalog
from socle.errors import SocleError
from socle.oci.reference import Reference
from socle.registry.interface import ManifestResolver

HEADER = (
    "# Upstream images pinned by digest. Written by `socle pins update`;\n"
    "# review changes in a diff before committing them.\n"
)


@dataclass(frozen=True)
class PinChange:
    """One upstream pin as found now, with the previous value."""

    key: str  # catalog image:version
    upstream: str  # upstream image:tag
    before: str | None
    after: str
    inline: bool  # pinned in the catalog itself: the pins file cannot override it

    @property
    def changed(self) -> bool:
        return self.before != self.after


def resolve(catalog: Catalog, client: ManifestResolver) -> list[PinChange]:
    """The digest each upstream tag points at now, for every upstream version."""
    found = []
    for image, version, upstream in catalog.upstreams():
        ref = Reference.parse(f"{upstream.image}:{upstream.tag}")
        descriptor = client.head_manifest(ref)
        if descriptor is None:
            raise SocleError(
                f"upstream {ref} of {image.name}:{version.name} does not exist",
                hint="check the `upstream` image and the version's `tag`",
            )
        key = f"{image.name}:{version.name}"
        found.append(
            PinChange(key, str(upstream), upstream.digest, descriptor.digest, upstream.inline)
        )
    return found


def write(path: Path, changes: list[PinChange]) -> None:
    """Rewrite the pins file atomically with every non-inline pin, sorted."""
    lines = [f"{c.key}: {c.after}\n" for c in sorted(changes, key=lambda c: c.key) if not c.inline]
    atomic.write_text(path, HEADER + "".join(lines))
