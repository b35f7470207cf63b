"""sign / attest / verify against the in-memory registry: layouts, idempotence, tampering."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from socle.errors import InputError
from socle.oci.media import OCI_INDEX, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing import (
    SigningError,
    VerificationFailed,
    attest,
    provenance_statement,
    sign,
    verify,
    verify_attestation,
)
from socle.signing.legacy import SIGNATURE_ANNOTATION
from tests.unit.registry.registry_fakes import FakeRegistry
from tests.unit.signing.conftest import Keys
from tests.unit.signing.signing_helpers import (
    bundle_of,
    flip_bundle_signature,
    push_tiny_image,
    replace_bundle,
)

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def stored(fake: FakeRegistry, tag_or_digest: str) -> dict[str, Any]:
    repo = fake.repo("team/app")
    digest = repo.tags.get(tag_or_digest, tag_or_digest)
    document: dict[str, Any] = json.loads(repo.manifests[digest][1])
    return document


def hex_of(image: Reference) -> str:
    assert image.digest
    return image.digest.split(":")[1]


def statement_for(image: Reference) -> dict[str, Any]:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    return provenance_statement(
        image,
        catalog="catalog.yaml",
        image="app",
        version="1",
        variant="debian12",
        parents={},
        fingerprint={"dockerfile": "sha256:" + "0" * 64},
        builder_id="socle-test",
        invocation_id="run-1",
        started_on=now,
        finished_on=now,
    )


def test_sign_writes_the_legacy_tag_and_a_bundle_referrer(
    client: RegistryClient, fake: FakeRegistry, image: Reference, keys: Keys
) -> None:
    locations = sign(client, image, keys[2])
    sig = stored(fake, f"sha256-{hex_of(image)}.sig")
    assert locations[0] == f"{image.name}:sha256-{hex_of(image)}.sig"
    assert sig["mediaType"] == OCI_MANIFEST
    [layer] = sig["layers"]
    assert layer["mediaType"] == SIMPLE_SIGNING
    payload = fake.repo("team/app").blobs[layer["digest"]]
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == image.digest
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    assert keys[2].public_key.verify(payload, signature)
    config = json.loads(fake.repo("team/app").blobs[sig["config"]["digest"]])
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"]]}

    referrer_digest = locations[1].split("@")[1]
    referrer = stored(fake, referrer_digest)
    assert referrer["artifactType"] == BUNDLE
    assert referrer["subject"]["digest"] == image.digest
    index = stored(fake, f"sha256-{hex_of(image)}")
    repo = fake.repo("team/app")
    assert repo.manifests[repo.tags[f"sha256-{hex_of(image)}"]][0] == OCI_INDEX
    assert [(e["digest"], e["artifactType"]) for e in index["manifests"]] == [
        (referrer_digest, BUNDLE)
    ]
    assert index["manifests"][0]["annotations"]["dev.sigstore.bundle.predicateType"] == (
        "https://sigstore.dev/cosign/sign/v1"
    )


def test_signing_again_adds_nothing(
    client: RegistryClient, fake: FakeRegistry, image: Reference, keys: Keys
) -> None:
    first = sign(client, image, keys[2])
    puts = len(fake.seen("PUT", "/manifests/"))
    assert sign(client, image, keys[2]) == first
    assert len(fake.seen("PUT", "/manifests/")) == puts
    assert len(stored(fake, f"sha256-{hex_of(image)}.sig")["layers"]) == 1


def test_other_signers_entries_are_kept(
    client: RegistryClient, fake: FakeRegistry, image: Reference, keys: Keys, other_keys: Keys
) -> None:
    sign(client, image, other_keys[2])
    sign(client, image, keys[2])
    assert len(stored(fake, f"sha256-{hex_of(image)}.sig")["layers"]) == 2
    assert len(stored(fake, f"sha256-{hex_of(image)}")["manifests"]) == 2
    for key in (keys, other_keys):
        assert verify(client, image, key[2].public_key).valid


def test_verify_names_the_layouts_found(
    client: RegistryClient, image: Reference, keys: Keys
) -> None:
    sign(client, image, keys[2])
    result = verify(client, image.with_tag("1"), keys[2].public_key)
    assert result.valid and result.digest == image.digest
    assert result.found == ("sigstore-bundle", "cosign-legacy")
    assert [r.status.value for r in result.layouts] == ["valid", "valid"]
    assert "is verified (sigstore-bundle, cosign-legacy)" in result.reason


def test_another_key_does_not_verify(
    client: RegistryClient, image: Reference, keys: Keys, other_keys: Keys
) -> None:
    sign(client, image, keys[2])
    result = verify(client, image, other_keys[2].public_key)
    assert not result.valid
    assert [r.status.value for r in result.layouts] == ["invalid", "invalid"]
    assert "names another key" in result.reason
    assert "does not verify with the key" in result.reason


def test_an_unsigned_image_has_no_signature(
    client: RegistryClient, image: Reference, keys: Keys
) -> None:
    result = verify(client, image, keys[2].public_key)
    assert not result.valid and result.found == ()
    assert result.reason.startswith("no signature for")


def test_a_manifest_pushed_over_the_tag_is_not_covered(
    client: RegistryClient, fake: FakeRegistry, image: Reference, keys: Keys
) -> None:
    sign(client, image, keys[2])
    tampered = push_tiny_image(client, image.with_tag("1"), b"evil")
    assert not verify(client, image.with_tag("1"), keys[2].public_key).valid
    # Copying the old signatures next to the new digest does not help either.
    repo = fake.repo("team/app")
    old, new = hex_of(image), hex_of(tampered)
    for suffix in (".sig", ""):
        client.tag(image.with_digest(repo.tags[f"sha256-{old}{suffix}"]), f"sha256-{new}{suffix}")
    result = verify(client, image.with_tag("1"), keys[2].public_key)
    assert not result.valid
    assert f"it signs {image.digest}, not the manifest now at the reference" in result.reason
    assert f"is about {image.digest}" in result.reason


def test_a_tampered_bundle_fails_even_with_a_valid_legacy_signature(
    client: RegistryClient, image: Reference, keys: Keys
) -> None:
    referrer = sign(client, image, keys[2])[1].split("@")[1]
    replace_bundle(
        client, image, referrer, flip_bundle_signature(bundle_of(client, image, referrer))
    )
    result = verify(client, image, keys[2].public_key)
    assert [r.status.value for r in result.layouts] == ["invalid", "valid"]
    assert not result.valid
    assert "sigstore-bundle" in result.reason and "DSSE signature does not verify" in result.reason


def test_attestations_round_trip_beside_signatures(
    client: RegistryClient, fake: FakeRegistry, image: Reference, keys: Keys
) -> None:
    statement = statement_for(image)
    locations = attest(client, image, keys[2], statement)
    assert locations[0] == f"{image.name}:sha256-{hex_of(image)}.att"
    att = stored(fake, f"sha256-{hex_of(image)}.att")["layers"][0]
    assert att["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert att["annotations"] == {
        SIGNATURE_ANNOTATION: "",
        "predicateType": "https://slsa.dev/provenance/v1",
    }
    assert verify_attestation(client, image.with_tag("1"), keys[2].public_key) == statement
    assert verify(client, image, keys[2].public_key).found == ()  # provenance is no signature
    sign(client, image, keys[2])
    assert verify(client, image, keys[2].public_key).valid
    assert verify_attestation(client, image, keys[2].public_key) == statement
    assert attest(client, image, keys[2], statement) == locations  # idempotent


def test_verify_attestation_without_one_fails(
    client: RegistryClient, image: Reference, keys: Keys
) -> None:
    sign(client, image, keys[2])
    with pytest.raises(
        VerificationFailed, match="no attestation of type https://slsa.dev/provenance/v1"
    ):
        verify_attestation(client, image, keys[2].public_key)


def test_attest_refuses_a_statement_about_another_image(
    client: RegistryClient, image: Reference, keys: Keys
) -> None:
    other = push_tiny_image(client, image.with_tag("2"), b"other")
    with pytest.raises(SigningError, match="is not about"):
        attest(client, image, keys[2], statement_for(other))
    with pytest.raises(InputError, match="no predicateType"):
        attest(client, image, keys[2], {"subject": []})


def test_signing_needs_a_digest(client: RegistryClient, image: Reference, keys: Keys) -> None:
    with pytest.raises(InputError, match="by digest"):
        sign(client, image.with_tag("1"), keys[2])


def test_other_referrers_in_the_index_are_kept(
    client: RegistryClient, fake: FakeRegistry, image: Reference, keys: Keys
) -> None:
    sbom = push_tiny_image(client, image.with_tag("sbom"), b"sbom")
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": sbom.digest,
        "size": 1,
        "artifactType": "application/spdx+json",
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    client.put_manifest(
        image.with_tag(f"sha256-{hex_of(image)}"), json.dumps(index).encode(), OCI_INDEX
    )
    sign(client, image, keys[2])
    manifests = stored(fake, f"sha256-{hex_of(image)}")["manifests"]
    assert [m["artifactType"] for m in manifests] == ["application/spdx+json", BUNDLE]
    assert verify(client, image, keys[2].public_key).valid


def test_a_fallback_tag_holding_an_image_is_not_overwritten(
    client: RegistryClient, image: Reference, keys: Keys
) -> None:
    push_tiny_image(client, image.with_tag(f"sha256-{hex_of(image)}"), b"squatter")
    with pytest.raises(SigningError, match="is not a referrers index"):
        sign(client, image, keys[2])


def test_referrers_listed_the_go_containerregistry_way_are_read(
    client: RegistryClient, image: Reference, keys: Keys
) -> None:
    # cosign 3 on a registry without the Referrers API: go-containerregistry lists each
    # referrer under its config media type (the empty one) and without annotations.
    sign(client, image, keys[2])
    statement = statement_for(image)
    attest(client, image, keys[2], statement)
    tag = image.with_tag(f"sha256-{hex_of(image)}")
    index = json.loads(client.get_manifest(tag).data)
    for entry in index["manifests"]:
        entry["artifactType"] = "application/vnd.oci.empty.v1+json"
        del entry["annotations"]
    unrelated = push_tiny_image(client, image.with_tag("unrelated"), b"not a bundle")
    index["manifests"].append(
        {"mediaType": OCI_MANIFEST, "digest": unrelated.digest, "size": 1, "artifactType": ""}
    )
    client.put_manifest(tag, json.dumps(index).encode(), OCI_INDEX)
    result = verify(client, image, keys[2].public_key)
    assert [r.status.value for r in result.layouts] == ["valid", "valid"]
    assert [len(r.outcomes) for r in result.layouts] == [1, 1]
    assert verify_attestation(client, image, keys[2].public_key) == statement
