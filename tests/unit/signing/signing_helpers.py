"""Shared by the signing tests: the upstream vectors, a tiny image, key pairs."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from socle.oci.media import OCI_INDEX, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing import SigningKey, generate_keypair, load_private_key

ROOT = Path(__file__).resolve().parents[3]
# Upstream cosign vectors, kept in the repository so a fresh clone has them.
VECTORS = ROOT / "tests" / "data" / "cosign"
PASSWORD = "correct horse battery staple"


def vector(name: str) -> dict[str, Any]:
    """One of cosign's test vectors; a missing file fails the test (never a skip)."""
    path = VECTORS / name
    if not path.exists():
        pytest.fail(f"test vector {path} is missing from the repository")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_tiny_image(client: RegistryClient, ref: Reference, content: bytes = b"hello") -> Reference:
    """Push a one-layer OCI image under `ref`'s tag; returns the reference by digest."""
    layer = content
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
        }
    ).encode()
    for blob in (layer, config):
        client.ensure_blob(ref, digest_of(blob), blob)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    digest = client.put_manifest(ref.with_tag(ref.tag or "latest"), manifest, OCI_MANIFEST)
    return ref.with_digest(digest)


def new_key(password: str = PASSWORD) -> tuple[bytes, bytes, SigningKey]:
    """A fresh key pair (PEMs) and the decrypted signing key."""
    private_pem, public_pem = generate_keypair(password.encode())
    return private_pem, public_pem, load_private_key(private_pem, password.encode())


def flip_bundle_signature(bundle: bytes) -> bytes:
    """The bundle with one bit of its DSSE signature changed."""
    document = json.loads(bundle)
    signature = bytearray(base64.b64decode(document["dsseEnvelope"]["signatures"][0]["sig"]))
    signature[-1] ^= 1
    document["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()
    return json.dumps(document, separators=(",", ":")).encode()


def replace_bundle(
    client: RegistryClient, image: Reference, referrer_digest: str, bundle: bytes
) -> str:
    """What an attacker with push rights does: a new referrer in place of the old one."""
    assert image.digest
    manifest = json.loads(client.get_manifest(image.with_digest(referrer_digest)).data)
    client.ensure_blob(image, digest_of(bundle), bundle)
    manifest["layers"][0].update(digest=digest_of(bundle), size=len(bundle))
    data = json.dumps(manifest).encode()
    new_digest = client.put_manifest(image.with_digest(digest_of(data)), data, OCI_MANIFEST)
    tag = image.with_tag(image.digest.replace(":", "-"))
    index = json.loads(client.get_manifest(tag).data)
    for entry in index["manifests"]:
        if entry["digest"] == referrer_digest:
            entry.update(digest=new_digest, size=len(data))
    client.put_manifest(tag, json.dumps(index).encode(), OCI_INDEX)
    return new_digest


def bundle_of(client: RegistryClient, image: Reference, referrer_digest: str) -> bytes:
    """The bundle blob of a referrer, read back from the registry."""
    manifest = json.loads(client.get_manifest(image.with_digest(referrer_digest)).data)
    return client.get_blob(image, manifest["layers"][0]["digest"])
