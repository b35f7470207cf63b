"""Content values: descriptors with platforms, and manifests or indexes kept byte-exact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from socle.canonical import canonical_json, sha256_digest
from socle.oci.errors import InvalidManifest
from socle.oci.media import INDEX_TYPES

NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})


def matches(data: bytes, digest: str) -> bool:
    """True when `data` hashes to `digest` (sha256, sha384 or sha512; anything else is False)."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm not in ("sha256", "sha384", "sha512"):
        return False
    return hashlib.new(algorithm, data).hexdigest() == encoded


@dataclass(frozen=True)
class Platform:
    """Where an image of an index runs: `linux/amd64`, `linux/arm64/v8`."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`OS/ARCH[/VARIANT]`."""
        parts = text.split("/")
        return cls(parts[0], parts[1] if len(parts) > 1 else "", "/".join(parts[2:]))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        """An index entry's `platform` object."""
        return cls(str(data.get("os", "")), str(data.get("architecture", "")), str(data.get("variant") or ""))

    def to_json(self) -> dict[str, str]:
        """The `platform` object of an index entry."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def satisfies(self, wanted: Platform) -> bool:
        """True when this platform is `wanted` (an empty variant in `wanted` matches any)."""
        mine = (self.os, self.architecture, self.variant)
        theirs = (wanted.os, wanted.architecture, wanted.variant)
        return all(not want or want == have for have, want in zip(mine, theirs, strict=True))

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a blob or manifest is, its digest and its size."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)
    platform: Platform | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        """Read a descriptor object (`mediaType`, `digest`, `size`, and optionally more)."""
        platform = data.get("platform")
        return cls(
            str(data.get("mediaType", "")),
            str(data["digest"]),
            int(data["size"]),
            dict(data.get("annotations") or {}),
            Platform.from_json(platform) if isinstance(platform, Mapping) else None,
        )

    def to_json(self) -> dict[str, object]:
        """The descriptor as it appears in a manifest or an index."""
        out: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out


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
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested too deep
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
        layers = doc.get("layers") or []
        if not isinstance(layers, list):
            raise InvalidManifest(self.digest, "its `layers` is not a list")
        config = [doc["config"]] if "config" in doc else []
        return self._descriptors(config + layers)

    def for_platform(self, wanted: Platform) -> Descriptor | None:
        """The first child of an index that runs on `wanted`, or None."""
        return next(
            (c for c in self.children() if c.platform is not None and c.platform.satisfies(wanted)),
            None,
        )

    def _descriptors(self, items: list[Any]) -> list[Descriptor]:
        try:
            return [Descriptor.from_json(item) for item in items]
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise InvalidManifest(self.digest, f"bad descriptor ({exc!r})") from None


def with_annotations(manifest: Manifest, annotations: Mapping[str, str]) -> Manifest:
    """`manifest` with `annotations` merged into its own (a new document, so a new digest).

    Serialized canonically, so the same inputs always give the same digest.
    """
    doc = manifest.json()
    own = doc.get("annotations") or {}
    if not isinstance(own, dict):
        raise InvalidManifest(manifest.digest, "its `annotations` is not an object")
    doc["annotations"] = {**own, **annotations}
    data = canonical_json(doc)
    return Manifest(manifest.media_type, sha256_digest(data), data)
