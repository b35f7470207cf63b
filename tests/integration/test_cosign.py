"""The Go cosign CLI, which users verify with, judges socle's signatures, and socle judges cosign's.

The images are built, signed and attested by a real `socle build` (signature, SLSA
provenance and CycloneDX SBOM, in both layouts); each layout is then proven alone
by removing the other one from the registry. cosign runs offline: key-based, no
transparency log, and every connection beyond loopback goes to a closed port, so
a TUF or Rekor request would fail the test instead of reaching the internet.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from socle.gates import CYCLONEDX
from socle.oci.media import OCI_INDEX
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing import b64
from socle.signing.dsse import SIGN_PREDICATE, SLSA_PROVENANCE_V1, Envelope
from socle.signing.legacy import (
    ATTESTATION_SUFFIX,
    DSSE_MEDIA_TYPE,
    SIGNATURE_ANNOTATION,
    SIGNATURE_SUFFIX,
    SIMPLE_SIGNING_MEDIA_TYPE,
    Entry,
    append_entry,
    read_entries,
    signature_of,
    tag_for,
)
from socle.signing.referrers import bundle_entries, fallback_tag
from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import socle, tool
from tests.unit.signing.signing_helpers import (
    bundle_of,
    flip_bundle_signature,
    push_tiny_image,
    replace_bundle,
)

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
SIMPLE_SIGNING_TYPE = "cosign container image signature"
# The images of the catalog: one per scenario, since some scenarios damage theirs.
IMAGES = ("both", "legacy", "bundle", "tampered", "retagged")
# Closed port on loopback: Go sends every non-loopback request through it, and fails.
NO_INTERNET = "http://127.0.0.1:9"
LEGACY = ("--new-bundle-format=false",)  # read the `.sig` / `.att` tags
BUNDLE: tuple[str, ...] = ()  # cosign 3's default: bundle referrers, else the tags
LAYOUTS = {"legacy": LEGACY, "bundle": BUNDLE}
# cosign's reasons to refuse (signature, attestation) per layout, from its own messages.
BAD_DSSE = "accepted signatures do not match threshold, Found: 0, Expected 1"
BAD_SIGNATURES = {
    "legacy": ("invalid signature when validating ASN.1 encoded signature", BAD_DSSE),
    "bundle": (f"could not verify envelope: {BAD_DSSE}", f"could not verify envelope: {BAD_DSSE}"),
}
OTHER_DIGEST = {
    "legacy": ("invalid or missing digest in claim", "no matching subject digest found"),
    "bundle": (
        "provided artifact digest does not match any digest in statement",
        "provided artifact digest does not match any digest in statement",
    ),
}
UNSIGNED = ("--tlog-upload=false", "--use-signing-config=false", "--yes")  # no Rekor, no TUF
PROVENANCE = {
    "buildDefinition": {"buildType": "https://example.org/cosign-attest", "externalParameters": {}},
    "runDetails": {"builder": {"id": "cosign attest"}},
}


@dataclass(frozen=True)
class Build:
    """What the module's `socle build` published: the key pair and each image by digest."""

    key: Path
    pub: Path
    images: dict[str, Reference]


