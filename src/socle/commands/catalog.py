"""Commands that read the catalog only: validate, tags, graph, parents, children."""

from __future__ import annotations

from pathlib import Path

import click

from socle.commands.options import catalog_options, open_catalog
from socle.core.drawing import FORMATS, draw


@click.command("validate")
@catalog_options
def validate_cmd(catalog_path: Path, registry: str | None) -> None:
    """Check the catalog; print every problem as FILE:LINE:COL: error: message."""
    catalog, graph = open_catalog(catalog_path, registry)
    tags = sum(len(v.tags) for v in graph.variants)
    click.echo(
        f"{catalog_path}: ok: {len(catalog.images)} images, {len(graph.variants)} variants, "
        f"{tags} tags on {catalog.registry}"
    )


@click.command("tags")
@catalog_options
@click.argument("images", nargs=-1)
def tags_cmd(catalog_path: Path, registry: str | None, images: tuple[str, ...]) -> None:
    """Print the fully qualified reference of every tag (of IMAGES, or all), sorted."""
    catalog, graph = open_catalog(catalog_path, registry)
    variants = graph.select(images) if images else graph.variants
    for ref in sorted(r for v in variants for r in v.refs(catalog.registry)):
        click.echo(ref)


@click.command("graph")
@catalog_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def graph_cmd(catalog_path: Path, registry: str | None, fmt: str) -> None:
    """Print the parent/child graph of every variant."""
    _, graph = open_catalog(catalog_path, registry)
    click.echo(draw(graph, fmt))


@click.command("parents")
@catalog_options
@click.argument("image")
def parents_cmd(catalog_path: Path, registry: str | None, image: str) -> None:
    """Print the chain of parents of IMAGE (`java`, `java:8-debian12`), nearest first."""
    _, graph = open_catalog(catalog_path, registry)
    for variant in graph.select([image]):
        chain = " <- ".join(p.key for p in graph.ancestors(variant)) or "(none: an OS image)"
        click.echo(f"{variant.key}: {chain}")


@click.command("children")
@catalog_options
@click.argument("image")
def children_cmd(catalog_path: Path, registry: str | None, image: str) -> None:
    """Print every variant built on IMAGE, directly or not, in build order."""
    _, graph = open_catalog(catalog_path, registry)
    seen: dict[str, None] = {}
    for variant in graph.select([image]):
        seen.update((d.key, None) for d in graph.descendants(variant))
    for key in (v.key for v in graph.variants if v.key in seen):
        click.echo(key)


COMMANDS = [validate_cmd, tags_cmd, graph_cmd, parents_cmd, children_cmd]
