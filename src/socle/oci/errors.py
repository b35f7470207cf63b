"""Content that is not what it claims to be."""

from __future__ import annotations

from socle.errors import InputError, SocleError


class ContentError(SocleError):
    """OCI content that cannot be used as it is."""


class DigestMismatch(ContentError):
    """Content whose sha256 is not the digest it was asked or announced under."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(
            f"digest mismatch for {what}: expected {expected}, got {actual}",
            hint="the registry or a proxy altered the content; retry, then report it",
        )


class InvalidManifest(ContentError):
    """A manifest or index that is not the JSON document its media type promises."""

    def __init__(self, digest: str, detail: str) -> None:
        super().__init__(f"invalid manifest {digest}: {detail}")
        self.digest = digest


class LayoutError(InputError):
    """An OCI layout folder that cannot be read (missing file, bad digest, unknown shape)."""
