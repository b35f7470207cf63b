"""The `socle` command line: the group, its subcommands, and the one place exit codes are chosen."""

from __future__ import annotations

import logging
import sys
import traceback

import click

from socle import __version__, trust_commands
from socle.commands import build, catalog, stack, testing, watch
from socle.errors import SocleError
from socle.signing import commands as signing_commands

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug detail.")
@click.version_option(__version__, prog_name="socle")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """socle: build, test, sign and publish an organisation's trusted base images."""
    ctx.obj = {"verbose": verbose}
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="socle: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )


for commands in (
    catalog.COMMANDS,
    build.COMMANDS,
    testing.COMMANDS,
    signing_commands.COMMANDS,
    trust_commands.COMMANDS,
    watch.COMMANDS,
    stack.COMMANDS,
):
    for command in commands:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one message and an exit code."""
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="socle", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except SocleError as exc:
        if verbose:
            traceback.print_exc()
        click.echo(exc.diagnostics(), err=True)
        sys.exit(exc.exit_code)
    sys.exit(EXIT_OK)
