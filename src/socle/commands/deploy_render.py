"""`socle deploy render APP`: a kustomize base and overlays, pinned to a verified digest."""

from __future__ import annotations

from pathlib import Path

import click

from socle import deploying
from socle.commands.options import catalog_options, open_catalog
from socle.deploy import spec as specs
from socle.errors import InputError
from socle.registry.client import RegistryClient
from socle.signing.errors import BadKey
from socle.signing.keys import PublicKey, load_public_key


def open_client() -> RegistryClient:
    """The registry client the command uses (tests replace it)."""
    return RegistryClient.from_config()


@click.command("render")
@catalog_options
@click.argument("app")
@click.option(
    "-o", "--out", "out", type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write base/ and overlays/ into (default: build/deploy/APP).",
)  # fmt: skip
@click.option("--env", "env", help="Write only this environment's overlay (with the base).")
@click.option(
    "--key", "key_path", required=True, envvar="SOCLE_VERIFY_KEY",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The public key the image's signature must verify with (env SOCLE_VERIFY_KEY).",
)  # fmt: skip
def render_cmd(
    catalog_path: Path,
    registry: str | None,
    app: str,
    out: Path | None,
    env: str | None,
    key_path: Path,
) -> None:
    """Render APP's deployment: only a signed image whose gates passed, by digest."""
    catalog, graph = open_catalog(catalog_path, registry)
    spec = specs.load(catalog, graph, app)
    public_key = read_public_key(key_path)
    with open_client() as client:
        image = deploying.trusted_image(spec, catalog, public_key, client=client)
    files = deploying.render_files(spec, image, env)
    target = out or Path("build", "deploy", app)
    deploying.write(files, target)
    click.echo(f"{image.tag_ref} -> {image.ref} ({image.signature})", err=True)
    click.echo(f"Wrote {len(files)} files to {target}")


def read_public_key(path: Path) -> PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the public key {path}: {exc.strerror}") from None
    try:
        return load_public_key(data)
    except BadKey as exc:
        raise type(exc)(f"{path}: {exc.message}", hint=exc.hint) from None
