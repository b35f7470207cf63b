"""`socle rebuild --verify REF`: build a published image again and compare it, layer by layer.

Exit 0 with one line when the rebuild has the published config and layers; a
difference is a :class:`~socle.rebuild.NotReproduced` error (exit 1) naming the
first differing layer and its files, through the CLI's one error path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from socle.commands.options import builder_option, catalog_options, open_catalog
from socle.errors import InputError
from socle.localimage import DEFAULT_PLATFORM


@click.command("rebuild")
@click.option(
    "--verify",
    is_flag=True,
    help="Compare the rebuild with the published image (the only mode: nothing is pushed).",
)
@click.argument("ref")
@catalog_options
@builder_option
@click.option(
    "--platform",
    default=DEFAULT_PLATFORM,
    show_default=True,
    help="OS/ARCH to rebuild when REF is a multi-platform index.",
)
@click.option(
    "--keep-work",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the published and rebuilt OCI layouts in this new folder.",
)
def rebuild_cmd(
    verify: bool,
    ref: str,
    catalog_path: Path,
    registry: str | None,
    builder: str,
    platform: str,
    keep_work: Path | None,
) -> None:
    """Rebuild the published image REF from its recorded inputs, parent and SOURCE_DATE_EPOCH.

    REF is an image reference (host/repository:tag or @digest) or a variant of the
    catalog (`java:17-debian12`). Nothing is pushed.
    """
    from socle.builders import BUILDERS
    from socle.rebuild import run_diffoscope, verify_rebuild
    from socle.registry.client import RegistryClient

    if not verify:
        raise InputError("socle rebuild needs --verify", hint="socle rebuild --verify REF")
    catalog, graph = open_catalog(catalog_path, registry)
    keys = {variant.key: variant for variant in graph.variants}
    if ref in keys:
        ref = keys[ref].ref(catalog.registry)
    elif "/" not in ref:
        raise InputError(
            f"{ref} is neither an image reference nor a variant of {catalog_path}",
            hint="give host/repository:tag, or a variant such as "
            + (next(iter(keys), "java:17-debian12")),
        )
    made = BUILDERS[builder]()
    if keep_work is not None and keep_work.exists():
        raise InputError(f"{keep_work} already exists", hint="--keep-work takes a new folder")
    with RegistryClient.from_config() as client:
        if keep_work is not None:
            keep_work.mkdir(parents=True)
            verdict = verify_rebuild(
                catalog, graph, client, made, ref, work=keep_work, platform=platform,
                diffoscope=run_diffoscope,
            )  # fmt: skip
        else:
            with tempfile.TemporaryDirectory(prefix="socle-rebuild-") as tmp:
                verdict = verify_rebuild(
                    catalog, graph, client, made, ref, work=Path(tmp), platform=platform,
                    diffoscope=run_diffoscope,
                )  # fmt: skip
    click.echo("\n".join(verdict.lines))
