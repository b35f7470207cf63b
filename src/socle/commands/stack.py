"""`socle up` and `socle down`: the local registry (and dockerd) socle starts for itself."""

from __future__ import annotations

from pathlib import Path

import click

from socle.builders import BUILDERS


@click.command("up")
@click.option(
    "--registry-addr",
    default="127.0.0.1:5000",
    show_default=True,
    help="Where the local registry listens.",
)
@click.option(
    "--builder",
    type=click.Choice(sorted(BUILDERS)),
    default="buildah",
    show_default=True,
    envvar="SOCLE_BUILDER",
    help="docker also starts dockerd when no engine runs.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Default: $XDG_DATA_HOME/socle.",
)
def up_cmd(registry_addr: str, builder: str, data_dir: Path | None) -> None:
    """Start the local registry (and dockerd for the docker builder) if not running."""
    from socle import stack

    for line in stack.up(
        stack.StackPaths.default(data_dir), registry_addr=registry_addr, docker=builder == "docker"
    ):
        click.echo(line)


@click.command("down")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None)
def down_cmd(data_dir: Path | None) -> None:
    """Stop what `socle up` started, and only that."""
    from socle import stack

    for line in stack.down(stack.StackPaths.default(data_dir)):
        click.echo(line)


COMMANDS = [up_cmd, down_cmd]
