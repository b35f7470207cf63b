"""`socle pins update`: upstream images pinned by digest, in a reviewed pins file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from socle.commands.options import catalog_options, open_catalog


@click.group("pins")
def pins_group() -> None:
    """Upstream images pinned by digest."""


@pins_group.command("update")
@catalog_options
def pins_update_cmd(catalog_path: Path, registry: str | None) -> None:
    """Re-resolve every upstream tag to its digest and rewrite the pins file."""
    from socle import pins
    from socle.registry.client import RegistryClient

    catalog, _ = open_catalog(catalog_path, registry)
    assert catalog.pins_path is not None
    with RegistryClient.from_config() as client:
        changes = pins.resolve(catalog, client)
    pins.write(catalog.pins_path, changes)
    for change in changes:
        if change.inline:
            note = (
                "pinned inline in the catalog; edit it there"
                if change.changed
                else "inline, current"
            )
            click.echo(f"{change.key}: {change.upstream} -> {change.after} ({note})")
        elif change.changed:
            click.echo(
                f"{change.key}: {change.upstream} {change.before or 'unpinned'} -> {change.after}"
            )
        else:
            click.echo(f"{change.key}: {change.upstream} unchanged")
    moved = sum(1 for c in changes if c.changed and not c.inline)
    click.echo(f"{os.path.relpath(catalog.pins_path)}: {moved} pin(s) changed")


COMMANDS = [pins_group]
