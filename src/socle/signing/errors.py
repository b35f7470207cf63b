"""Errors of signing and verification; none of them ever carries a passphrase."""

from __future__ import annotations

from socle.errors import InputError, SocleError


class SigningError(SocleError):
    """Base of every error the signing package raises (exit code 1 unless bad input)."""


class BadKey(SigningError, InputError):
    """A key file that cannot be used: not a key, damaged, or of the wrong kind (exit 2)."""


class WrongPassphrase(BadKey):
    """The passphrase does not open the private key (or its ciphertext was altered)."""


class VerificationFailed(SigningError):
    """No valid signature or attestation for the image, or a tampered one (exit 1)."""


class MalformedEntry(SigningError):
    """A signature, bundle or envelope in the registry that cannot be read as one."""
