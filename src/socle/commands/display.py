"""How plans and runs look on a terminal (rich), and as plain lines elsewhere.

rich costs about 0.05 s to import and 0.02 s to lay out a table, a sixth of a
no-op `socle build`. Where its output goes to a file or a pipe (CI, cron,
`socle watch`, scripts), a run prints its event lines and its summary table
without rich: the table in the layout rich gives it there (no colour, the same
box, the same widths and `…` truncation, `tests/unit/commands/test_display.py`
compares both), and through rich after all where a cell would wrap or holds
anything but printable ASCII.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from socle.core.plan import Action, Plan
from socle.events import Event, Status
from socle.executor import Outcome

if TYPE_CHECKING:
    from rich.console import Console

SUMMARY_COLUMNS = ("image", "status", "time", "digest", "gates", "tags moved")
MIN_WIDTH = 20  # narrower consoles are left to rich
# What rich would read as markup or as an emoji code (`:name:`) in a cell.
_RICH_SYNTAX = re.compile(r"\[|:\S*?:")


def plan_table(plan: Plan, console: Console | None = None) -> None:
    """A table of every variant: action, tags and reasons; then a one-line summary."""
    from rich.console import Console
    from rich.table import Table

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
        self.console = console
        self.live = console.is_terminal if console is not None else rich_terminal(sys.stderr)
        self.progress = None
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.console = console or Console(stderr=True)
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.task = self.progress.add_task("building", total=total)

    def __enter__(self) -> RunDisplay:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: Event) -> None:
        if self.progress is None:
            _, name, rest = _parts(event)
            print(name + rest, file=sys.stderr, flush=True)
            return
        if event.status in (Status.BUILT, Status.FAILED, Status.BLOCKED):
            self.progress.advance(self.task)
        if event.status is Status.BUILDING:
            self.progress.update(self.task, description=f"building {event.key}")
        self.progress.console.print(self.line(event), highlight=False)

    @staticmethod
    def line(event: Event) -> str:
        """The event's line in rich markup."""
        from rich.markup import escape

        style, name, rest = _parts(event)
        return f"[{style}]{name}[/]{escape(rest) if event.status is Status.FAILED else rest}"


def _parts(event: Event) -> tuple[str, str, str]:
    """An event's line as (the style of its head, its head, the rest)."""
    key = event.key or "run"
    if event.status is Status.BUILDING:
        return "bold", key, f": building ({event.message})"
    if event.status is Status.PUSHING:
        return "bold", key, f": {event.message or 'pushing'}"
    if event.status is Status.BUILT:
        return "green", key, f": built {event.digest} in {event.seconds or 0:.1f} s"
    if event.status is Status.TESTING:
        return "bold", key, f": gate {event.message}"
    if event.status is Status.TAGGED:
        return "bold", key, f": tagged {event.message}"
    if event.status is Status.TAGGING:
        return "bold", key, f": {event.message}"
    if event.status is Status.FAILED:
        return "red", f"{key}: failed", f"\n{event.message}"
    return "yellow", key, f": {event.status.value} {event.message}"


def run_summary(outcomes: Sequence[Outcome], console: Console | None = None) -> None:
    """The end-of-run table: every variant's status, duration and digest."""
    rows = [
        (
            o.key,
            o.status.value,
            f"{o.seconds:.1f} s" if o.seconds else "",
            o.digest[:19] if o.digest else "",
            "; ".join(o.notes),
            " ".join(o.tags_moved),
        )
        for o in outcomes
    ]
    counts = {s: sum(1 for o in outcomes if o.status is s) for s in Status}
    total = (
        f"{counts[Status.BUILT]} built, {counts[Status.SKIPPED]} current, "
        f"{counts[Status.FAILED]} failed, {counts[Status.BLOCKED]} blocked"
    )
    if console is None and plain_stream(sys.stdout):
        lines = plain_table(SUMMARY_COLUMNS, rows, rich_width())
        if lines is not None and plain_cell(total) and len(total) <= rich_width():
            sys.stdout.write("".join(f"{line}\n" for line in [*lines, total]))
            sys.stdout.flush()
            return
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(show_edge=False, pad_edge=False)
    for column in SUMMARY_COLUMNS:
        table.add_column(column)
    colours = {Status.BUILT: "green", Status.FAILED: "red", Status.BLOCKED: "yellow"}
    for o, row in zip(outcomes, rows, strict=True):
        colour = colours.get(o.status, "default")
        table.add_row(row[0], f"[{colour}]{row[1]}[/]", *row[2:])
    console.print(table)
    console.print(total)


