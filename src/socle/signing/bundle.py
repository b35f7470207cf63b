"""Sigstore bundles v0.3 carrying a DSSE envelope, verified with a public key.

The JSON is what cosign 3 writes (`pkg/cosign/bundle/protobundle.go`, protojson):
the verification material is only a public key hint (base64 of the SHA-256 of
the key's DER), with no certificate, no transparency log entry and no timestamp;
raw bytes are base64 and empty fields are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from socle.signing import b64
from socle.signing.dsse import Envelope
from socle.signing.errors import MalformedEntry

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"


@dataclass(frozen=True)
class Bundle:
    """The parts of a bundle socle checks: its DSSE envelope and its key hint."""

    envelope: Envelope
    key_hint: str | None


def bundle_json(envelope: Envelope, key_hint: str) -> bytes:
    """A v0.3 bundle for `envelope`, identifying the verification key by `key_hint`."""
    document = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint}},
        "dsseEnvelope": {
            "payload": b64.encode(envelope.payload),
            "payloadType": envelope.payload_type,
            "signatures": [{"sig": b64.encode(sig)} for sig in envelope.signatures],
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def read_bundle(data: bytes) -> Bundle:
    """Parse a bundle holding a DSSE envelope; :class:`MalformedEntry` otherwise."""
    try:
        doc = json.loads(data)
        media_type = str(doc.get("mediaType", ""))
        material = doc.get("verificationMaterial") or {}
        dsse = doc.get("dsseEnvelope")
    except (ValueError, AttributeError):
        raise MalformedEntry("the bundle is not a JSON object") from None
    if not media_type.startswith(BUNDLE_MEDIA_TYPE_PREFIX):
        raise MalformedEntry(f"not a Sigstore bundle (media type {media_type!r})")
    if not isinstance(dsse, dict):
        raise MalformedEntry("the bundle holds no DSSE envelope (a message signature?)")
    return Bundle(Envelope.from_json(_with_keyids(dsse)), _hint(material))


def _hint(material: Any) -> str | None:
    key = material.get("publicKey") if isinstance(material, dict) else None
    return str(key["hint"]) if isinstance(key, dict) and "hint" in key else None


def _with_keyids(dsse: dict[str, Any]) -> dict[str, Any]:
    """protojson leaves out empty `keyid`s; the envelope reader does not need them."""
    try:
        return {**dsse, "signatures": [{"keyid": "", **s} for s in dsse["signatures"]]}
    except (KeyError, TypeError):
        raise MalformedEntry("the bundle's envelope has no signatures") from None
