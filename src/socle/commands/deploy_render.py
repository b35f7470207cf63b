"""`socle deploy render APP`: a kustomize base and overlays, pinned to a verified digest."""

from __future__ import annotations

from pathlib import Path

import click

from socle import deploying
from socle.commands.options import catalog_options, open_catalog, verify_key_option
from socle.commands.signing import open_client, read_public_key
from socle.deploy import spec as specs


@click.command("render")
@catalog_options
@click.argument("app")
@click.option(
    "-o", "--out", "out", type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write base/ and overlays/ into (default: build/deploy/APP).",
)  # fmt: skip
@click.option("--env", "env", help="Write only this environment's overlay (with the base).")
@verify_key_option
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

