"""SLSA provenance v1 for an image socle built (a pure function: values in, a statement out)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from socle.errors import InputError
from socle.oci.reference import Reference, check_digest
from socle.signing.dsse import SLSA_PROVENANCE_V1, in_toto_statement

# Identifies socle's way of building an image; versioned with the meaning of the parameters.
BUILD_TYPE = "urn:socle:build-type:image:v1"


def provenance_statement(
    subject: Reference,
    *,
    catalog: str,
    image: str,
    version: str,
    variant: str,
    parents: Mapping[str, str],
    fingerprint: Mapping[str, Any],
    builder_id: str,
    invocation_id: str,
    started_on: datetime,
    finished_on: datetime,
    build_type: str = BUILD_TYPE,
) -> dict[str, Any]:
    """An in-toto Statement v1 with a SLSA provenance v1 predicate about `subject`.

    `subject` is the pushed image by digest; `parents` maps each parent reference to
    the digest built on; `fingerprint` holds the inputs of the image's fingerprint.
    Times must be timezone-aware; they are written in UTC (RFC 3339).
    """
    if not subject.digest:
        raise InputError(f"provenance needs the image by digest, got {subject}")
    predicate = {
        "buildDefinition": {
            "buildType": build_type,
            "externalParameters": {
                "catalog": catalog,
                "image": image,
                "version": version,
                "variant": variant,
            },
            "internalParameters": {"fingerprint": dict(fingerprint)},
            "resolvedDependencies": [_dependency(ref, digest) for ref, digest in parents.items()],
        },
        "runDetails": {
            "builder": {"id": builder_id},
            "metadata": {
                "invocationId": invocation_id,
                "startedOn": _rfc3339(started_on),
                "finishedOn": _rfc3339(finished_on),
            },
        },
    }
    return in_toto_statement(subject.name, subject.digest, SLSA_PROVENANCE_V1, predicate)


def _dependency(ref: str, digest: str) -> dict[str, Any]:
    algorithm, _, encoded = check_digest(digest).partition(":")
    return {"uri": f"oci://{ref}", "digest": {algorithm: encoded}}


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InputError(f"provenance times must carry a time zone, got {moment.isoformat()}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
