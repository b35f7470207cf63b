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
@click.option(
    "--notify",
    "notify_url",
    metavar="URL",
    help="Have the registry send push notifications here (e.g. `socle watch --listen`).",
)
@click.option(
    "--notify-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The shared secret the registry sends with each notification (Authorization: Bearer).",
)
def up_cmd(
    registry_addr: str,
    builder: str,
    data_dir: Path | None,
    notify_url: str | None,
    notify_secret_file: Path | None,
) -> None:
    """Start the local registry (and dockerd for the docker builder) if not running."""
    from socle import stack
    from socle.watch.receiver import read_secret

    notify = []
    if notify_url:
        if notify_secret_file is None:
            raise click.UsageError("--notify needs --notify-secret-file (socle watch checks it)")
        header = ("Authorization", f"Bearer {read_secret(notify_secret_file)}")
        notify.append(stack.Webhook(notify_url, header))
    paths = stack.StackPaths.default(data_dir)
    lines = stack.up(paths, registry_addr=registry_addr, docker=builder == "docker", notify=notify)
    for line in lines:
        click.echo(line)


@click.command("down")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None)
def down_cmd(data_dir: Path | None) -> None:
    """Stop what `socle up` started, and only that."""
    from socle import stack

    for line in stack.down(stack.StackPaths.default(data_dir)):
        click.echo(line)


COMMANDS = [up_cmd, down_cmd]
