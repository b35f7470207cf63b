"""Standard base64 as the signing formats use it: strict on input, text on output."""

from __future__ import annotations

import base64


def encode(data: bytes) -> str:
    """`data` as standard base64 text."""
    return base64.b64encode(data).decode()


def decode(text: object) -> bytes:
    """Strictly decode base64 text; TypeError for a non-string, binascii.Error for bad data."""
    if not isinstance(text, str):
        raise TypeError("expected a base64 string")
    return base64.b64decode(text, validate=True)
