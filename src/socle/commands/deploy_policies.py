"""`socle deploy policies`: admission policies requiring socle's signature, from its public key."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from socle.errors import InputError


@click.command("policies")
@click.option(
    "--key", "key", required=True, type=click.Path(path_type=Path), help="socle's PUBLIC key (PEM)."
)
@click.option(
    "--registry", required=True, help="The organisation's registry host (images under HOST/)."
)
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder to write."
)
def policies_cmd(key: Path, registry: str, output: Path) -> None:
    """Write Kyverno and Sigstore policy-controller policies to OUTPUT."""
    from socle.atomic import write_text
    from socle.deploy import policies

    try:
        pem = key.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{key}: cannot read the public key: {error}") from error
    if "PRIVATE KEY" in pem or "-----BEGIN PUBLIC KEY-----" not in pem:
        raise InputError(
            f"{key}: not a PEM public key", hint="pass the .pub file, never the private key"
        )
    output.mkdir(parents=True, exist_ok=True)
    for name, policy in policies.all_policies(pem, registry.rstrip("/")).items():
        write_text(output / name, yaml.safe_dump(policy, sort_keys=False))
        click.echo(str(output / name))
