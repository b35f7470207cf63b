"""What the gates need to sign: the Signer Protocol.

Key-based signing (:class:`socle.signing.attach.KeySigner`, cosign's key
format) implements it today; a keyless signer (Fulcio certificate, Rekor entry)
would be a second implementation, and nothing above this line would change.
"""

from __future__ import annotations

from typing import Any, Protocol

from socle.oci.reference import Reference


class Signer(Protocol):
    """Signs published images and attests statements about them, in the registry."""

    def sign(self, ref: Reference) -> list[str]:
        """Sign the image `ref` (by digest); returns where the signatures are."""
        ...

    def attest(self, ref: Reference, statement: dict[str, Any]) -> list[str]:
        """Sign the in-toto `statement` about `ref` and attach it; returns where."""
        ...