def cosign(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """The pinned cosign, with its own home and no way out of loopback."""
    env = {
        **os.environ,
        "HOME": str(home),
        "TUF_ROOT": str(home / "tuf"),
        "COSIGN_PASSWORD": PASSWORD,
        "HTTPS_PROXY": NO_INTERNET,
        "HTTP_PROXY": NO_INTERNET,
        "NO_PROXY": "",
    }
    command = [tool("cosign"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def cosign_verify(
    pub: Path, ref: Reference | str, layout: tuple[str, ...], *, home: Path
) -> subprocess.CompletedProcess[str]:
    """`cosign verify` as docs/signing.md tells users to run it."""
    return cosign(
        "verify", "--key", str(pub), "--insecure-ignore-tlog", *layout, str(ref), home=home
    )


def cosign_attestation(
    pub: Path, ref: Reference | str, kind: str, layout: tuple[str, ...], *, home: Path
) -> subprocess.CompletedProcess[str]:
    """`cosign verify-attestation --type KIND` as docs/signing.md tells users to run it."""
    args = ("verify-attestation", "--key", str(pub), "--insecure-ignore-tlog", "--type", kind)
    return cosign(*args, *layout, str(ref), home=home)


def claims(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The verified claims `cosign verify` prints on its last line (JSON)."""
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def statements(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The in-toto statements of the envelopes `cosign verify-attestation` prints, one a line."""
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in lines]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cosign-home")


@pytest.fixture(scope="module")
def client(registry: LocalRegistry) -> Iterator[RegistryClient]:
    with RegistryClient() as made:
        yield made


@pytest.fixture(scope="module")
def built(
    registry: LocalRegistry,
    busybox: str,
    client: RegistryClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Build:
    """A one-family catalog built and signed by `socle build --sign-key`."""
    root = tmp_path_factory.mktemp("cosign-catalog")
    upstream, digest = busybox.split("@")
    children = ""
    for name in IMAGES:
        (root / name).mkdir()
        (root / name / "Dockerfile").write_text(
            f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {name} > /{name}\n"
        )
        children += f"  {name}:\n    parents: [base]\n    versions: ['1']\n"
    catalog = root / "catalog.yaml"
    catalog.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: cosign
            images:
              base:
                upstream: {upstream}
                versions:
                  '1': {{digest: '{digest}'}}
            """
        )
        + children
    )
    env = {
        "SOCLE_REGISTRY": registry.host,
        "SOCLE_PASSWORD": PASSWORD,
        "XDG_CACHE_HOME": str(root / "cache"),
    }
    made = socle("keygen", "--out", str(root / "ops"), env=env)
    assert made.returncode == 0, made.stderr
    result = socle("build", "-c", str(catalog), "--sign-key", str(root / "ops.key"), env=env)
    assert result.returncode == 0, result.stderr
    images = {}
    for name in IMAGES:
        tagged = Reference.parse(f"{registry.host}/cosign/{name}:1-base1")
        images[name] = tagged.with_digest(client.get_manifest(tagged).digest)
    return Build(root / "ops.key", root / "ops.pub", images)


@pytest.fixture(scope="module")
def cosign_keys(tmp_path_factory: pytest.TempPathFactory, home: Path) -> tuple[Path, Path]:
    """A key pair from `cosign generate-key-pair` (passphrase from COSIGN_PASSWORD)."""
    prefix = tmp_path_factory.mktemp("cosign-keys") / "cosign"
    made = cosign("generate-key-pair", "--output-key-prefix", str(prefix), home=home)
    assert made.returncode == 0, made.stderr
    return prefix.with_suffix(".key"), prefix.with_suffix(".pub")


def remove_bundles(client: RegistryClient, image: Reference) -> None:
    """Leave only the legacy tags, as cosign 2 leaves an image."""
    assert image.digest
    client.delete_manifest(image.with_tag(fallback_tag(image.digest)))


def remove_legacy(client: RegistryClient, image: Reference) -> None:
    """Leave only the bundle referrers, as cosign 3 leaves an image."""
    assert image.digest
    for suffix in (SIGNATURE_SUFFIX, ATTESTATION_SUFFIX):
        client.delete_manifest(image.with_tag(tag_for(image.digest, suffix)))


def check_verified_by_cosign(build: Build, name: str, layout: tuple[str, ...], home: Path) -> None:
    """cosign accepts the signature and both attestations of `name` in that layout."""
    image = build.images[name]
    signature_type = SIMPLE_SIGNING_TYPE if layout == LEGACY else SIGN_PREDICATE
    found = claims(cosign_verify(build.pub, image.with_tag("1-base1"), layout, home=home))
    assert {c["critical"]["image"]["docker-manifest-digest"] for c in found} == {image.digest}
    assert signature_type in {c["critical"]["type"] for c in found}
    provenance = statements(
        cosign_attestation(build.pub, image, "slsaprovenance1", layout, home=home)
    )
    assert [s["predicateType"] for s in provenance] == [SLSA_PROVENANCE_V1]
    assert provenance[0]["predicate"]["buildDefinition"]["externalParameters"]["image"] == name
    sbom = statements(cosign_attestation(build.pub, image, "cyclonedx", layout, home=home))
    assert [s["predicateType"] for s in sbom] == [CYCLONEDX]
    assert sbom[0]["predicate"]["bomFormat"] == "CycloneDX"
    assert image.digest and image.digest.split(":")[1] in json.dumps(sbom[0]["subject"])


def refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    """cosign failed, and for `reason` (so a failure for another cause does not count)."""
    assert result.returncode != 0, result.stdout
    assert reason in result.stderr, result.stderr


def check_refused_by_cosign(
    pub: Path, ref: Reference, home: Path, reasons: dict[str, tuple[str, str]]
) -> None:
    """Each layout's signature and both attestations are refused, for the expected reasons."""
    for name, layout in LAYOUTS.items():
        signature, attestation = reasons[name]
        refused(cosign_verify(pub, ref, layout, home=home), signature)
        for kind in ("slsaprovenance1", "cyclonedx"):
            refused(cosign_attestation(pub, ref, kind, layout, home=home), attestation)


def flipped(entry: Entry) -> Entry:
    """The `.sig` / `.att` entry with one bit of its signature changed."""
    if entry.media_type == SIMPLE_SIGNING_MEDIA_TYPE:
        signature = b64.encode(flip(signature_of(entry)))
        return Entry(
            entry.media_type, entry.blob, {**entry.annotations, SIGNATURE_ANNOTATION: signature}
        )
    assert entry.media_type == DSSE_MEDIA_TYPE
    envelope = Envelope.from_json(entry.blob)
    changed = Envelope(envelope.payload_type, envelope.payload, (flip(envelope.signatures[0]),))
    return Entry(entry.media_type, changed.to_json(), entry.annotations)


def flip(signature: bytes) -> bytes:
    return signature[:-1] + bytes([signature[-1] ^ 1])


def tamper_legacy(client: RegistryClient, image: Reference) -> int:
    """What an attacker with push rights does to the tags: the same entries, signatures flipped."""
    assert image.digest
    count = 0
    for suffix in (SIGNATURE_SUFFIX, ATTESTATION_SUFFIX):
        entries = read_entries(client, image, image.digest, suffix)
        client.delete_manifest(image.with_tag(tag_for(image.digest, suffix)))
        for entry in entries:
            append_entry(client, image, image.digest, suffix, flipped(entry))
        count += len(entries)
    return count


def tamper_bundles(client: RegistryClient, image: Reference) -> int:
    """The same for the bundle referrers; returns how many were changed."""
    assert image.digest
    entries = bundle_entries(client, image, image.digest)
    for entry in entries:
        bundle = flip_bundle_signature(bundle_of(client, image, entry["digest"]))
        replace_bundle(client, image, entry["digest"], bundle)
    return len(entries)


def replay_signatures(client: RegistryClient, signed: Reference, other: Reference) -> None:
    """Copy every signature and attestation of `signed` onto the digest `other`."""
    assert signed.digest and other.digest
    for suffix in (SIGNATURE_SUFFIX, ATTESTATION_SUFFIX):
        for entry in read_entries(client, signed, signed.digest, suffix):
            append_entry(client, other, other.digest, suffix, entry)
    index = client.get_manifest(signed.with_tag(fallback_tag(signed.digest))).data
    client.put_manifest(other.with_tag(fallback_tag(other.digest)), index, OCI_INDEX)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_cosign_verifies_a_socle_build_with_both_layouts(
    built: Build, layout: tuple[str, ...], home: Path
) -> None:
    check_verified_by_cosign(built, "both", layout, home)


def test_cosign_is_kept_offline(built: Build, home: Path) -> None:
    """Without --insecure-ignore-tlog cosign wants the public trust root, and cannot reach it."""
    result = cosign("verify", "--key", str(built.pub), str(built.images["both"]), home=home)
    refused(result, f"proxyconnect tcp: dial tcp {NO_INTERNET.removeprefix('http://')}")


def test_cosign_verifies_the_legacy_layout_alone(
    built: Build, client: RegistryClient, home: Path
) -> None:
    image = built.images["legacy"]
    assert image.digest
    remove_bundles(client, image)
    assert fallback_tag(image.digest) not in client.list_tags(image)
    check_verified_by_cosign(built, "legacy", LEGACY, home)
    # cosign 3's default command falls back to the tags when there is no bundle.
    found = claims(cosign_verify(built.pub, image, BUNDLE, home=home))
    assert [c["critical"]["type"] for c in found] == [SIMPLE_SIGNING_TYPE]


def test_cosign_verifies_the_bundle_layout_alone(
    built: Build, client: RegistryClient, home: Path
) -> None:
    image = built.images["bundle"]
    assert image.digest
    remove_legacy(client, image)
    assert not {tag_for(image.digest, s) for s in (".sig", ".att")} & set(client.list_tags(image))
    check_verified_by_cosign(built, "bundle", BUNDLE, home)
    # Proof that it was the bundles: the legacy reader finds nothing.
    legacy = cosign_verify(built.pub, image, LEGACY, home=home)
    assert legacy.returncode != 0 and "no signatures found" in legacy.stderr


def test_cosign_refuses_a_changed_signature_byte_in_each_layout(
    built: Build, client: RegistryClient, home: Path
) -> None:
    image = built.images["tampered"]
    assert tamper_legacy(client, image) == 3  # signature, provenance, SBOM
    assert tamper_bundles(client, image) == 3
    check_refused_by_cosign(built.pub, image, home, BAD_SIGNATURES)
    refused = socle("verify", "--key", str(built.pub), str(image))
    assert refused.returncode == 1 and "does not verify with the key" in refused.stderr
    sbom = socle("verify-attestation", "--key", str(built.pub), "--type", CYCLONEDX, str(image))
    assert sbom.returncode == 1 and "DSSE signature does not verify" in sbom.stderr


def test_cosign_refuses_a_manifest_pushed_over_the_tag(
    built: Build, client: RegistryClient, home: Path
) -> None:
    image = built.images["retagged"]
    tag = image.with_tag("1-base1")
    evil = push_tiny_image(client, tag, b"not what socle built")
    assert evil.digest != image.digest
    for layout in LAYOUTS.values():
        refused(cosign_verify(built.pub, tag, layout, home=home), "no signatures found")
    # Signatures copied next to the new digest still name the old one.
    replay_signatures(client, image, evil)
    check_refused_by_cosign(built.pub, tag, home, OTHER_DIGEST)
    replayed = socle("verify", "--key", str(built.pub), str(tag))
    assert replayed.returncode == 1 and "not the manifest now at the reference" in replayed.stderr


def test_cosign_refuses_another_key(
    built: Build, home: Path, cosign_keys: tuple[Path, Path]
) -> None:
    check_refused_by_cosign(cosign_keys[1], built.images["both"], home, BAD_SIGNATURES)


SOCLE_LAYOUT = {"legacy": "cosign-legacy", "bundle": "sigstore-bundle"}  # names in `socle verify`


@pytest.mark.parametrize("maker", ["socle", "cosign"], ids=["socle-key", "cosign-key"])
@pytest.mark.parametrize("layout_name", LAYOUTS)
def test_socle_verifies_what_cosign_signed_and_attested(
    built: Build,
    cosign_keys: tuple[Path, Path],
    client: RegistryClient,
    registry: LocalRegistry,
    home: Path,
    tmp_path: Path,
    maker: str,
    layout_name: str,
) -> None:
    pairs = {"socle": (built.key, built.pub), "cosign": cosign_keys}
    key, pub = pairs[maker]
    other = pairs["cosign" if maker == "socle" else "socle"][1]
    layout = LAYOUTS[layout_name]
    ref = Reference.parse(f"{registry.host}/cosign/by-cosign-{maker}-key-{layout_name}:1")
    image = push_tiny_image(client, ref, str(ref).encode())
    signed = cosign("sign", "--key", str(key), *UNSIGNED, *layout, str(image), home=home)
    assert signed.returncode == 0, signed.stderr
    predicate = tmp_path / "provenance.json"
    predicate.write_text(json.dumps(PROVENANCE))
    args = ("attest", "--key", str(key), *UNSIGNED, "--type", "slsaprovenance1")
    attested = cosign(*args, "--predicate", str(predicate), *layout, str(image), home=home)
    assert attested.returncode == 0, attested.stderr

    verified = socle("verify", "--key", str(pub), str(ref))
    assert verified.returncode == 0, verified.stderr
    (absent,) = set(SOCLE_LAYOUT.values()) - {SOCLE_LAYOUT[layout_name]}
    assert re.search(rf"^  {SOCLE_LAYOUT[layout_name]} .*: valid \(1 of 1", verified.stdout, re.M)
    assert re.search(rf"^  {absent} .*: absent$", verified.stdout, re.M)
    statement = socle("verify-attestation", "--key", str(pub), str(ref))
    assert statement.returncode == 0, statement.stderr
    assert json.loads(statement.stdout)["predicate"] == PROVENANCE
    wrong = socle("verify", "--key", str(other), str(ref))
    assert wrong.returncode == 1 and "NOT verified" in wrong.stderr, wrong.stderr


def test_cosign_verifies_what_socle_signed_with_a_cosign_key(
    cosign_keys: tuple[Path, Path], client: RegistryClient, registry: LocalRegistry, home: Path
) -> None:
    ref = Reference.parse(f"{registry.host}/cosign/by-socle-cosign-key:1")
    image = push_tiny_image(client, ref, b"socle signs with a cosign key")
    signed = socle("sign", "--key", str(cosign_keys[0]), str(ref), env={"SOCLE_PASSWORD": PASSWORD})
    assert signed.returncode == 0, signed.stderr
    for layout in LAYOUTS.values():
        found = claims(cosign_verify(cosign_keys[1], ref, layout, home=home))
        assert [c["critical"]["image"]["docker-manifest-digest"] for c in found] == [image.digest]
