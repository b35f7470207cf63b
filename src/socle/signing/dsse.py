"""DSSE envelopes over in-toto Statements, as cosign and the Sigstore bundle use them.

The signature covers the pre-authentication encoding (PAE)
`"DSSEv1" SP len(type) SP type SP len(body) SP body`, never the bare payload.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any

from socle.signing import b64
from socle.signing.errors import MalformedEntry
from socle.signing.keys import PublicKey, SigningKey

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_TYPES = frozenset({STATEMENT_V1, "https://in-toto.io/Statement/v0.1"})
# The predicate of cosign 3's image signatures, and SLSA provenance v1.
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (lengths are byte counts, in decimal)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: the payload, its type and the raw (DER) signatures."""

    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]

    def to_json(self) -> bytes:
        """The envelope as cosign's `.att` layers hold it (go-securesystemslib field order)."""
        document = {
            "payloadType": self.payload_type,
            "payload": b64.encode(self.payload),
            "signatures": [{"keyid": "", "sig": b64.encode(sig)} for sig in self.signatures],
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | dict[str, Any]) -> Envelope:
        """Read an envelope (JSON bytes or an already parsed object)."""
        try:
            doc = json.loads(data) if isinstance(data, bytes) else data
            signatures = tuple(b64.decode(s["sig"]) for s in doc["signatures"])
            return cls(str(doc["payloadType"]), b64.decode(doc["payload"]), signatures)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise MalformedEntry(f"not a DSSE envelope ({type(exc).__name__}: {exc})") from None

    def verified_by(self, key: PublicKey) -> bool:
        """True when one of the signatures is `key`'s over the PAE of the payload."""
        message = pae(self.payload_type, self.payload)
        return any(key.verify(message, sig) for sig in self.signatures)

    def statement(self) -> dict[str, Any]:
        """The in-toto Statement this envelope carries."""
        if self.payload_type != INTOTO_PAYLOAD_TYPE:
            raise MalformedEntry(f"payload type {self.payload_type!r} is not an in-toto statement")
        try:
            document = json.loads(self.payload)
        except ValueError:
            raise MalformedEntry("the in-toto statement is not JSON") from None
        if not isinstance(document, dict) or document.get("_type") not in STATEMENT_TYPES:
            raise MalformedEntry("the payload is not an in-toto Statement")
        return document


def sign_envelope(key: SigningKey, payload_type: str, payload: bytes) -> Envelope:
    """Sign `payload` (its PAE) with `key`."""
    return Envelope(payload_type, payload, (key.sign(pae(payload_type, payload)),))


def in_toto_statement(
    name: str, digest: str, predicate_type: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1 about the artifact `name` with `digest` (`sha256:<hex>`)."""
    algorithm, _, encoded = digest.partition(":")
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {algorithm: encoded}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def to_payload(document: dict[str, Any]) -> bytes:
    """A statement as the exact payload bytes that get signed (compact JSON)."""
    return json.dumps(document, separators=(",", ":")).encode()


def subject_digests(document: dict[str, Any]) -> set[str]:
    """Every `algorithm:encoded` digest the statement's subjects name."""
    found: set[str] = set()
    for subject in document.get("subject") or []:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digests, dict):
            found.update(f"{alg}:{value}" for alg, value in digests.items())
    return found
