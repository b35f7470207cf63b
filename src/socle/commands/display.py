"""How plans and runs look on a terminal (rich), and as plain lines elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from socle.core.plan import Action, Plan
from socle.events import Event, Status
from socle.executor import Outcome


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


class RunDisplay:
    """Shows a build run: a live progress bar on a terminal, plain lines elsewhere.

    It is an observer of the executor's events; nothing in the core prints.
    """

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.live,
        )
        self.task = self.progress.add_task("building", total=total)

    def __enter__(self) -> RunDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        line = self.line(event)
        if event.status in (Status.BUILT, Status.FAILED, Status.BLOCKED):
            self.progress.advance(self.task)
        if event.status is Status.BUILDING:
            self.progress.update(self.task, description=f"building {event.key}")
        if self.live:
            self.progress.console.print(line, highlight=False)
        else:
            print(Text.from_markup(line).plain, file=sys.stderr, flush=True)

    @staticmethod
    def line(event: Event) -> str:
        key = event.key or "run"
        if event.status is Status.BUILDING:
            return f"[bold]{key}[/]: building ({event.message})"
        if event.status is Status.PUSHING:
            return f"[bold]{key}[/]: {event.message or 'pushing'}"
        if event.status is Status.BUILT:
            return f"[green]{key}[/]: built {event.digest} in {event.seconds or 0:.1f} s"
        if event.status is Status.TESTING:
            return f"[bold]{key}[/]: gate {event.message}"
        if event.status is Status.TAGGED:
            return f"[bold]{key}[/]: tagged {event.message}"
        if event.status is Status.TAGGING:
            return f"[bold]{key}[/]: {event.message}"
        if event.status is Status.FAILED:
            return f"[red]{key}: failed[/]\n{escape(event.message)}"
        return f"[yellow]{key}[/]: {event.status.value} {event.message}"


def run_summary(outcomes: Sequence[Outcome], console: Console | None = None) -> None:
    """The end-of-run table: every variant's status, duration and digest."""
    console = console or Console()
    table = Table(show_edge=False, pad_edge=False)
    for column in ("image", "status", "time", "digest", "gates", "tags moved"):
        table.add_column(column)
    colours = {Status.BUILT: "green", Status.FAILED: "red", Status.BLOCKED: "yellow"}
    for o in outcomes:
        colour = colours.get(o.status, "default")
        table.add_row(
            o.key,
            f"[{colour}]{o.status.value}[/]",
            f"{o.seconds:.1f} s" if o.seconds else "",
            o.digest[:19] if o.digest else "",
            "; ".join(o.notes),
            " ".join(o.tags_moved),
        )
    console.print(table)
    counts = {s: sum(1 for o in outcomes if o.status is s) for s in Status}
    console.print(
        f"{counts[Status.BUILT]} built, {counts[Status.SKIPPED]} current, "
        f"{counts[Status.FAILED]} failed, {counts[Status.BLOCKED]} blocked"
    )