def rich_terminal(stream: IO[str]) -> bool:
    """What rich's `Console(file=stream).is_terminal` answers, without importing rich."""
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def plain_stream(stream: IO[str]) -> bool:
    """Whether rich would write to `stream` without colour, in UTF-8, as a plain file."""
    if sys.platform == "win32" or hasattr(builtins, "get_ipython"):
        return False  # a Windows console or a notebook: rich knows better
    if rich_terminal(stream):
        return False
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
    return encoding.startswith("utf")


def rich_width() -> int:
    """The width rich gives a console: COLUMNS, else the first standard stream's terminal, else 80."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    width = 0
    for descriptor in (0, 1, 2):
        try:
            width = os.get_terminal_size(descriptor).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    return width or 80


def plain_cell(text: str) -> bool:
    """A cell rich would print as it is: printable ASCII, no markup, no emoji code."""
    return text.isascii() and text.isprintable() and _RICH_SYNTAX.search(text) is None


def plain_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int
) -> list[str] | None:
    """The lines rich prints for `Table(show_edge=False, pad_edge=False)` of these plain cells.

    The widths are rich's (`Table._calculate_column_widths`: the columns' widest
    cells, narrowed the way rich narrows them to fit `width`); a cell too long
    for its column ends in `…` as rich cuts a single word. None where rich would
    do more: wrap a cell with spaces onto several lines, or read it as markup.
    """
    count = len(headers)
    columns = [[header, *(row[i] for row in rows)] for i, header in enumerate(headers)]
    if (
        not count
        or width < MIN_WIDTH
        or any(not plain_cell(cell) for column in columns for cell in column)
    ):
        return None
    pads = [(0 if i == 0 else 1, 0 if i == count - 1 else 1) for i in range(count)]
    limit = width - (count - 1)  # the vertical lines between the columns
    widths = [
        _measure(column, sum(pad), limit)[1] or 1 for column, pad in zip(columns, pads, strict=True)
    ]
    if sum(widths) > limit:
        widths = _collapse(widths, limit)
        if sum(widths) > limit:
            widths = _ratio_reduce(sum(widths) - limit, [1] * count, widths, widths)
        widths = [
            _measure(column, sum(pad), w)[1] or 0
            for column, pad, w in zip(columns, pads, widths, strict=True)
        ]
    rendered: list[list[str]] = []
    for column, (left, right), w in zip(columns, pads, widths, strict=True):
        inner = w - left - right
        if inner < 1:
            return None
        cells = []
        for cell in column:
            if len(cell) > inner:
                if " " in cell:
                    return None  # rich wraps it onto several lines
                cell = cell[: inner - 1] + "…"
            cells.append(" " * left + cell.ljust(inner) + " " * right)
        rendered.append(cells)
    lines = ["┃".join(column[0] for column in rendered)]
    lines.append("╇".join("━" * w for w in widths))
    lines.extend("│".join(column[r] for column in rendered) for r in range(1, len(rows) + 1))
    return lines


def _measure(cells: Sequence[str], pad: int, limit: int) -> tuple[int, int]:
    """rich's `Table._measure_column` of padded plain cells, at most `limit` wide."""
    if limit < 1:
        return 0, 0
    lows, highs = [], []
    for cell in cells:
        if limit - pad < 1:
            low, high = limit, limit
        else:
            words = cell.split()
            high = len(cell)
            low = max(len(word) for word in words) if words else high
            low, high = _normal(low, high, limit)
            low, high = min(low + pad, limit), min(high + pad, limit)
        low, high = _normal(low, high, limit)
        lows.append(low)
        highs.append(high)
    return min(max(lows), limit), min(max(highs), limit)


def _normal(low: int, high: int, limit: int) -> tuple[int, int]:
    """`Measurement.get`'s normalize, with_maximum(limit), (0, 0) when empty, normalize."""
    low = min(max(0, low), high)
    low, high = max(0, low), max(0, low, high)
    low, high = min(low, limit), min(high, limit)
    if high < 1:
        return 0, 0
    low = min(max(0, low), high)
    return max(0, low), max(0, low, high)


def _collapse(widths: list[int], limit: int) -> list[int]:
    """rich's `Table._collapse_widths`, every column wrapable."""
    total = sum(widths)
    excess = total - limit
    while total and excess > 0:
        widest = max(widths)
        second = max((w for w in widths if w != widest), default=0)
        difference = widest - second
        ratios = [1 if w == widest else 0 for w in widths]
        if not difference:
            break
        widths = _ratio_reduce(excess, ratios, [min(excess, difference)] * len(widths), widths)
        total = sum(widths)
        excess = total - limit
    return widths


def _ratio_reduce(
    total: int, ratios: list[int], maximums: list[int], values: list[int]
) -> list[int]:
    """rich's `_ratio.ratio_reduce`."""
    ratios = [ratio if maximum else 0 for ratio, maximum in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    result = []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            result.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            result.append(value)
    return result
