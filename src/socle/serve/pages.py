"""Console routes: pages (being written)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from socle.serve.console import Console


def routes(console: Console) -> list[BaseRoute]:
    return []
