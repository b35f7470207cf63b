"""Signatures on the real registry, checked by socle and by the reference JS verifier.

The bundles are read back from the registry (through the referrers tag schema)
and handed to `@sigstore/verify` (tests/interop/sigstore/verify.mjs), trusting
only socle's public key; tampering must make both refuse.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from socle.cli import cli, main
from socle.commands import signing as commands
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing import (
    SIGN_PREDICATE,
    SLSA_PROVENANCE_V1,
    attest,
    b64,
    load_private_key,
    sign,
    verify,
)
from socle.signing.bundle import bundle_json
from socle.signing.dsse import INTOTO_PAYLOAD_TYPE, in_toto_statement, sign_envelope, to_payload
from socle.signing.referrers import attach_bundle, bundle_entries, fallback_tag
from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import node
from tests.unit.signing.signing_helpers import (
    PASSWORD,
    ROOT,
    bundle_of,
    flip_bundle_signature,
    new_key,
    push_tiny_image,
    replace_bundle,
)
from tests.unit.signing.test_sign_verify import statement_for

pytestmark = pytest.mark.integration

INTEROP = ROOT / "tests" / "interop" / "sigstore"
# How verify.mjs reports a refusal by @sigstore/verify itself (its own checks raise `Error`).
LIBRARY_REFUSAL = "verification failed: VerificationError"
Socle = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def client(registry: LocalRegistry) -> Iterator[RegistryClient]:
    with RegistryClient() as made:
        yield made


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    private_pem, public_pem, _ = new_key()
    (folder / "k.key").write_bytes(private_pem)
    (folder / "k.pub").write_bytes(public_pem)
    return folder / "k.key", folder / "k.pub"


@pytest.fixture
def socle(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Socle:
    """The CLI entry point with the signing commands registered, on an anonymous client."""
    for command in commands.COMMANDS:
        cli.add_command(command)
    monkeypatch.setattr(commands, "open_client", RegistryClient)
    monkeypatch.setenv("SOCLE_PASSWORD", PASSWORD)

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    return run


def js_verify(
    tmp_path: Path, bundle: bytes, public_key: Path, digest: str, predicate_type: str
) -> subprocess.CompletedProcess[str]:
    if not (INTEROP / "node_modules" / "@sigstore" / "verify").is_dir():
        pytest.fail("the JS verifier is not installed: run `make interop`")
    path = tmp_path / f"bundle-{len(list(tmp_path.glob('bundle-*')))}.json"
    path.write_bytes(bundle)
    command = [node(), str(INTEROP / "verify.mjs"), "--bundle", str(path), "--key", str(public_key)]
    command += ["--digest", digest, "--predicate-type", predicate_type]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def bundles_from_registry(client: RegistryClient, image: Reference) -> dict[str, bytes]:
    """Every bundle listed for the image, by predicate type, fetched back over HTTP."""
    assert image.digest
    found = {}
    for entry in bundle_entries(client, image, image.digest):
        predicate = entry["annotations"]["dev.sigstore.bundle.predicateType"]
        found[predicate] = bundle_of(client, image, entry["digest"])
    return found


def signed_image(
    socle: Socle,
    client: RegistryClient,
    registry: LocalRegistry,
    keys: tuple[Path, Path],
    name: str,
) -> Reference:
    image = push_tiny_image(
        client, Reference.parse(f"{registry.host}/socle/{name}:1"), name.encode()
    )
    code, _, err = socle("sign", "--key", str(keys[0]), str(image.with_tag("1")))
    assert code == 0, err
    key = load_private_key(keys[0].read_bytes(), PASSWORD.encode())
    attest(client, image, key, statement_for(image))
    return image


def test_the_registry_keeps_referrers_and_has_no_referrers_api(
    socle: Socle, client: RegistryClient, registry: LocalRegistry, keys: tuple[Path, Path]
) -> None:
    image = signed_image(socle, client, registry, keys, "layout")
    assert image.digest
    index = client.get_manifest(image.with_tag(fallback_tag(image.digest))).json()
    assert len(index["manifests"]) == 2
    for entry in index["manifests"]:
        assert entry["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        stored = client.get_manifest(image.with_digest(entry["digest"])).json()
        assert stored["subject"]["digest"] == image.digest  # kept as pushed
        assert stored["artifactType"] == entry["artifactType"]
    api = httpx.get(f"http://{registry.host}/v2/socle/layout/referrers/{image.digest}")
    assert api.status_code == 404  # hence the tag schema


def test_the_js_verifier_accepts_socles_bundles(
    socle: Socle,
    client: RegistryClient,
    registry: LocalRegistry,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    image = signed_image(socle, client, registry, keys, "interop")
    assert image.digest
    bundles = bundles_from_registry(RegistryClient(), image)
    assert set(bundles) == {SIGN_PREDICATE, SLSA_PROVENANCE_V1}
    for predicate_type, bundle in bundles.items():
        result = js_verify(tmp_path, bundle, keys[1], image.digest, predicate_type)
        assert result.returncode == 0, result.stderr
        assert f'"predicateType":"{predicate_type}"' in result.stdout
    code, out, err = socle("verify-attestation", "--key", str(keys[1]), str(image.with_tag("1")))
    assert code == 0, err
    assert '"predicateType": "https://slsa.dev/provenance/v1"' in out


def test_a_changed_signature_byte_is_refused_by_both(
    socle: Socle,
    client: RegistryClient,
    registry: LocalRegistry,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    image = signed_image(socle, client, registry, keys, "tampered-bundle")
    assert image.digest
    entries = bundle_entries(client, image, image.digest)
    assert len(entries) == 2  # the signature and the provenance: the loops below are not empty
    for entry in entries:
        bundle = flip_bundle_signature(bundle_of(client, image, entry["digest"]))
        replace_bundle(client, image, entry["digest"], bundle)
    bundles = bundles_from_registry(RegistryClient(), image)
    assert set(bundles) == {SIGN_PREDICATE, SLSA_PROVENANCE_V1}
    for predicate_type, bundle in bundles.items():
        result = js_verify(tmp_path, bundle, keys[1], image.digest, predicate_type)
        assert result.returncode == 1
        assert f"{LIBRARY_REFUSAL} SIGNATURE_ERROR" in result.stderr
    code, out, err = socle("verify", "--key", str(keys[1]), str(image.with_tag("1")))
    assert code == 1
    assert "sigstore-bundle" in err and "DSSE signature does not verify" in err
    assert "cosign-legacy" in out  # still found and valid, reported, yet not enough
    code, _, err = socle("verify-attestation", "--key", str(keys[1]), str(image))
    assert code == 1 and "DSSE signature does not verify" in err


def test_a_manifest_pushed_over_the_tag_is_refused_by_both(
    socle: Socle,
    client: RegistryClient,
    registry: LocalRegistry,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    image = signed_image(socle, client, registry, keys, "tampered-manifest")
    original = bundles_from_registry(client, image)
    evil = push_tiny_image(client, image.with_tag("1"), b"tampered-manifest, changed")
    assert evil.digest and evil.digest != image.digest
    code, _, err = socle("verify", "--key", str(keys[1]), str(image.with_tag("1")))
    assert code == 1 and "no signature for" in err
    # The old bundle checked against the digest the tag resolves to now.
    result = js_verify(tmp_path, original[SIGN_PREDICATE], keys[1], evil.digest, SIGN_PREDICATE)
    # The signature is genuine, so the refusal is verify.mjs's own subject check.
    assert result.returncode == 1
    assert "verification failed: Error: the statement's subjects do not include" in result.stderr


def test_the_legacy_layout_alone_verifies(
    socle: Socle, client: RegistryClient, registry: LocalRegistry, keys: tuple[Path, Path]
) -> None:
    image = push_tiny_image(client, Reference.parse(f"{registry.host}/socle/legacy:1"), b"legacy")
    assert image.digest
    key = load_private_key(keys[0].read_bytes(), PASSWORD.encode())
    sign(client, image, key)
    client.delete_manifest(image.with_tag(fallback_tag(image.digest)))  # as cosign 2 leaves it
    result = verify(RegistryClient(), image, key.public_key)
    assert result.valid and result.found == ("cosign-legacy",)
    code, out, err = socle("verify", "--key", str(keys[1]), str(image.with_tag("1")))
    assert code == 0, err
    assert f"cosign-legacy ({image.name}:sha256-{image.digest[7:]}.sig): valid" in out
    assert "sigstore-bundle" in out and "absent" in out


def retargeted(bundle: bytes, digest: str) -> bytes:
    """The bundle with its statement's subject changed to `digest`, the signature kept."""
    document = json.loads(bundle)
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    algorithm, _, encoded = digest.partition(":")
    statement["subject"][0]["digest"] = {algorithm: encoded}
    document["dsseEnvelope"]["payload"] = b64.encode(to_payload(statement))
    return json.dumps(document, separators=(",", ":")).encode()


