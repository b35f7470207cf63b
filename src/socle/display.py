"""How plans and runs look on a terminal (rich), and as plain lines elsewhere."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from socle.plan import Action, Plan


def plan_table(plan: Plan, console: Console | None = None) -> None:
    """A table of every variant: action, tags and reasons; then a one-line summary."""
    console = console or Console()
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("image")
    table.add_column("action")
    table.add_column("tags")
    table.add_column("why")
    for step in plan.steps:
        building = step.action is Action.BUILD
        table.add_row(
            step.variant.key,
            "[bold yellow]build[/]" if building else "[green]skip[/]",
            " ".join(step.variant.tags),
            "; ".join(r.text for r in step.reasons) if building else "current",
        )
    console.print(table)
    builds = len(plan.builds())
    console.print(
        f"{builds} to build, {len(plan.steps) - builds} current, registry {plan.registry}"
    )
