"""`socle keygen`, `sign`, `verify` and `verify-attestation` (registered by the CLI).

The passphrase comes from SOCLE_PASSWORD or a hidden prompt; it is never
echoed, logged or written: it only goes to scrypt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from socle.core.state import FINGERPRINT
from socle.errors import InputError
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing.attach import sign
from socle.signing.dsse import SLSA_PROVENANCE_V1
from socle.signing.errors import BadKey, VerificationFailed
from socle.signing.keys import (
    PublicKey,
    SigningKey,
    generate_keypair,
    load_private_key,
    load_public_key,
)
from socle.signing.verify import Verification, verify, verify_attestation

T = TypeVar("T")
PASSWORD_ENV = "SOCLE_PASSWORD"
KEY_SUFFIX, PUB_SUFFIX = ".key", ".pub"


def open_client() -> RegistryClient:
    """The registry client commands use (tests replace it)."""
    return RegistryClient.from_config()


@click.command("keygen")
@click.option(
    "--out",
    "prefix",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write PREFIX.key (encrypted, mode 0600) and PREFIX.pub.",
)
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen_cmd(prefix: Path, force: bool) -> None:
    """Create a cosign-compatible P-256 key pair (passphrase: env SOCLE_PASSWORD or prompt)."""
    private_path, public_path = _with_suffix(prefix, KEY_SUFFIX), _with_suffix(prefix, PUB_SUFFIX)
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise InputError(f"{path} already exists", hint="pass --force to replace the key pair")
    password = _new_password()
    private_pem, public_pem = generate_keypair(password)
    try:
        _write_private(private_path, private_pem)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise InputError(
            f"cannot write the key pair at {prefix}: {exc.strerror}",
            hint="--out takes a path prefix in an existing, writable folder",
        ) from None
    click.echo(f"Private key written to {private_path}")
    click.echo(f"Public key written to {public_path}")


@click.command("sign")
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.argument("reference")
def sign_cmd(key_path: Path, reference: str) -> None:
    """Sign the image REFERENCE in both cosign layouts (a tag is resolved to its digest)."""
    key = read_signing_key(key_path)
    with open_client() as client:
        ref = Reference.parse(reference)
        if not ref.digest:
            ref = ref.with_digest(client.get_manifest(ref).digest)
            click.echo(f"Signing {ref} (the digest {reference} points at now)", err=True)
        for location in sign(client, ref, key):
            click.echo(f"Signature written to {location}")


@click.command("verify")
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.argument("reference")
def verify_cmd(key_path: Path, reference: str) -> None:
    """Verify REFERENCE's signatures with PREFIX.pub: exit 0 if valid, 1 if not or missing."""
    public_key = read_public_key(key_path)
    ref = Reference.parse(reference)
    with open_client() as client:
        result = verify(client, ref, public_key)
        platforms = platform_results(client, ref.with_digest(result.digest), public_key)
    click.echo(f"{reference} -> {result.digest}")
    for layout in result.layouts:
        click.echo(f"  {layout.describe()}")
    if not result.valid:
        raise VerificationFailed(result.reason)
    for platform, found, required in platforms:
        click.echo(f"  platform {platform} -> {found.digest}: {found.reason}")
        if not found.valid and (required or found.found):
            raise VerificationFailed(f"{reference}: platform {platform}: {found.reason}")
    click.echo(result.reason + (f", with its {len(platforms)} platforms" if platforms else ""))


def platform_results(
    client: RegistryClient, index: Reference, public_key: PublicKey
) -> list[tuple[str, Verification, bool]]:
    """Each platform manifest of an index, verified: (platform, result, must be signed).

    socle signs every platform of the indexes it builds (they carry its
    fingerprint), so there each must verify; the platforms of an index copied
    from upstream are checked too, but only a bad signature fails them.
    """
    manifest = client.get_manifest(index)
    if not manifest.is_index:
        return []
    required = FINGERPRINT in (manifest.json().get("annotations") or {})
    found = []
    for child in manifest.children():
        if child.platform is None or child.platform.os == "unknown":
            continue  # attestation manifests of buildkit indexes
        result = verify(client, index.with_digest(child.digest), public_key)
        found.append((str(child.platform), result, required))
    return found


@click.command("verify-attestation")
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--type",
    "predicate_type",
    default=SLSA_PROVENANCE_V1,
    show_default=True,
    help="The predicate type to look for.",
)
@click.argument("reference")
def verify_attestation_cmd(key_path: Path, predicate_type: str, reference: str) -> None:
    """Verify REFERENCE's attestation with PREFIX.pub and print its in-toto statement."""
    public_key = read_public_key(key_path)
    with open_client() as client:
        statement = verify_attestation(
            client, Reference.parse(reference), public_key, predicate_type=predicate_type
        )
    click.echo(json.dumps(statement, indent=2, sort_keys=True))


COMMANDS = (keygen_cmd, sign_cmd, verify_cmd, verify_attestation_cmd)


def _with_suffix(prefix: Path, suffix: str) -> Path:
    return prefix.with_name(prefix.name + suffix)


def _new_password() -> bytes:
    if PASSWORD_ENV in os.environ:
        password = os.environ[PASSWORD_ENV]
    else:
        password = click.prompt(
            "Enter a passphrase for the private key",
            hide_input=True,
            confirmation_prompt="Enter it again",
            default="",
            show_default=False,
        )
    if not password:
        raise InputError(
            "refusing an empty passphrase: the private key would be readable by anyone",
            hint=f"set {PASSWORD_ENV} or type a passphrase at the prompt",
        )
    return str(password).encode()


def read_signing_key(path: Path) -> SigningKey:
    """The private key at `path`, decrypted with SOCLE_PASSWORD or a prompted passphrase."""
    return _named(path, lambda pem: load_private_key(pem, _password()))


def _password() -> bytes:
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV].encode()
    entered = click.prompt(
        "Passphrase for the private key", hide_input=True, default="", show_default=False
    )
    return str(entered).encode()


def _write_private(path: Path, data: bytes) -> None:
    """Write with mode 0600 from the first byte (no window where others could read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(data)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the key {path}: {exc.strerror}") from None


def read_public_key(path: Path) -> PublicKey:
    """The PEM public key at `path`; an unreadable or bad key is one error naming the file."""
    return _named(path, load_public_key)


def _named(path: Path, load: Callable[[bytes], T]) -> T:
    """`load` the file's bytes; a key error names the file."""
    data = _read(path)
    try:
        return load(data)
    except BadKey as exc:
        raise type(exc)(f"{path}: {exc.message}", hint=exc.hint) from None
