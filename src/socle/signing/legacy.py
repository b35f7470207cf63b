"""cosign's tag layout: signatures at `sha256-<hex>.sig`, attestations at `sha256-<hex>.att`.

Each tag holds one OCI image manifest whose layers are the signed things: the
simple-signing payload (signature in the `dev.cosignproject.cosign/signature`
annotation) or a DSSE envelope (annotation empty, `predicateType` beside it).
New entries are appended to the manifest, never replacing other signers' ones.
The config is what go-containerregistry's empty image gives after appending
layers, which is what cosign pushes.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from socle.canonical import sha256_digest
from socle.oci.media import OCI_CONFIG, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.registry.errors import ManifestNotFound
from socle.signing import b64
from socle.signing.errors import MalformedEntry, SigningError

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"
SIGNATURE_SUFFIX = ".sig"
ATTESTATION_SUFFIX = ".att"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as cosign's configs carry it


@dataclass(frozen=True)
class Entry:
    """One layer of a `.sig` / `.att` manifest: the blob and the descriptor's annotations."""

    media_type: str
    blob: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """cosign's payload for `repository` (`registry/repo`) at `digest`, byte for byte."""
    document = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signed_digest(payload: bytes) -> str:
    """The manifest digest a simple-signing payload covers (keys matched case-insensitively).

    Go's `encoding/json`, which cosign and containers/image use, matches keys that way.
    """
    try:
        critical = _field(json.loads(payload), "critical")
        kind = _field(critical, "type")
        digest = _field(_field(critical, "image"), "docker-manifest-digest")
    except (ValueError, KeyError, TypeError):
        raise MalformedEntry("the payload is not a simple-signing document") from None
    if kind != SIGNATURE_TYPE:
        raise MalformedEntry(f"the payload is of type {kind!r}, not {SIGNATURE_TYPE!r}")
    return str(digest)


def signature_of(entry: Entry) -> bytes:
    """The raw signature in a simple-signing entry's annotation (strict base64)."""
    try:
        return b64.decode(entry.annotations.get(SIGNATURE_ANNOTATION, ""))
    except binascii.Error:
        raise MalformedEntry("its signature annotation is not base64") from None


def tag_for(digest: str, suffix: str) -> str:
    """The tag cosign uses for `digest`: `sha256-<hex>` + `.sig` or `.att`."""
    return digest.replace(":", "-") + suffix


def read_entries(client: RegistryClient, ref: Reference, digest: str, suffix: str) -> list[Entry]:
    """The entries at `digest`'s `.sig` / `.att` tag of `ref`'s repository ([] if none)."""
    manifest = _existing(client, ref.with_tag(tag_for(digest, suffix)))
    return _entries(client, ref, manifest) if manifest is not None else []


def append_entry(
    client: RegistryClient,
    ref: Reference,
    digest: str,
    suffix: str,
    entry: Entry,
    *,
    duplicate: Callable[[Entry], bool] = lambda _: False,
) -> str:
    """Add `entry` to the `.sig`/`.att` manifest of `digest`; returns `registry/repo:tag`.

    Nothing is written when an existing entry is a `duplicate` (cosign's dupe detector:
    the same payload already signed with the same key).
    """
    tag = tag_for(digest, suffix)
    location = f"{ref.name}:{tag}"
    existing = _existing(client, ref.with_tag(tag))
    if existing is not None and any(duplicate(e) for e in _entries(client, ref, existing)):
        return location
    blob_digest = sha256_digest(entry.blob)
    client.ensure_blob(ref, blob_digest, entry.blob)
    layer = {
        "mediaType": entry.media_type,
        "size": len(entry.blob),
        "digest": blob_digest,
        "annotations": dict(entry.annotations),
    }
    manifest, media_type = _appended(client, ref, existing, layer)
    client.put_manifest(ref.with_tag(tag), manifest, media_type)
    return location


def _existing(client: RegistryClient, ref: Reference) -> dict[str, Any] | None:
    try:
        return client.get_manifest(ref).json()
    except ManifestNotFound:
        return None


def _entries(client: RegistryClient, ref: Reference, manifest: dict[str, Any]) -> list[Entry]:
    entries = []
    for layer in manifest.get("layers") or []:
        try:
            blob = client.get_blob(ref, str(layer["digest"]))
            annotations = {str(k): str(v) for k, v in (layer.get("annotations") or {}).items()}
        except (KeyError, TypeError, AttributeError):
            raise MalformedEntry("a layer of a signature manifest has no digest") from None
        entries.append(Entry(str(layer.get("mediaType", "")), blob, annotations))
    return entries


def _appended(
    client: RegistryClient, ref: Reference, existing: dict[str, Any] | None, layer: dict[str, Any]
) -> tuple[bytes, str]:
    """The manifest with `layer` appended, and a config blob matching its layers, uploaded."""
    doc = existing or {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG},
    }
    if not isinstance(doc.get("layers", []), list) or not isinstance(doc.get("config"), dict):
        raise SigningError(
            f"the signature manifest in {ref} is not an image manifest; not touching it"
        )
    doc["layers"] = [*doc.get("layers", []), layer]
    config = _config([str(item.get("digest")) for item in doc["layers"]])
    client.ensure_blob(ref, sha256_digest(config), config)
    doc["config"] = {
        "mediaType": doc["config"].get("mediaType", OCI_CONFIG),
        "size": len(config),
        "digest": sha256_digest(config),
    }
    return json.dumps(doc, separators=(",", ":")).encode(), str(doc.get("mediaType", OCI_MANIFEST))


def _config(diff_ids: list[str]) -> bytes:
    document = {
        "architecture": "",
        "created": ZERO_TIME,
        "history": [{"created": ZERO_TIME} for _ in diff_ids],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _field(obj: Any, name: str) -> Any:
    """`obj[name]` with Go's case-insensitive key matching (an exact match wins)."""
    if not isinstance(obj, dict):
        raise TypeError(name)
    if name in obj:
        return obj[name]
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    raise KeyError(name)
