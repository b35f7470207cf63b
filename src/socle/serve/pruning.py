"""The console's prune button: socle.retention, recorded as a run (being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from socle.serve.console import Console
    from socle.serve.runner import RunRequest


def prune(console: Console, request: RunRequest) -> None:
    raise NotImplementedError("prune from the console is being written")
