"""The one JSON serialisation socle hashes: sorted keys, compact separators, ASCII.

Fingerprints, OCI layouts and re-annotated manifests all go through it, so the
same value always gives the same bytes and therefore the same digest.
"""

from __future__ import annotations

import hashlib
import json


def canonical_json(value: object) -> bytes:
    """`value` as canonical JSON bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    """The OCI digest (`sha256:<hex>`) of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
