"""Helm's provenance file (`NAME-VERSION.tgz.prov`), clear-signed with GnuPG.

The layout is Helm's (`pkg/provenance`): the chart's metadata as YAML, then the
YAML document end `...` (a `---` line is not allowed in a clear-signed body),
then `files:` mapping the archive's name to `sha256:<hex>` of its bytes, all in
an OpenPGP clear-signed document with a SHA-512 hash. `helm verify --keyring`
checks the signature against the keyring, then the archive's sha256.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from socle.process import run


def message_block(metadata: bytes, archive_name: str, archive: bytes) -> bytes:
    """The signed body: Chart.yaml, `...`, then the archive's sha256 under `files:`."""
    digest = hashlib.sha256(archive).hexdigest()
    return metadata + b"\n...\n" + f"files:\n  {archive_name}: sha256:{digest}\n".encode()


def clearsign(body: bytes, *, key_id: str | None = None, gpg_home: Path | None = None) -> bytes:
    """`body` clear-signed by GnuPG with `key_id` (else GnuPG's default key) from `gpg_home`.

    Batch mode: the key must sign without a prompt (no passphrase, or one the
    agent holds), so a CI job fails with gpg's reason instead of hanging.
    """
    cmd = ["gpg", "--batch", "--yes", "--armor", "--digest-algo", "SHA512"]
    if gpg_home is not None:
        cmd += ["--homedir", str(gpg_home)]
    if key_id is not None:
        cmd += ["--local-user", key_id]
    cmd.append("--clearsign")
    signed = run(
        cmd,
        input=body,
        hint="check the key with `gpg --list-secret-keys` (with --homedir for --gpg-home); "
        "it must sign without a prompt",
    )
    return signed.stdout.encode()


def provenance(
    metadata: bytes,
    archive_name: str,
    archive: bytes,
    *,
    key_id: str | None = None,
    gpg_home: Path | None = None,
) -> bytes:
    """The `.prov` file for the package `archive` named `archive_name`."""
    body = message_block(metadata, archive_name, archive)
    return clearsign(body, key_id=key_id, gpg_home=gpg_home)
