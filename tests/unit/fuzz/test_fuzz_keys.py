"""Fuzz key files: cosign's encrypted private keys and PEM public keys.

The property: a key file gives a key, or BadKey saying what is wrong with it.
The scrypt step is replaced by a fast hash here: it is hashlib's, not a parser,
and at N = 65536 it would cost a fifth of a second per example; the sealed
JSON, the secretbox and the PKCS#8 / SubjectPublicKeyInfo parsing stay real.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import example, given
from hypothesis import strategies as st

from socle.signing import keys, sealed
from tests.unit.fuzz.mutations import FUZZ, mutated_bytes, mutated_document, refuses_cleanly

PASSWORD = b"fuzz"


def fast_derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.sha256(passphrase + salt + f"{n},{r},{p}".encode()).digest()


@pytest.fixture(scope="module", autouse=True)
def quick_kdf() -> Iterator[None]:
    with mock.patch.object(sealed, "_derive", fast_derive):
        yield


with mock.patch.object(sealed, "_derive", fast_derive):
    PRIVATE_PEM, PUBLIC_PEM = keys.generate_keypair(PASSWORD)
SEALED: dict[str, Any] = json.loads(keys._pem_block(PRIVATE_PEM, "key")[1])
OTHER_PUBLIC = (
    ed25519.Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)
P384_PUBLIC = (
    ec.generate_private_key(ec.SECP384R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


def pem(kind: str, body: bytes) -> bytes:
    return keys._pem(kind, body)


def test_the_seeds_are_keys() -> None:
    assert keys.load_private_key(PRIVATE_PEM, PASSWORD).public_key.pem == PUBLIC_PEM
    assert keys.load_public_key(PUBLIC_PEM).pem == PUBLIC_PEM


@FUZZ
@given(st.one_of(mutated_bytes(PRIVATE_PEM), st.binary(max_size=200)), st.sampled_from([PASSWORD, b""]))
@example(pem(keys.PRIVATE_KEY_TYPE, b"[" * 100_000), PASSWORD)  # RecursionError: nested too deep
def test_private_key_file(data: bytes, password: bytes) -> None:
    refuses_cleanly(lambda: keys.load_private_key(data, password))


@FUZZ
@given(mutated_document(SEALED))
@example({**SEALED, "kdf": {**SEALED["kdf"], "params": {"N": float("inf"), "r": 8, "p": 1}}})
# ^ OverflowError: int(inf) for an scrypt parameter
def test_private_key_envelope(envelope: Any) -> None:
    data = pem(keys.PRIVATE_KEY_TYPE, json.dumps(envelope).encode())
    refuses_cleanly(lambda: keys.load_private_key(data, PASSWORD))


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=120),
        mutated_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
    )
)
def test_private_key_content(der: bytes) -> None:
    """What the envelope holds once opened: a PKCS#8 P-256 key, or damage."""
    data = pem(keys.PRIVATE_KEY_TYPE, sealed.seal(der, PASSWORD))
    refuses_cleanly(lambda: keys.load_private_key(data, PASSWORD))


@FUZZ
@given(
    st.one_of(
        mutated_bytes(PUBLIC_PEM),
        mutated_bytes(OTHER_PUBLIC),
        mutated_bytes(P384_PUBLIC),
        st.binary(max_size=200),
        st.binary(max_size=120).map(lambda body: pem(keys.PUBLIC_KEY_TYPE, body)),
        mutated_bytes(base64.b64decode(b"".join(PUBLIC_PEM.splitlines()[1:-1]))).map(
            lambda der: pem(keys.PUBLIC_KEY_TYPE, der)
        ),
    )
)
def test_public_key_file(data: bytes) -> None:
    refuses_cleanly(lambda: keys.load_public_key(data))
