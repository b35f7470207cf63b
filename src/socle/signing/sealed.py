"""The passphrase envelope of cosign keys: scrypt then NaCl secretbox, as JSON.

This is go-securesystemslib's `encrypted` package, which cosign uses for its
private keys::

    {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": b64},
     "cipher": {"name": "nacl/secretbox", "nonce": b64},
     "ciphertext": b64}

Salt 32 bytes, nonce 24, key 32. Like upstream, only its three known scrypt
parameter sets are accepted on reading, so a crafted file cannot make us spend
gigabytes of memory.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
from typing import Any

import nacl.exceptions
import nacl.secret

from socle.signing import b64
from socle.signing.errors import BadKey, WrongPassphrase

KDF_NAME = "scrypt"
CIPHER_NAME = "nacl/secretbox"
SALT_SIZE = 32
# go-securesystemslib's Legacy, Standard (its default, and cosign's) and OWASP strengths.
ACCEPTED_PARAMS = ((32768, 8, 1), (65536, 8, 1), (131072, 8, 1))
DEFAULT_PARAMS = (65536, 8, 1)
# 128 * r * N bytes are needed (128 MiB for the OWASP set); Python's default cap is 32 MiB.
SCRYPT_MAXMEM = 256 * 1024 * 1024


def seal(plaintext: bytes, passphrase: bytes) -> bytes:
    """Encrypt `plaintext` under `passphrase`; returns the JSON document (bytes)."""
    n, r, p = DEFAULT_PARAMS
    salt = os.urandom(SALT_SIZE)
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, n, r, p))
    ciphertext = box.encrypt(plaintext, nonce).ciphertext
    document = {
        "kdf": {"name": KDF_NAME, "params": {"N": n, "r": r, "p": p}, "salt": b64.encode(salt)},
        "cipher": {"name": CIPHER_NAME, "nonce": b64.encode(nonce)},
        "ciphertext": b64.encode(ciphertext),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def unseal(document: bytes, passphrase: bytes) -> bytes:
    """Decrypt a sealed document; :class:`WrongPassphrase` if it does not open."""
    fields = _parse(document)
    n, r, p = fields["params"]
    box = nacl.secret.SecretBox(_derive(passphrase, fields["salt"], n, r, p))
    try:
        return box.decrypt(fields["ciphertext"], fields["nonce"])
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(
            "wrong passphrase for the private key (or its encrypted content was altered)",
            hint="give the passphrase chosen at `socle keygen` (env SOCLE_PASSWORD)",
        ) from None


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        passphrase,
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=SCRYPT_MAXMEM,
        dklen=nacl.secret.SecretBox.KEY_SIZE,
    )


def _parse(document: bytes) -> dict[str, Any]:
    """The fields of a sealed document, checked; :class:`BadKey` naming what is wrong."""
    try:
        doc = json.loads(document)
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = (int(kdf["params"]["N"]), int(kdf["params"]["r"]), int(kdf["params"]["p"]))
        fields = {
            "kdf": kdf["name"],
            "cipher": cipher["name"],
            "params": params,
            "salt": b64.decode(kdf["salt"]),
            "nonce": b64.decode(cipher["nonce"]),
            "ciphertext": b64.decode(doc["ciphertext"]),
        }
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError, binascii.Error) as exc:
        # OverflowError: a parameter of Infinity; RecursionError: JSON nested too deep
        raise _damaged(
            f"its encrypted content is not the expected JSON ({_describe(exc)})"
        ) from None
    _check(fields)
    return fields


def _check(fields: dict[str, Any]) -> None:
    if fields["kdf"] != KDF_NAME or fields["cipher"] != CIPHER_NAME:
        raise _damaged(f"unsupported encryption {fields['kdf']!r} + {fields['cipher']!r}")
    if fields["params"] not in ACCEPTED_PARAMS:
        raise _damaged(f"unsupported scrypt parameters N, r, p = {fields['params']}")
    if len(fields["nonce"]) != nacl.secret.SecretBox.NONCE_SIZE:
        raise _damaged(f"the nonce has {len(fields['nonce'])} bytes, not 24")
    if len(fields["ciphertext"]) <= nacl.secret.SecretBox.MACBYTES:
        raise _damaged("the ciphertext is truncated")


def _damaged(detail: str) -> BadKey:
    return BadKey(
        f"the private key is damaged: {detail}",
        hint="use the .key file exactly as `socle keygen` or `cosign generate-key-pair` wrote it",
    )


def _describe(exc: Exception) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else type(exc).__name__
