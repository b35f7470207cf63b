"""The overview's rows, read from the registry (being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from socle.serve.console import Console


def refresh(console: Console) -> None:
    """Read every variant's state from the registry into the history's `variant_states`."""