def test_a_wrong_key_is_refused_by_the_js_verifier_itself(
    socle: Socle,
    client: RegistryClient,
    registry: LocalRegistry,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    image = signed_image(socle, client, registry, keys, "wrong-key")
    assert image.digest
    bundles = bundles_from_registry(client, image)
    assert set(bundles) == {SIGN_PREDICATE, SLSA_PROVENANCE_V1}
    _, other_public, other_key = new_key()
    (tmp_path / "other.pub").write_bytes(other_public)
    for predicate_type, bundle in bundles.items():
        result = js_verify(tmp_path, bundle, tmp_path / "other.pub", image.digest, predicate_type)
        assert result.returncode == 1
        assert f"{LIBRARY_REFUSAL} PUBLIC_KEY_ERROR: key not found" in result.stderr
    # Signed with another key yet naming the trusted one: the library checks the signature.
    trusted = load_private_key(keys[0].read_bytes(), PASSWORD.encode()).public_key
    statement = in_toto_statement(image.name, image.digest, SIGN_PREDICATE, {})
    envelope = sign_envelope(other_key, INTOTO_PAYLOAD_TYPE, to_payload(statement))
    forged = bundle_json(envelope, trusted.hint)
    result = js_verify(tmp_path, forged, keys[1], image.digest, SIGN_PREDICATE)
    assert result.returncode == 1
    assert f"{LIBRARY_REFUSAL} SIGNATURE_ERROR: signature verification failed" in result.stderr
    subject = client.get_manifest(image).descriptor
    attach_bundle(client, image, subject, forged, SIGN_PREDICATE)
    code, out, err = socle("verify", "--key", str(keys[1]), str(image.with_tag("1")))
    assert code == 0, err  # socle's own bundle still verifies; the forged one is not counted
    assert "sigstore-bundle" in out and "valid (1 of 2 verified)" in out


def test_a_tampered_payload_is_refused_by_both(
    socle: Socle,
    client: RegistryClient,
    registry: LocalRegistry,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    image = signed_image(socle, client, registry, keys, "tampered-payload")
    assert image.digest
    other = push_tiny_image(client, image.with_tag("other"), b"tampered-payload, another image")
    assert other.digest
    entries = bundle_entries(client, image, image.digest)
    assert len(entries) == 2
    for entry in entries:
        bundle = retargeted(bundle_of(client, image, entry["digest"]), other.digest)
        replace_bundle(client, image, entry["digest"], bundle)
    bundles = bundles_from_registry(RegistryClient(), image)
    assert set(bundles) == {SIGN_PREDICATE, SLSA_PROVENANCE_V1}
    for predicate_type, bundle in bundles.items():
        # The statement now names `other`, so only the signature check can refuse it.
        result = js_verify(tmp_path, bundle, keys[1], other.digest, predicate_type)
        assert result.returncode == 1
        assert f"{LIBRARY_REFUSAL} SIGNATURE_ERROR" in result.stderr
    code, _, err = socle("verify", "--key", str(keys[1]), str(image.with_tag("1")))
    assert code == 1 and "DSSE signature does not verify" in err
