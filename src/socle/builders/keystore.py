"""Clamp the entry dates of a Java KeyStore (JKS), the way strip-nondeterminism clamps a jar's.

Debian's ca-certificates-java writes `/etc/ssl/certs/java/cacerts` as a JKS
keystore at install time. Each entry carries the time it was added, in
milliseconds, so two installs of the same packages differ in those 8-byte dates
and nothing else. :func:`clamp_jks` rewrites every date later than
SOURCE_DATE_EPOCH to it and recomputes the keystore's integrity digest.

The digest is keyed by the store password. Only a keystore whose digest checks
with the password it is known by (`changeit` for a JDK's `cacerts`) is
rewritten; any other keystore, or a file that only looks like one, is left as
written: socle never re-seals a store it could not have opened.

The format, from the JDK's `sun.security.provider.JavaKeyStore` (big-endian):
magic `FEEDFEED`, version (1 or 2), entry count, the entries, then a SHA-1 over
the password (UTF-16BE), the words "Mighty Aphrodite" and every byte before it.
An entry is a tag (1 private key, 2 trusted certificate), an alias
(`writeUTF`), the date (a long, ms since the epoch), then for a certificate
its type (`writeUTF`, version 2 only), length and bytes; for a key its
protected bytes (length and bytes) and its chain (count, then certificates).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

MAGIC = b"\xfe\xed\xfe\xed"
DEFAULT_PASSWORD = "changeit"
"""The password every JDK and ca-certificates-java give `cacerts`."""
_SALT = b"Mighty Aphrodite"
_DIGEST_SIZE = 20
_PRIVATE_KEY, _TRUSTED_CERT = 1, 2


class _Malformed(Exception):
    """The bytes are not a JKS keystore this module can read."""


def looks_like_keystore(name: str) -> bool:
    """Whether a file named `name` (a tar member path) may be a JKS keystore worth reading."""
    base = name.rsplit("/", 1)[-1]
    return base == "cacerts" or base.endswith((".jks", ".keystore"))


def clamp_jks(data: bytes, epoch: int, *, password: str = DEFAULT_PASSWORD) -> bytes | None:
    """`data` with every entry date after `epoch` (seconds) set to it, or None if unchanged.

    None also when `data` is not a JKS keystore, or its digest does not check
    with `password`: then it must stay as it is.
    """
    if not data.startswith(MAGIC) or len(data) < 12 + _DIGEST_SIZE:
        return None
    body, sealed = data[:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
    if not hmac.compare_digest(_seal(body, password), sealed):
        return None
    try:
        dates = _date_offsets(body)
    except (_Malformed, struct.error):
        return None
    limit = epoch * 1000
    out = bytearray(body)
    changed = False
    for offset in dates:
        (when,) = struct.unpack_from(">q", out, offset)
        if when > limit:
            struct.pack_into(">q", out, offset, limit)
            changed = True
    if not changed:
        return None
    return bytes(out) + _seal(bytes(out), password)


def _seal(body: bytes, password: str) -> bytes:
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(password.encode("utf-16-be"))
    digest.update(_SALT)
    digest.update(body)
    return digest.digest()


def _date_offsets(body: bytes) -> list[int]:
    """The offsets of every entry's date in `body` (the keystore without its digest)."""
    version, count = struct.unpack_from(">ii", body, 4)
    if version not in (1, 2) or count < 0:
        raise _Malformed(f"version {version}, {count} entries")
    reader = _Reader(body, 12)
    offsets: list[int] = []
    for _ in range(count):
        tag = reader.integer()
        reader.utf()  # alias
        offsets.append(reader.position)
        reader.skip(8)
        if tag == _TRUSTED_CERT:
            reader.certificate(version)
        elif tag == _PRIVATE_KEY:
            reader.skip(reader.integer())  # the protected key
            for _ in range(reader.integer()):
                reader.certificate(version)
        else:
            raise _Malformed(f"entry tag {tag}")
    if reader.position != len(body):
        raise _Malformed(f"{len(body) - reader.position} bytes after the last entry")
    return offsets


class _Reader:
    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def skip(self, size: int) -> None:
        if size < 0 or self.position + size > len(self.data):
            raise _Malformed(f"a field of {size} bytes at {self.position} runs past the end")
        self.position += size

    def integer(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.position)
        self.position += 4
        return int(value)

    def utf(self) -> None:
        (size,) = struct.unpack_from(">H", self.data, self.position)
        self.position += 2
        self.skip(size)

    def certificate(self, version: int) -> None:
        if version == 2:
            self.utf()  # the certificate type, "X.509"
        self.skip(self.integer())
