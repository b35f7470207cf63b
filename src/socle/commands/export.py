"""`socle export ENGINE`: the catalog's graph as a CI engine's native pipeline."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import click

from socle.commands.options import catalog_options, open_catalog
from socle.export import ENGINES


@click.command("export")
@click.argument("engine", type=click.Choice(sorted(ENGINES)))
@catalog_options
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The folder to write the pipeline into.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="IMAGE",
    help="Export only IMAGE (`java`, `java:17`) and its descendants.",
)
@click.option("--force", is_flag=True, help="Overwrite files in the folder socle did not write.")
def export_cmd(
    engine: str,
    catalog_path: Path,
    registry: str | None,
    output: Path,
    only: tuple[str, ...],
    force: bool,
) -> None:
    """Write the graph as ENGINE's pipeline: a job per variant, then `socle promote`.

    Each job runs `socle build --only VARIANT --no-cascade --expect-parent DIGEST`
    with the digest its parent's job published. Nothing is read from the registry.
    """
    from socle.core.plan import make_plan
    from socle.export.model import pipeline
    from socle.export.output import write_tree
    from socle.inputs import InputReader

    catalog, graph = open_catalog(catalog_path, registry)
    reader = InputReader()
    inputs = {v.key: reader.components(v) for v in graph.variants}
    plan = make_plan(graph, catalog.registry, inputs, {})
    relative = Path(os.path.relpath(catalog_path.resolve(), Path.cwd()))
    exported = pipeline(
        graph, plan, catalog=relative.as_posix(), registry=catalog.registry, only=only
    )
    render = importlib.import_module(ENGINES[engine]).render
    files = render(exported)
    written = write_tree(output, files, engine=engine, force=force)
    click.echo(
        f"{engine}: {len(exported.jobs)} job(s) in {len(exported.levels())} level(s), "
        f"{len(written)} file(s) written to {output}"
    )


COMMANDS = [export_cmd]
