"""Content values: media types, descriptors and manifests (bytes kept exact)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from socle.canonical import canonical_json, sha256_digest
from socle.registry.errors import InvalidManifest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

# Sent in every manifest Accept header: distribution 2.8 answers 404 for an OCI
# manifest it was not asked for, and rewrites a Docker v2 one to schema1.
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})


def matches(data: bytes, digest: str) -> bool:
    """True when `data` hashes to `digest` (sha256, sha384 or sha512; anything else is False)."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm not in ("sha256", "sha384", "sha512"):
        return False
    return hashlib.new(algorithm, data).hexdigest() == encoded


@dataclass(frozen=True)
class Descriptor:
    """What a registry says about a piece of content: its type, digest and size."""

    media_type: str
    digest: str
    size: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        """Read an OCI descriptor object (`mediaType`, `digest`, `size`)."""
        return cls(str(data.get("mediaType", "")), str(data["digest"]), int(data["size"]))


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as stored; `digest` is the sha256 of `data`."""

    media_type: str
    digest: str
    data: bytes

    @classmethod
    def of(cls, data: bytes, media_type: str | None = None) -> Manifest:
        """A manifest for `data`; the media type defaults to the document's `mediaType`."""
        manifest = cls(media_type or "", sha256_digest(data), data)
        if media_type:
            return manifest
        return cls(str(manifest.json().get("mediaType", "")), manifest.digest, data)

    def json(self) -> dict[str, Any]:
        """The parsed document; :class:`InvalidManifest` if it is not a JSON object."""
        try:
            parsed = json.loads(self.data)
        except ValueError as exc:
            raise InvalidManifest(self.digest, f"not JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise InvalidManifest(self.digest, "not a JSON object")
        return parsed

    @property
    def descriptor(self) -> Descriptor:
        """A descriptor pointing at this manifest."""
        return Descriptor(self.media_type, self.digest, len(self.data))

    @property
    def is_index(self) -> bool:
        """True for an OCI index or a Docker manifest list."""
        return self.media_type in INDEX_TYPES

    def children(self) -> list[Descriptor]:
        """The platform manifests an index points at (empty for an image manifest)."""
        if not self.is_index:
            return []
        return self._descriptors(self.json().get("manifests", []))

    def blobs(self) -> list[Descriptor]:
        """The config then the layers of an image manifest (empty for an index)."""
        if self.is_index:
            return []
        doc = self.json()
        config = [doc["config"]] if "config" in doc else []
        return self._descriptors(config + list(doc.get("layers") or []))

    def _descriptors(self, items: list[Any]) -> list[Descriptor]:
        try:
            return [Descriptor.from_json(item) for item in items]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidManifest(self.digest, f"bad descriptor ({exc!r})") from None


def with_annotations(manifest: Manifest, annotations: Mapping[str, str]) -> Manifest:
    """`manifest` with `annotations` merged into its own (a new document, so a new digest).

    Serialized compactly with sorted keys, so the same inputs always give the same digest.
    """
    doc = manifest.json()
    doc["annotations"] = {**doc.get("annotations", {}), **annotations}
    data = canonical_json(doc)
    return Manifest(manifest.media_type, sha256_digest(data), data)
