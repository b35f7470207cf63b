"""cosign's key format: upstream vectors, round trips, and every way a key can be unusable."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from socle.signing import (
    BadKey,
    WrongPassphrase,
    generate_keypair,
    load_private_key,
    load_public_key,
)
from socle.signing.keys import PRIVATE_KEY_TYPE
from socle.signing.sealed import seal, unseal
from tests.unit.signing.signing_helpers import PASSWORD, vector


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return generate_keypair(PASSWORD.encode())


def pem_body(pem: bytes) -> dict[str, Any]:
    lines = pem.decode().strip().splitlines()
    parsed: dict[str, Any] = json.loads(base64.b64decode("".join(lines[1:-1])))
    return parsed


def encrypted_pem(private_key: object, password: bytes) -> bytes:
    """A key in cosign's envelope whatever its algorithm (to test the curve check)."""
    der = private_key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = base64.encodebytes(seal(der, password)).decode()
    return f"-----BEGIN {PRIVATE_KEY_TYPE}-----\n{body}-----END {PRIVATE_KEY_TYPE}-----\n".encode()


def test_cosign_encrypted_key_vector_decrypts_to_a_p256_key() -> None:
    case = vector("encrypted-private-key.json")
    key = load_private_key(case["pem"].encode(), case["password"].encode())
    assert isinstance(key.private_key.curve, ec.SECP256R1)
    assert key.public_key.verify(b"data", key.sign(b"data"))


def test_scrypt_secretbox_vectors_decrypt() -> None:
    case = vector("scrypt-secretbox.json")
    for document in case["encrypted_documents"]:
        # go-securesystemslib's Marshal JSON-encodes []byte: a quoted base64 string.
        assert unseal(document.encode(), case["passphrase"].encode()) == b'"cmVhbGx5aW1wb3J0YW50"'


def test_generated_private_key_has_cosigns_layout(keypair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keypair
    assert private_pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in private_pem.splitlines())
    body = pem_body(private_pem)
    assert sorted(body) == ["cipher", "ciphertext", "kdf"]
    kdf, cipher = body["kdf"], body["cipher"]
    assert kdf["name"] == "scrypt" and kdf["params"] == {"N": 65536, "r": 8, "p": 1}
    assert len(base64.b64decode(kdf["salt"])) == 32
    assert cipher["name"] == "nacl/secretbox"
    assert len(base64.b64decode(cipher["nonce"])) == 24
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")


def test_round_trip_signs_what_the_public_key_verifies(keypair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keypair
    key = load_private_key(private_pem, PASSWORD.encode())
    public = load_public_key(public_pem)
    assert public.der == key.public_key.der
    assert public.verify(b"payload", key.sign(b"payload"))
    assert not public.verify(b"payload!", key.sign(b"payload"))
    assert public.hint == base64.b64encode(hashlib.sha256(public.der).digest()).decode()


def test_wrong_passphrase(keypair: tuple[bytes, bytes]) -> None:
    with pytest.raises(WrongPassphrase) as caught:
        load_private_key(keypair[0], b"not the passphrase")
    assert "wrong passphrase" in caught.value.diagnostics()
    assert "SOCLE_PASSWORD" in (caught.value.hint or "")
    assert caught.value.exit_code == 2


def test_altered_ciphertext_is_refused_as_such(keypair: tuple[bytes, bytes]) -> None:
    body = pem_body(keypair[0])
    ciphertext = bytearray(base64.b64decode(body["ciphertext"]))
    ciphertext[10] ^= 1
    body["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    pem = b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    pem += base64.encodebytes(json.dumps(body).encode())
    pem += b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    with pytest.raises(WrongPassphrase, match="altered"):
        load_private_key(pem, PASSWORD.encode())


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda pem: pem[: len(pem) // 2], "truncated: its PEM block has no END line"),
        (
            lambda pem: b"\n".join(pem.splitlines()[:3] + pem.splitlines()[-1:]),
            "damaged",
        ),
        (lambda pem: pem.replace(b"eyJ", b"e*J", 1), "damaged: its PEM body is not base64"),
    ],
    ids=["no-end-line", "lines-missing", "not-base64"],
)
def test_truncated_or_corrupt_key(keypair: tuple[bytes, bytes], cut: object, message: str) -> None:
    with pytest.raises(BadKey) as caught:
        load_private_key(cut(keypair[0]), PASSWORD.encode())  # type: ignore[operator]
    assert message in caught.value.message
    assert not isinstance(caught.value, WrongPassphrase)


@pytest.mark.parametrize(
    ("private_key", "named"),
    [
        (ec.generate_private_key(ec.SECP384R1()), "ECDSA key on curve secp384r1"),
        (ed25519.Ed25519PrivateKey.generate(), "Ed25519 key"),
    ],
    ids=["p384", "ed25519"],
)
def test_wrong_curve_is_named(private_key: object, named: str) -> None:
    with pytest.raises(BadKey) as caught:
        load_private_key(encrypted_pem(private_key, b"pw"), b"pw")
    assert named in caught.value.message
    assert "P-256" in caught.value.message
    public_pem = private_key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(BadKey, match=re.escape(named)):
        load_public_key(public_pem)


def test_not_a_key_at_all(keypair: tuple[bytes, bytes]) -> None:
    with pytest.raises(BadKey, match="not a private key: no PEM block"):
        load_private_key(b"registry: 127.0.0.1:5000\n", b"pw")
    with pytest.raises(BadKey, match="this is a public key, not the private key"):
        load_private_key(keypair[1], b"pw")
    with pytest.raises(BadKey, match="expected a public key, found a PEM 'ENCRYPTED SIGSTORE"):
        load_public_key(keypair[0])
    with pytest.raises(BadKey, match="unsupported private key PEM type 'PRIVATE KEY'"):
        load_private_key(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            b"pw",
        )


def test_expensive_scrypt_parameters_are_refused_before_deriving() -> None:
    document = json.loads(seal(b"secret", b"pw"))
    document["kdf"]["params"]["N"] = 1 << 30  # would need 128 GiB
    with pytest.raises(BadKey, match="unsupported scrypt parameters"):
        unseal(json.dumps(document).encode(), b"pw")


def test_the_passphrase_never_appears_in_errors_or_files(keypair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keypair
    assert PASSWORD.encode() not in private_pem + public_pem + base64.b64decode(
        b"".join(private_pem.splitlines()[1:-1])
    )
    secret = "hunter2-do-not-print"
    texts: list[str] = []
    attempts: list[Callable[[], object]] = [
        lambda: load_private_key(private_pem, secret.encode()),
        lambda: load_private_key(private_pem[:100], secret.encode()),
        lambda: load_private_key(b"junk", secret.encode()),
    ]
    for attempt in attempts:
        with pytest.raises(BadKey) as caught:
            attempt()
        texts += [caught.value.diagnostics(), repr(caught.value), str(caught.value.__context__)]
    assert all(secret not in text for text in texts)
    key = load_private_key(private_pem, PASSWORD.encode())
    assert PASSWORD not in repr(key)
