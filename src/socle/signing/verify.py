"""Verification of an image's signatures and attestations in both of cosign's layouts.

The manifest is fetched (and hashed) now, so a signature only counts when it
covers the digest the reference resolves to at this moment. Each layout is
`absent`, `valid` (at least one entry verifies with the key) or `invalid`
(entries are there, none verifies). An image is verified when some layout is
valid and none is invalid: socle writes both, so a layout that fails means
tampering or another key, and a trust gate should stop there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing.bundle import read_bundle
from socle.signing.checks import Outcome, check_envelope, check_simple_signing
from socle.signing.dsse import SIGN_PREDICATE, SLSA_PROVENANCE_V1, Envelope
from socle.signing.errors import MalformedEntry, VerificationFailed
from socle.signing.keys import PublicKey
from socle.signing.legacy import (
    ATTESTATION_SUFFIX,
    DSSE_MEDIA_TYPE,
    PREDICATE_ANNOTATION,
    SIGNATURE_SUFFIX,
    SIMPLE_SIGNING_MEDIA_TYPE,
    read_entries,
    tag_for,
)
from socle.signing.referrers import bundle_entries, fallback_tag, load_referrer, predicate_of

BUNDLE_LAYOUT = "sigstore-bundle"
LEGACY_LAYOUT = "cosign-legacy"


class Status(StrEnum):
    """What one layout holds for the image."""

    ABSENT = "absent"
    VALID = "valid"
    INVALID = "invalid"


@dataclass(frozen=True)
class LayoutResult:
    """The entries found in one layout and their verdicts."""

    layout: str
    location: str
    outcomes: tuple[Outcome, ...]

    @property
    def status(self) -> Status:
        """Absent without entries, valid when one verifies, invalid otherwise."""
        if not self.outcomes:
            return Status.ABSENT
        return Status.VALID if any(o.valid for o in self.outcomes) else Status.INVALID

    def describe(self) -> str:
        """One line: layout, where, status and why."""
        line = f"{self.layout} ({self.location}): {self.status.value}"
        if self.status is Status.VALID:
            return (
                f"{line} ({sum(o.valid for o in self.outcomes)} of {len(self.outcomes)} verified)"
            )
        if self.status is Status.INVALID:
            return f"{line}: " + "; ".join(dict.fromkeys(o.reason for o in self.outcomes))
        return line


@dataclass(frozen=True)
class Verification:
    """What was found for one image, per layout, and whether that makes it verified."""

    reference: str
    digest: str
    layouts: tuple[LayoutResult, ...]
    kind: str = "signature"

    @property
    def valid(self) -> bool:
        """At least one layout valid and none invalid."""
        statuses = {layout.status for layout in self.layouts}
        return Status.VALID in statuses and Status.INVALID not in statuses

    @property
    def found(self) -> tuple[str, ...]:
        """The layouts that hold entries for the image."""
        return tuple(r.layout for r in self.layouts if r.status is not Status.ABSENT)

    @property
    def reason(self) -> str:
        """Why the image is (not) verified, in one sentence."""
        if self.valid:
            return f"{self.reference} is verified ({', '.join(self.found)})"
        if not self.found:
            return f"no {self.kind} for {self.reference}: none found in either layout"
        bad = [r.describe() for r in self.layouts if r.status is Status.INVALID]
        return f"{self.reference} is NOT verified: " + " | ".join(bad)

    def statements(self) -> list[dict[str, Any]]:
        """The statements of the valid DSSE entries, bundle layout first."""
        return [o.statement for r in self.layouts for o in r.outcomes if o.valid and o.statement]


def verify(client: RegistryClient, ref: Reference, public_key: PublicKey) -> Verification:
    """Check the image signatures of `ref` (tag or digest) in both layouts."""
    return examine(client, ref, public_key, predicate_type=SIGN_PREDICATE)


def verify_attestation(
    client: RegistryClient,
    ref: Reference,
    public_key: PublicKey,
    *,
    predicate_type: str = SLSA_PROVENANCE_V1,
) -> dict[str, Any]:
    """The verified in-toto statement of `predicate_type` about `ref`'s current manifest.

    Raises :class:`VerificationFailed` when there is none, or a layout fails.
    """
    result = examine(client, ref, public_key, predicate_type=predicate_type)
    if not result.valid:
        raise VerificationFailed(result.reason)
    return result.statements()[0]


def examine(
    client: RegistryClient, ref: Reference, public_key: PublicKey, *, predicate_type: str
) -> Verification:
    """Verify the entries of `predicate_type` (the cosign sign predicate: signatures)."""
    digest = client.get_manifest(ref).digest
    signatures = predicate_type == SIGN_PREDICATE
    suffix = SIGNATURE_SUFFIX if signatures else ATTESTATION_SUFFIX
    bundles = tuple(_bundle_outcomes(client, ref, digest, public_key, predicate_type))
    legacy = tuple(_legacy_outcomes(client, ref, digest, public_key, predicate_type))
    return Verification(
        str(ref),
        digest,
        (
            LayoutResult(BUNDLE_LAYOUT, f"{ref.name}:{fallback_tag(digest)}", bundles),
            LayoutResult(LEGACY_LAYOUT, f"{ref.name}:{tag_for(digest, suffix)}", legacy),
        ),
        "signature" if signatures else f"attestation of type {predicate_type}",
    )


def _bundle_outcomes(
    client: RegistryClient, ref: Reference, digest: str, key: PublicKey, predicate_type: str
) -> Iterator[Outcome]:
    for entry in bundle_entries(client, ref, digest):
        if predicate_of(entry) not in (None, predicate_type):
            continue
        try:
            referrer = load_referrer(client, ref, entry)
            if referrer is None or referrer.predicate_type not in (None, predicate_type):
                continue
            if referrer.subject != digest:
                yield Outcome(False, f"the referrer {referrer.digest} is about {referrer.subject}")
                continue
            bundle = read_bundle(referrer.bundle)
        except MalformedEntry as exc:
            yield Outcome(False, exc.message)
            continue
        outcome = check_envelope(
            bundle.envelope, key, digest, predicate_type, key_hint=bundle.key_hint
        )
        if outcome.relevant:
            yield outcome


def _legacy_outcomes(
    client: RegistryClient, ref: Reference, digest: str, key: PublicKey, predicate_type: str
) -> Iterator[Outcome]:
    if predicate_type == SIGN_PREDICATE:
        for entry in read_entries(client, ref, digest, SIGNATURE_SUFFIX):
            if entry.media_type == SIMPLE_SIGNING_MEDIA_TYPE:
                yield check_simple_signing(entry, key, digest)
        return
    for entry in read_entries(client, ref, digest, ATTESTATION_SUFFIX):
        announced = entry.annotations.get(PREDICATE_ANNOTATION)
        if entry.media_type != DSSE_MEDIA_TYPE or announced not in (None, predicate_type):
            continue
        try:
            outcome = check_envelope(Envelope.from_json(entry.blob), key, digest, predicate_type)
        except MalformedEntry as exc:
            outcome = Outcome(False, exc.message)
        if outcome.relevant:
            yield outcome
