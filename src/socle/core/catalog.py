"""The catalog: image families as declared by the ops team, as frozen values.

Parsing and validation live in :mod:`socle.core.loader`; everything here is plain data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from socle.core.imagetest import ImageTest
from socle.core.nodes import Location
from socle.core.policy import Policy


class Kind(Enum):
    """How an image is produced."""

    BOOTSTRAP = "bootstrap"  # built from the distribution's archive (mmdebstrap)
    UPSTREAM = "upstream"  # re-published from an upstream image pinned by digest
    BUILD = "build"  # built from a Dockerfile FROM a parent in the catalog


@dataclass(frozen=True)
class Duration:
    """A span such as `7d`, kept with its spelling for messages."""

    seconds: int
    text: str


@dataclass(frozen=True)
class Bootstrap:
    """Parameters of an OS image bootstrapped from the distribution's archive."""

    distribution: str
    suite: str
    variant: str = "minbase"
    packages: tuple[str, ...] = ()
    components: tuple[str, ...] = ("main",)
    architecture: str = "amd64"
    mirror: str | None = None  # None: the host's own apt sources
    security: bool = True  # include the security suite

    def parameters(self) -> dict[str, object]:
        """Every input of the bootstrap, canonical (sorted packages), for the fingerprint."""
        return {
            "distribution": self.distribution,
            "suite": self.suite,
            "variant": self.variant,
            "packages": sorted(self.packages),
            "components": list(self.components),
            "architecture": self.architecture,
            "mirror": self.mirror,
            "security": self.security,
        }


@dataclass(frozen=True)
class Upstream:
    """An upstream image re-published under the organisation's name."""

    image: str  # reference without tag, e.g. "centos" or "quay.example/org/centos"
    tag: str
    digest: str | None  # the pin; None until `socle pins update` resolves it
    inline: bool = False  # pinned in the catalog itself rather than in the pins file

    def __str__(self) -> str:
        return f"{self.image}:{self.tag}"


@dataclass(frozen=True)
class ParentRef:
    """A parent as written in the catalog: `debian` (every variant) or `debian:12` (one tag)."""

    image: str
    tag: str | None
    location: Location

    def __str__(self) -> str:
        return f"{self.image}:{self.tag}" if self.tag else self.image


@dataclass(frozen=True)
class Version:
    """One version of an image, with everything that determines how it is produced."""

    name: str
    location: Location
    aliases: tuple[str, ...] = ()
    parents: tuple[ParentRef, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    dockerfile: Path | None = None
    context: Path | None = None
    bootstrap: Bootstrap | None = None
    upstream: Upstream | None = None
    tests: tuple[ImageTest, ...] = ()
    # Debian architecture names, native first; () when the catalog declares none (one image,
    # for the bootstrap's architecture or amd64). Two or more are published as an OCI index.
    architectures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Image:
    """An image family member: one repository, several versions, maybe several parents."""

    name: str
    repository: str  # path under the registry, e.g. "my/java"
    kind: Kind
    location: Location
    versions: tuple[Version, ...]
    tag_name: str  # how children spell this image in their tags ("8-debian12")
    default_parent: ParentRef | None = None
    aliases: tuple[str, ...] = ()  # e.g. "latest": the highest version (on the default parent)
    max_age: Duration | None = None  # rebuild when the published image is older (own or global)
    tests: tuple[ImageTest, ...] = ()  # declared image tests (versions and children inherit them)

    def parent_images(self) -> set[str]:
        """Names of the catalog images this one is built on."""
        return {p.image for v in self.versions for p in v.parents}


@dataclass(frozen=True)
class ScanConfig:
    """Which scanner checks images, and where its data comes from."""

    scanner: str = "debian"
    db: str | None = None  # file, file:// or http(s) URL of the Security Tracker JSON


@dataclass(frozen=True)
class Catalog:
    """A validated catalog file."""

    path: Path
    registry: str
    namespace: str
    images: tuple[Image, ...]
    pins_path: Path | None = None  # where `socle pins update` writes upstream digests
    policy: Policy | None = None  # the CVE gate; None: scans (if any) only inform
    scan: ScanConfig | None = None
    by_name: dict[str, Image] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {image.name: image for image in self.images})

    def upstreams(self) -> Iterator[tuple[Image, Version, Upstream]]:
        """Every version re-published from an upstream image, with its image."""
        for image in self.images:
            for version in image.versions:
                if version.upstream is not None:
                    yield image, version, version.upstream

    def with_registry(self, registry: str) -> Catalog:
        """The same catalog published to another registry host."""
        return replace(self, registry=registry)
