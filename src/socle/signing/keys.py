"""Key pairs in cosign's format: an encrypted PKCS#8 P-256 private key and a PEM public key.

The private key PEM (type `ENCRYPTED SIGSTORE PRIVATE KEY`, or cosign's older
`ENCRYPTED COSIGN PRIVATE KEY`) holds the JSON of :mod:`socle.signing.sealed`
over the PKCS#8 DER of the key, as cosign's `pkg/cosign/keys.go` writes it.
Signatures are ECDSA P-256 over SHA-256, DER encoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import textwrap
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from socle.signing import b64, sealed
from socle.signing.errors import BadKey

PRIVATE_KEY_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
ACCEPTED_PRIVATE_TYPES = (PRIVATE_KEY_TYPE, "ENCRYPTED COSIGN PRIVATE KEY")
PUBLIC_KEY_TYPE = "PUBLIC KEY"
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_ALGORITHM = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class PublicKey:
    """A P-256 public key that checks signatures."""

    key: ec.EllipticCurvePublicKey

    @property
    def der(self) -> bytes:
        """The SubjectPublicKeyInfo DER."""
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def pem(self) -> bytes:
        """The `PUBLIC KEY` PEM, as cosign writes `cosign.pub`."""
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def hint(self) -> str:
        """Base64 of the SHA-256 of the DER: the key hint cosign puts in Sigstore bundles."""
        return b64.encode(hashlib.sha256(self.der).digest())

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True when `signature` (DER) is this key's ECDSA-SHA256 signature of `data`."""
        try:
            self.key.verify(signature, data, _ALGORITHM)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """A decrypted P-256 private key; never printed."""

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return PublicKey(self.private_key.public_key())

    def sign(self, data: bytes) -> bytes:
        """The ECDSA P-256 signature (DER) of the SHA-256 of `data`."""
        return self.private_key.sign(data, _ALGORITHM)


def generate_keypair(password: bytes) -> tuple[bytes, bytes]:
    """A new P-256 key pair: (encrypted private key PEM, public key PEM), cosign's format."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_pem = _pem(PRIVATE_KEY_TYPE, sealed.seal(der, password))
    return private_pem, SigningKey(private_key).public_key.pem


def load_private_key(pem: bytes, password: bytes) -> SigningKey:
    """Decrypt a private key written by socle or by cosign; :class:`BadKey` if unusable."""
    kind, body = _pem_block(pem, "private key")
    if kind == PUBLIC_KEY_TYPE:
        raise BadKey(
            "this is a public key, not the private key",
            hint="sign with the PREFIX.key file; PREFIX.pub is for verifying",
        )
    if kind not in ACCEPTED_PRIVATE_TYPES:
        raise BadKey(
            f"unsupported private key PEM type {kind!r}: socle reads cosign's encrypted keys",
            hint="create a key with `socle keygen`, or convert one with `cosign import-key-pair`",
        )
    der = sealed.unseal(body, password)
    try:
        private_key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadKey("the private key is damaged: its content is not a PKCS#8 key") from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not _is_p256(private_key):
        raise _wrong_kind(private_key)
    return SigningKey(private_key)


def load_public_key(pem: bytes) -> PublicKey:
    """Read a `PUBLIC KEY` PEM (cosign.pub or socle's PREFIX.pub); P-256 only."""
    kind, _ = _pem_block(pem, "public key")
    if kind != PUBLIC_KEY_TYPE:
        raise BadKey(
            f"expected a public key, found a PEM {kind!r}",
            hint="verify with the PREFIX.pub file written next to PREFIX.key",
        )
    try:
        public_key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadKey("the public key is damaged: not a SubjectPublicKeyInfo") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not _is_p256(public_key):
        raise _wrong_kind(public_key)
    return PublicKey(public_key)


def _is_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bool:
    return isinstance(key.curve, ec.SECP256R1)


def _wrong_kind(key: object) -> BadKey:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        kind = f"an ECDSA key on curve {key.curve.name}"
    elif isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        kind = "an Ed25519 key"
    elif isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        kind = f"an RSA-{key.key_size} key"
    else:
        kind = f"a {type(key).__name__.lstrip('_')}"
    return BadKey(
        f"the key is {kind}; socle signs with ECDSA P-256 (cosign's default)",
        hint="create a P-256 key pair with `socle keygen`",
    )


def _pem_block(pem: bytes, what: str) -> tuple[str, bytes]:
    """The type and decoded body of the first PEM block, or :class:`BadKey` saying why not."""
    begin = _BEGIN.search(pem)
    if begin is None:
        raise BadKey(
            f"not a {what}: no PEM block (-----BEGIN ...-----) found",
            hint="pass the PREFIX.key / PREFIX.pub files written by `socle keygen`",
        )
    kind = begin.group(1).decode()
    end = pem.find(f"-----END {kind}-----".encode(), begin.end())
    if end < 0:
        raise BadKey(f"the {what} is truncated: its PEM block has no END line")
    try:
        body = base64.b64decode(b"".join(pem[begin.end() : end].split()), validate=True)
    except binascii.Error:
        raise BadKey(f"the {what} is damaged: its PEM body is not base64") from None
    return kind, body


def _pem(kind: str, body: bytes) -> bytes:
    """A PEM block with 64-character lines, as Go's `pem.EncodeToMemory` writes it."""
    lines = "\n".join(textwrap.wrap(b64.encode(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()
