"""`socle deploy chart APP`: the rendered objects as a Helm chart, packaged with Helm provenance."""

from __future__ import annotations

from pathlib import Path

import click

from socle import atomic, deploying
from socle.commands.options import catalog_options, open_catalog, verify_key_option
from socle.commands.signing import open_client, read_public_key
from socle.deploy import render
from socle.deploy import spec as specs
from socle.deploy.chart import build_chart, chart_version, package
from socle.deploy.provenance import provenance
from socle.errors import SocleError


@click.command("chart")
@catalog_options
@click.argument("app")
@click.option(
    "-o", "--out", "out", type=click.Path(path_type=Path, file_okay=False),
    default=Path("build", "charts"), show_default=True,
    help="Folder to write APP-VERSION.tgz and its .prov into.",
)  # fmt: skip
@verify_key_option
@click.option(
    "--version", "version",
    help="The chart's SemVer version (default: the image's version, 1.0 -> 1.0.0).",
)  # fmt: skip
@click.option(
    "--gpg-key", "gpg_key", envvar="SOCLE_GPG_KEY",
    help="The GnuPG key that signs the provenance (default: GnuPG's default key).",
)  # fmt: skip
@click.option(
    "--gpg-home", "gpg_home", envvar="GNUPGHOME",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The GnuPG home holding that key (default: GnuPG's own, or GNUPGHOME).",
)  # fmt: skip
def chart_cmd(
    catalog_path: Path,
    registry: str | None,
    app: str,
    out: Path,
    key_path: Path,
    version: str | None,
    gpg_key: str | None,
    gpg_home: Path | None,
) -> None:
    """Package APP's deployment as a Helm chart pinned to its verified digest, and sign it.

    The chart holds the objects `socle deploy render` writes for the base; its
    values carry the image as repository and digest only. The provenance file
    is Helm's: `helm verify --keyring PUBRING APP-VERSION.tgz` checks it.
    """
    catalog, graph = open_catalog(catalog_path, registry)
    spec = specs.load(catalog, graph, app)
    public_key = read_public_key(key_path)
    # The chart follows the image's own version (`1.0` -> 1.0.0); appVersion is the exact tag.
    chart_ver = chart_version(graph.by_key[spec.variant].version.name, version)
    with open_client() as client:
        image = deploying.trusted_image(spec, catalog, public_key, client=client)
    chart = build_chart(
        spec.app,
        render.objects(spec, image.ref),
        image.ref,
        version=chart_ver,
        app_version=spec.tag,
    )
    archive = package(chart)
    prov = provenance(
        chart.metadata, chart.archive_name, archive, key_id=gpg_key, gpg_home=gpg_home
    )
    archive_path = out / chart.archive_name
    try:
        atomic.write_bytes(archive_path, archive)
        atomic.write_bytes(out / f"{chart.archive_name}.prov", prov)
    except OSError as exc:
        raise SocleError(f"cannot write into {out}: {exc.strerror}", hint="pass -o DIR") from None
    click.echo(f"{image.tag_ref} -> {image.ref} ({image.signature})", err=True)
    click.echo(f"Wrote {archive_path} and {archive_path.name}.prov")


COMMANDS = [chart_cmd]
