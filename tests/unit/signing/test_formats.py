"""The byte-level formats: DSSE PAE, cosign's payloads and envelopes, bundles, provenance."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from socle.errors import InputError
from socle.oci.content import Descriptor
from socle.oci.reference import Reference
from socle.signing import load_public_key, provenance_statement
from socle.signing.bundle import BUNDLE_MEDIA_TYPE, bundle_json, read_bundle
from socle.signing.checks import check_envelope
from socle.signing.dsse import (
    INTOTO_PAYLOAD_TYPE,
    SLSA_PROVENANCE_V1,
    Envelope,
    in_toto_statement,
    pae,
    sign_envelope,
    subject_digests,
    to_payload,
)
from socle.signing.errors import MalformedEntry
from socle.signing.legacy import signed_digest, simple_signing_payload, tag_for
from socle.signing.referrers import fallback_tag, referrer_manifest
from tests.unit.signing.conftest import Keys
from tests.unit.signing.signing_helpers import vector

DIGEST = "sha256:" + "ab" * 32


def test_pae_is_the_dsse_v1_encoding() -> None:
    # The example of the DSSE protocol specification.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 " + "é".encode()  # bytes, not characters


def test_cosign_signed_dsse_vector_verifies_with_its_key() -> None:
    case = vector("dsse-attestation.json")
    envelope = Envelope.from_json(base64.b64decode(case["dsse_envelope_base64"]))
    key = load_public_key(case["public_key_pem"].encode())
    assert envelope.verified_by(key)
    statement = envelope.statement()
    assert subject_digests(statement) == {"sha256:" + hashlib.sha256(b"some-payload").hexdigest()}
    tampered = Envelope(envelope.payload_type, envelope.payload + b" ", envelope.signatures)
    assert not tampered.verified_by(key)
    retyped = Envelope("application/json", envelope.payload, envelope.signatures)
    assert not retyped.verified_by(key)  # the type is signed too


def test_simple_signing_payload_is_cosigns_byte_for_byte() -> None:
    payload = simple_signing_payload("127.0.0.1:5000/my/java", DIGEST)
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/my/java"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    assert signed_digest(payload) == DIGEST


def test_payload_keys_are_matched_case_insensitively_like_go() -> None:
    payload = json.dumps(
        {
            "Critical": {
                "Image": {"Docker-Manifest-Digest": DIGEST},
                "TYPE": "cosign container image signature",
            }
        }
    ).encode()
    assert signed_digest(payload) == DIGEST
    with pytest.raises(MalformedEntry, match="of type 'other'"):
        signed_digest(b'{"critical":{"image":{"docker-manifest-digest":"x"},"type":"other"}}')
    with pytest.raises(MalformedEntry):
        signed_digest(b"[]")


def test_tags_of_the_two_layouts() -> None:
    assert tag_for(DIGEST, ".sig") == "sha256-" + "ab" * 32 + ".sig"
    assert fallback_tag(DIGEST) == "sha256-" + "ab" * 32
    assert fallback_tag("sha512:" + "c" * 128) == "sha512-" + "c" * 64


def test_bundle_is_cosign_3s_json_and_reads_back(keys: Keys, other_keys: Keys) -> None:
    key, other = keys[2], other_keys[2]
    statement = in_toto_statement("r/x", DIGEST, "https://sigstore.dev/cosign/sign/v1", {})
    envelope = sign_envelope(key, INTOTO_PAYLOAD_TYPE, to_payload(statement))
    data = bundle_json(envelope, key.public_key.hint)
    doc = json.loads(data)
    assert doc["mediaType"] == BUNDLE_MEDIA_TYPE
    assert doc["verificationMaterial"] == {"publicKey": {"hint": key.public_key.hint}}
    assert list(doc["dsseEnvelope"]) == ["payload", "payloadType", "signatures"]
    assert json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"])) == statement
    back = read_bundle(data)
    assert back.envelope == envelope and back.key_hint == key.public_key.hint
    outcome = check_envelope(back.envelope, key.public_key, DIGEST, statement["predicateType"])
    assert outcome.valid and outcome.statement == statement
    assert not check_envelope(
        back.envelope, key.public_key, "sha256:" + "cd" * 32, statement["predicateType"]
    ).valid
    assert (
        "another key"
        in check_envelope(
            back.envelope,
            other.public_key,
            DIGEST,
            statement["predicateType"],
            key_hint=back.key_hint,
        ).reason
    )


def test_bundles_without_dsse_are_refused() -> None:
    message = json.dumps({"mediaType": BUNDLE_MEDIA_TYPE, "messageSignature": {}}).encode()
    with pytest.raises(MalformedEntry, match="no DSSE envelope"):
        read_bundle(message)
    with pytest.raises(MalformedEntry, match="not a Sigstore bundle"):
        read_bundle(b'{"mediaType": "application/json"}')


def test_referrer_manifest_follows_cosigns_bundle_spec() -> None:
    subject = Descriptor("application/vnd.oci.image.manifest.v1+json", DIGEST, 123)
    bundle = b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'
    doc = json.loads(referrer_manifest(subject, bundle, SLSA_PROVENANCE_V1, "2024-03-08T18:18:20Z"))
    bundle_digest = "sha256:" + hashlib.sha256(bundle).hexdigest()
    assert doc == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "size": 2,
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        },
        "layers": [
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "size": len(bundle),
                "digest": bundle_digest,
                "annotations": {
                    "org.opencontainers.image.title": bundle_digest.replace(":", "-")
                    + ".sigstore.json"
                },
            }
        ],
        "subject": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 123,
            "digest": DIGEST,
        },
        "annotations": {
            "org.opencontainers.image.created": "2024-03-08T18:18:20Z",
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": SLSA_PROVENANCE_V1,
        },
    }


def test_provenance_statement_is_slsa_v1() -> None:
    started = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    statement = provenance_statement(
        Reference.parse(f"127.0.0.1:5000/my/java@{DIGEST}"),
        catalog="examples/enterprise/catalog.yaml",
        image="java",
        version="17",
        variant="debian12",
        parents={"127.0.0.1:5000/my/debian:12": "sha256:" + "cd" * 32},
        fingerprint={"dockerfile": "sha256:" + "ef" * 32, "parent": "sha256:" + "cd" * 32},
        builder_id="https://ci.example.test/socle",
        invocation_id="run-42",
        started_on=started,
        finished_on=started + timedelta(minutes=3),
    )
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [
        {"name": "127.0.0.1:5000/my/java", "digest": {"sha256": "ab" * 32}}
    ]
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    definition, run = (
        statement["predicate"]["buildDefinition"],
        statement["predicate"]["runDetails"],
    )
    assert definition["externalParameters"] == {
        "catalog": "examples/enterprise/catalog.yaml",
        "image": "java",
        "version": "17",
        "variant": "debian12",
    }
    assert definition["resolvedDependencies"] == [
        {"uri": "oci://127.0.0.1:5000/my/debian:12", "digest": {"sha256": "cd" * 32}}
    ]
    assert definition["internalParameters"]["fingerprint"]["parent"] == "sha256:" + "cd" * 32
    assert run["builder"] == {"id": "https://ci.example.test/socle"}
    assert run["metadata"] == {
        "invocationId": "run-42",
        "startedOn": "2024-05-01T10:00:00Z",
        "finishedOn": "2024-05-01T10:03:00Z",
    }


def test_provenance_refuses_a_tag_or_a_naive_time() -> None:
    common: dict[str, Any] = {
        "catalog": "c",
        "image": "i",
        "version": "1",
        "variant": "v",
        "parents": {},
        "fingerprint": {},
        "builder_id": "b",
        "invocation_id": "r",
        "finished_on": datetime.now(UTC),
    }
    with pytest.raises(InputError, match="by digest"):
        provenance_statement(
            Reference.parse("127.0.0.1:5000/x:1"), started_on=datetime.now(UTC), **common
        )
    with pytest.raises(InputError, match="time zone"):
        provenance_statement(
            Reference.parse(f"127.0.0.1:5000/x@{DIGEST}"), started_on=datetime.now(), **common
        )
