"""`socle deploy`: render, check, chart and smoke-run an application's deployment."""

from __future__ import annotations

import importlib

import click

# Subcommand -> (module under socle.commands, attribute): each loads only when it runs.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "chart": ("deploy_chart", "chart_cmd"),
    "check": ("deploy_check", "check_cmd"),
    "policies": ("deploy_policies", "policies_cmd"),
    "render": ("deploy_render", "render_cmd"),
    "smoke": ("deploy_smoke", "smoke_cmd"),
}


class LazyDeployGroup(click.Group):
    """`socle deploy ...`, importing a subcommand's module when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*SUBCOMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute = SUBCOMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"socle.commands.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group("deploy", cls=LazyDeployGroup)
def deploy_group() -> None:
    """Land an application on Kubernetes: digest-pinned, signed, restricted, observable."""


COMMANDS = [deploy_group]
