"""Signing and attesting an image, in both of cosign's layouts at once.

Each call writes the legacy tag entry (`.sig` / `.att`, what cosign 2 and
containers/image read) and a Sigstore bundle referrer (what cosign 3 writes).
Both are idempotent: an entry already signed by the same key over the same
payload is kept rather than added again, so a resumed build can re-run them.
"""

from __future__ import annotations

from typing import Any

from socle.errors import InputError
from socle.oci.content import Descriptor
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing import b64
from socle.signing.bundle import bundle_json, read_bundle
from socle.signing.checks import check_envelope, check_simple_signing
from socle.signing.dsse import (
    INTOTO_PAYLOAD_TYPE,
    SIGN_PREDICATE,
    Envelope,
    in_toto_statement,
    sign_envelope,
    subject_digests,
    to_payload,
)
from socle.signing.errors import MalformedEntry, SigningError
from socle.signing.keys import SigningKey
from socle.signing.legacy import (
    ATTESTATION_SUFFIX,
    DSSE_MEDIA_TYPE,
    PREDICATE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIGNATURE_SUFFIX,
    SIMPLE_SIGNING_MEDIA_TYPE,
    Entry,
    append_entry,
    simple_signing_payload,
)
from socle.signing.referrers import attach_bundle, bundle_entries, load_referrer, predicate_of


def sign(client: RegistryClient, ref: Reference, key: SigningKey) -> list[str]:
    """Sign the image `ref` (by digest); returns where the signatures are.

    Writes the simple-signing entry at `sha256-<hex>.sig` and a bundle (in-toto
    statement of predicate type `https://sigstore.dev/cosign/sign/v1`) as a referrer.
    """
    subject = _subject(client, ref)
    payload = simple_signing_payload(ref.name, subject.digest)
    signature = b64.encode(key.sign(payload))
    entry = Entry(SIMPLE_SIGNING_MEDIA_TYPE, payload, {SIGNATURE_ANNOTATION: signature})
    public = key.public_key

    def duplicate(existing: Entry) -> bool:
        return (
            existing.blob == payload
            and check_simple_signing(existing, public, subject.digest).valid
        )

    legacy = append_entry(client, ref, subject.digest, SIGNATURE_SUFFIX, entry, duplicate=duplicate)
    statement = in_toto_statement(ref.name, subject.digest, SIGN_PREDICATE, {})
    return [legacy, _attach_once(client, ref, subject, key, statement)]


def attest(
    client: RegistryClient, ref: Reference, key: SigningKey, statement: dict[str, Any]
) -> list[str]:
    """Sign the in-toto `statement` about `ref` (by digest) and attach it; returns where.

    Writes a DSSE envelope at `sha256-<hex>.att` and a bundle referrer.
    """
    subject = _subject(client, ref)
    predicate_type = statement.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise InputError("the statement to attest has no predicateType")
    if subject.digest not in subject_digests(statement):
        raise SigningError(
            f"the statement is not about {ref} (its subjects: {sorted(subject_digests(statement))})"
        )
    payload = to_payload(statement)
    envelope = sign_envelope(key, INTOTO_PAYLOAD_TYPE, payload)
    annotations = {SIGNATURE_ANNOTATION: "", PREDICATE_ANNOTATION: predicate_type}
    entry = Entry(DSSE_MEDIA_TYPE, envelope.to_json(), annotations)
    public = key.public_key

    def duplicate(existing: Entry) -> bool:
        try:
            found = Envelope.from_json(existing.blob)
        except MalformedEntry:
            return False
        return found.payload == payload and found.verified_by(public)

    legacy = append_entry(
        client, ref, subject.digest, ATTESTATION_SUFFIX, entry, duplicate=duplicate
    )
    return [legacy, _attach_once(client, ref, subject, key, statement)]


def _subject(client: RegistryClient, ref: Reference) -> Descriptor:
    if not ref.digest:
        raise InputError(
            f"signing needs a reference by digest, got {ref}",
            hint="resolve the tag first: sign what was pushed, not what a tag points at later",
        )
    return client.get_manifest(ref).descriptor


def _attach_once(
    client: RegistryClient,
    ref: Reference,
    subject: Descriptor,
    key: SigningKey,
    statement: dict[str, Any],
) -> str:
    """Attach a bundle for `statement` unless a valid one with the same payload exists."""
    payload = to_payload(statement)
    predicate_type = str(statement["predicateType"])
    for entry in bundle_entries(client, ref, subject.digest):
        if predicate_of(entry) != predicate_type:
            continue
        try:
            referrer = load_referrer(client, ref, entry)
            if referrer is None:
                continue
            envelope = read_bundle(referrer.bundle).envelope
        except MalformedEntry:
            continue
        outcome = check_envelope(envelope, key.public_key, subject.digest, predicate_type)
        if envelope.payload == payload and outcome.valid and referrer.subject == subject.digest:
            return f"{ref.name}@{referrer.digest}"
    envelope = sign_envelope(key, INTOTO_PAYLOAD_TYPE, payload)
    bundle = bundle_json(envelope, key.public_key.hint)
    return attach_bundle(client, ref, subject, bundle, predicate_type)


class KeySigner:
    """The :class:`~socle.signing.interface.Signer` for a cosign-format key pair."""

    def __init__(self, client: RegistryClient, key: SigningKey) -> None:
        self.client = client
        self.key = key

    def sign(self, ref: Reference) -> list[str]:
        """See :func:`sign`."""
        return sign(self.client, ref, self.key)

    def attest(self, ref: Reference, statement: dict[str, Any]) -> list[str]:
        """See :func:`attest`."""
        return attest(self.client, ref, self.key, statement)
