"""Sigstore bundles attached as OCI 1.1 referrers, listed through the referrers tag schema.

Layout of cosign 3 (`pkg/oci/remote/write.go` `WriteReferrer`, `specs/BUNDLE_SPEC.md`):
an image manifest with `artifactType` = the bundle media type, the empty config
`{}`, one layer (the bundle JSON) titled `sha256-<hex>.sigstore.json`, `subject` =
the signed manifest, and annotations naming the content and predicate type.

distribution 2.8 stores such manifests but has no Referrers API, so, as the OCI
distribution spec says, the client keeps the list itself: an OCI index tagged
`sha256-<hex>` (the subject digest) whose entries carry the referrer's
`artifactType` and annotations. Other entries are kept. The update is a
read-modify-write without conditional requests (as in go-containerregistry):
two signers racing on one image can lose an entry, which a re-run restores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from socle.canonical import sha256_digest
from socle.oci.content import Descriptor
from socle.oci.media import CREATED, EMPTY, EMPTY_JSON, OCI_INDEX, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.registry.errors import ManifestNotFound
from socle.signing.bundle import BUNDLE_MEDIA_TYPE, BUNDLE_MEDIA_TYPE_PREFIX
from socle.signing.errors import MalformedEntry, SigningError

PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
TITLE_ANNOTATION = "org.opencontainers.image.title"
MAX_TAG_DIGEST = 64  # the tag schema truncates the encoded digest to 64 characters


@dataclass(frozen=True)
class Referrer:
    """A bundle referrer: its manifest digest, its subject and the bundle bytes."""

    digest: str
    subject: str
    predicate_type: str | None
    bundle: bytes


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag for `digest`: `<alg>-<encoded, 64 chars at most>`."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded[:MAX_TAG_DIGEST]}"


def referrer_manifest(
    subject: Descriptor, bundle: bytes, predicate_type: str, created: str
) -> bytes:
    """The referrer manifest cosign 3 writes for a DSSE bundle about `subject`."""
    digest = sha256_digest(bundle)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": {
            "mediaType": EMPTY,
            "size": len(EMPTY_JSON),
            "digest": sha256_digest(EMPTY_JSON),
        },
        "layers": [
            {
                "mediaType": BUNDLE_MEDIA_TYPE,
                "size": len(bundle),
                "digest": digest,
                "annotations": {TITLE_ANNOTATION: f"{digest.replace(':', '-')}.sigstore.json"},
            }
        ],
        "subject": {
            "mediaType": subject.media_type,
            "size": subject.size,
            "digest": subject.digest,
        },
        "annotations": {
            CREATED: created,
            CONTENT_ANNOTATION: "dsse-envelope",
            PREDICATE_ANNOTATION: predicate_type,
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def attach_bundle(
    client: RegistryClient, ref: Reference, subject: Descriptor, bundle: bytes, predicate_type: str
) -> str:
    """Push `bundle` as a referrer of `subject` and list it in the fallback index.

    Returns `registry/repo@<referrer digest>`.
    """
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = referrer_manifest(subject, bundle, predicate_type, created)
    client.ensure_blob(ref, sha256_digest(EMPTY_JSON), EMPTY_JSON)
    client.ensure_blob(ref, sha256_digest(bundle), bundle)
    digest = client.put_manifest(ref.with_digest(sha256_digest(manifest)), manifest, OCI_MANIFEST)
    entry = {
        "mediaType": OCI_MANIFEST,
        "size": len(manifest),
        "digest": digest,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "annotations": json.loads(manifest)["annotations"],
    }
    _add_to_index(client, ref, subject.digest, entry)
    return f"{ref.name}@{digest}"


def bundle_entries(client: RegistryClient, ref: Reference, digest: str) -> list[dict[str, Any]]:
    """The fallback index entries of `digest` that may be Sigstore bundles.

    go-containerregistry (so cosign 3 on a registry without the Referrers API) lists
    a referrer under its config media type, the empty one: those are candidates too.
    """
    index = _index(client, ref, digest)
    return [
        entry
        for entry in index.get("manifests", [])
        if isinstance(entry, dict) and _maybe_bundle(entry.get("artifactType"))
    ]


def _maybe_bundle(artifact_type: object) -> bool:
    kind = str(artifact_type or BUNDLE_MEDIA_TYPE)
    return kind.startswith(BUNDLE_MEDIA_TYPE_PREFIX) or kind == EMPTY


def predicate_of(entry: dict[str, Any]) -> str | None:
    """The predicate type an index entry announces, if it does."""
    annotations = entry.get("annotations")
    return (
        str(annotations[PREDICATE_ANNOTATION])
        if isinstance(annotations, dict) and PREDICATE_ANNOTATION in annotations
        else None
    )


def load_referrer(client: RegistryClient, ref: Reference, entry: dict[str, Any]) -> Referrer | None:
    """Fetch the referrer of an index entry and its bundle; None if it is no bundle referrer."""
    try:
        digest = str(entry["digest"])
        doc = client.get_manifest(ref.with_digest(digest)).json()
        layers = [
            item
            for item in doc.get("layers") or []
            if str(item.get("mediaType", "")).startswith(BUNDLE_MEDIA_TYPE_PREFIX)
        ]
        if not layers:
            if str(doc.get("artifactType", "")).startswith(BUNDLE_MEDIA_TYPE_PREFIX):
                raise MalformedEntry(f"the bundle referrer {digest} has no bundle layer")
            return None
        subject = str((doc.get("subject") or {}).get("digest", ""))
        bundle = client.get_blob(ref, str(layers[0]["digest"]))
    except (KeyError, AttributeError, TypeError):
        raise MalformedEntry(
            f"the referrer {entry.get('digest')} is not a valid manifest"
        ) from None
    except ManifestNotFound:
        raise MalformedEntry(f"the referrer {entry.get('digest')} is listed but missing") from None
    annotations = doc.get("annotations") or {}
    return Referrer(digest, subject, annotations.get(PREDICATE_ANNOTATION), bundle)


def _index(client: RegistryClient, ref: Reference, digest: str) -> dict[str, Any]:
    tag = fallback_tag(digest)
    try:
        manifest = client.get_manifest(ref.with_tag(tag))
    except ManifestNotFound:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    document = manifest.json()
    if manifest.media_type != OCI_INDEX or not isinstance(document.get("manifests"), list):
        raise SigningError(
            f"the tag {ref.name}:{tag} is not a referrers index ({manifest.media_type})",
            hint="that tag is reserved by the OCI referrers tag schema; move the image away",
        )
    return document


def _add_to_index(
    client: RegistryClient, ref: Reference, digest: str, entry: dict[str, Any]
) -> None:
    index = _index(client, ref, digest)
    if any(item.get("digest") == entry["digest"] for item in index["manifests"]):
        return
    index["manifests"].append(entry)
    data = json.dumps(index, separators=(",", ":")).encode()
    client.put_manifest(ref.with_tag(fallback_tag(digest)), data, OCI_INDEX)
