"""The `socle` command line: the group, its subcommands, and the one place exit codes are chosen.

Each subcommand's module is imported only when that command runs (or when help
lists them all), so `socle --version`, `validate`, `tags` and `graph` never
load httpx, cryptography, cyclonedx or rich.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback

import click

from socle import __version__
from socle.errors import SocleError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Command name -> the module under socle.commands that defines it, and its function.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("catalog", "validate_cmd"),
    "tags": ("catalog", "tags_cmd"),
    "graph": ("catalog", "graph_cmd"),
    "parents": ("catalog", "parents_cmd"),
    "children": ("catalog", "children_cmd"),
    "plan": ("build", "plan_cmd"),
    "why": ("build", "why_cmd"),
    "build": ("build", "build_cmd"),
    "promote": ("build", "promote_cmd"),
    "rebuild": ("rebuild", "rebuild_cmd"),
    "prune": ("prune", "prune_cmd"),
    "export": ("export", "export_cmd"),
    "deploy": ("deploy", "deploy_group"),
    "pins": ("pins", "pins_group"),
    "test": ("testing", "test_cmd"),
    "keygen": ("signing", "keygen_cmd"),
    "sign": ("signing", "sign_cmd"),
    "verify": ("signing", "verify_cmd"),
    "verify-attestation": ("signing", "verify_attestation_cmd"),
    "sbom": ("trust", "sbom_cmd"),
    "scan": ("trust", "scan_cmd"),
    "watch": ("watch", "watch_cmd"),
    "serve": ("serve", "serve_cmd"),
    "up": ("stack", "up_cmd"),
    "down": ("stack", "down_cmd"),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module when the subcommand is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"socle.commands.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
