"""Whether one stored signature or envelope is valid for an image digest and a key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from socle.signing.dsse import Envelope, subject_digests
from socle.signing.errors import MalformedEntry
from socle.signing.keys import PublicKey
from socle.signing.legacy import Entry, signature_of, signed_digest

VERIFIED = "verified"


@dataclass(frozen=True)
class Outcome:
    """The verdict on one entry, why, and the statement it carries (when it is valid DSSE)."""

    valid: bool
    reason: str
    statement: dict[str, Any] | None = None
    # False for a valid envelope of another predicate type: not a candidate, not a failure.
    relevant: bool = True


def check_simple_signing(entry: Entry, key: PublicKey, digest: str) -> Outcome:
    """A `.sig` layer: the annotation signs the payload, and the payload names `digest`."""
    try:
        if not key.verify(entry.blob, signature_of(entry)):
            return Outcome(False, "the signature does not verify with the key")
        covered = signed_digest(entry.blob)
    except MalformedEntry as exc:
        return Outcome(False, exc.message)
    if covered != digest:
        return Outcome(
            False, f"it signs {covered}, not the manifest now at the reference ({digest})"
        )
    return Outcome(True, VERIFIED)


def check_envelope(
    envelope: Envelope,
    key: PublicKey,
    digest: str,
    predicate_type: str,
    *,
    key_hint: str | None = None,
) -> Outcome:
    """A DSSE envelope: signed by `key`, an in-toto statement of `predicate_type` about `digest`."""
    if key_hint is not None and key_hint != key.hint:
        return Outcome(False, f"it names another key (hint {key_hint}, ours is {key.hint})")
    if not envelope.verified_by(key):
        return Outcome(False, "the DSSE signature does not verify with the key")
    try:
        statement = envelope.statement()
    except MalformedEntry as exc:
        return Outcome(False, exc.message)
    found = statement.get("predicateType")
    if found != predicate_type:
        return Outcome(
            False, f"its predicate type is {found!r}, not {predicate_type!r}", relevant=False
        )
    if digest not in subject_digests(statement):
        return Outcome(
            False, f"its statement is not about the manifest now at the reference ({digest})"
        )
    return Outcome(True, VERIFIED, statement)
