"""Signatures and provenance compatible with cosign's key-based mode.

The build executor needs only this::

    key = load_private_key(pem, password)
    sign(client, ref_by_digest, key)                     # -> where it was written
    attest(client, ref_by_digest, key, provenance_statement(ref_by_digest, ...))
    verify(client, ref, public_key).valid                # -> Verification
    verify_attestation(client, ref, public_key)          # -> the statement

Both of cosign's layouts are written and read: the `sha256-<hex>.sig` / `.att`
tags (cosign 2, containers/image) and Sigstore bundle v0.3 referrers (cosign 3).
"""

from __future__ import annotations

from socle.signing.attach import attest, sign
from socle.signing.dsse import SIGN_PREDICATE, SLSA_PROVENANCE_V1
from socle.signing.errors import BadKey, SigningError, VerificationFailed, WrongPassphrase
from socle.signing.keys import (
    PublicKey,
    SigningKey,
    generate_keypair,
    load_private_key,
    load_public_key,
)
from socle.signing.provenance import provenance_statement
from socle.signing.verify import Verification, verify, verify_attestation

__all__ = [
    "SIGN_PREDICATE",
    "SLSA_PROVENANCE_V1",
    "BadKey",
    "PublicKey",
    "SigningError",
    "SigningKey",
    "Verification",
    "VerificationFailed",
    "WrongPassphrase",
    "attest",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "provenance_statement",
    "sign",
    "verify",
    "verify_attestation",
]
