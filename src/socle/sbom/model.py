"""What an image holds, as frozen values: its distribution and its packages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Ecosystem(Enum):
    """Where a package comes from, which decides its purl type."""

    DEB = "deb"
    JAVA = "java"
    PYTHON = "python"


@dataclass(frozen=True)
class Distro:
    """The image's distribution, from `/etc/os-release`."""

    id: str
    version_id: str | None = None
    codename: str | None = None
    pretty_name: str | None = None

    @property
    def label(self) -> str:
        """`debian-12` (the purl `distro` qualifier), or `debian-bookworm` without a version."""
        return f"{self.id}-{self.version_id or self.codename or 'unknown'}"


@dataclass(frozen=True)
class Package:
    """One installed package.

    For Debian packages `source_name`/`source_version` name the source package
    (the Security Tracker is keyed by it); for others they repeat name and
    version. `group` is a Maven groupId when known; `path` is where a jar or a
    Python distribution was found (None for Debian packages).
    """

    ecosystem: Ecosystem
    name: str
    version: str
    source_name: str
    source_version: str
    arch: str | None = None
    licences: tuple[str, ...] = ()
    group: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Inventory:
    """Everything found in an image, sorted; `warnings` say what could not be read."""

    distro: Distro | None
    packages: tuple[Package, ...]
    architecture: str | None = None
    warnings: tuple[str, ...] = ()

    def of(self, ecosystem: Ecosystem) -> tuple[Package, ...]:
        """The packages of one ecosystem."""
        return tuple(p for p in self.packages if p.ecosystem is ecosystem)
