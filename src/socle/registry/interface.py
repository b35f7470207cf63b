"""What the rest of socle needs from a registry: narrow Protocols, one per capability.

:class:`socle.registry.client.RegistryClient` implements all of them. Callers
ask for the narrowest one that covers what they do, so a unit test can hand
them a small fake instead of faking HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from socle.oci.content import Descriptor, Manifest
from socle.oci.reference import Reference

# What a blob upload reads from: the bytes, or a file streamed in chunks.
BlobSource = bytes | Path


class ManifestResolver(Protocol):
    """Resolve a reference to what it points at now."""

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        """The descriptor `ref` resolves to, or None when nothing is there."""
        ...


class ManifestReader(ManifestResolver, Protocol):
    """Resolve and fetch manifests and indexes."""

    def get_manifest(self, ref: Reference) -> Manifest:
        """The manifest or index at `ref`, bytes exact and digest checked."""
        ...


class Manifests(ManifestReader, Protocol):
    """Read, resolve in bulk, write and tag manifests."""

    def head_manifests(
        self, refs: Sequence[Reference], *, recent: bool = False
    ) -> list[Descriptor | None]:
        """:meth:`head_manifest` for many references at once, in order.

        `recent` answers a tag the implementation already read or wrote from
        that, without asking (its own writes always included).
        """
        ...

    def find_manifests(self, refs: Sequence[Reference]) -> list[Manifest | None]:
        """The manifest at each reference (None where there is none), at once, in order."""
        ...

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """Store `data` at `ref` (a tag or its own digest); returns the digest."""
        ...

    def tag(self, ref: Reference, tag: str) -> str:
        """Point `tag` of `ref`'s repository at the manifest `ref` names (same bytes)."""
        ...


class BlobReader(Protocol):
    """Read blobs (configs, layers, attached artefacts)."""

    def get_blob(self, ref: Reference, digest: str) -> bytes:
        """The blob `digest` of `ref`'s repository, checked against its digest."""
        ...


class Blobs(BlobReader, Protocol):
    """Read and store blobs."""

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        """True when `ref`'s repository holds the blob."""
        ...

    def ensure_blob(
        self, ref: Reference, digest: str, source: BlobSource, *, mount_from: Sequence[str] = ()
    ) -> bool:
        """Make sure the repository has the blob (HEAD, mount, upload); True if bytes went up."""
        ...


class Tags(Protocol):
    """List a repository's tags."""

    def list_tags(self, ref: Reference) -> list[str]:
        """Every tag of `ref`'s repository."""
        ...


class ImageSource(ManifestReader, BlobReader, Protocol):
    """Enough to copy a published image to local disk."""


class Artifacts(Manifests, Blobs, Protocol):
    """Store and read small artefacts beside images (the tag journal)."""


class Referrers(Artifacts, Protocol):
    """What artefacts attached to an image need (signatures, attestations).

    distribution 2.8 has no Referrers API, so attachments live in the
    referrers tag schema (`sha256-<hex>` index) and cosign's `.sig`/`.att`
    tags: plain manifests and blobs.
    """


class Publishing(Protocol):
    """Publish whole images."""

    def push_layout(
        self,
        layout_dir: Path,
        dst: Reference,
        *,
        annotations: Mapping[str, str] | None = None,
        mount_from: Sequence[str] = (),
    ) -> Manifest:
        """Push the one image of an OCI layout by digest; tags are moved separately."""
        ...

    def copy(self, src: Reference, dst: Reference) -> Manifest:
        """Copy an image or index with its blobs, keeping the digest."""
        ...


class Registry(Manifests, Blobs, Tags, Publishing, Protocol):
    """Everything a build run does with the registry."""
