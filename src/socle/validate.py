"""Load a catalog and derive its graph, gathering every problem into one error."""

from __future__ import annotations

from pathlib import Path

from socle.catalog import Catalog
from socle.convention import derive
from socle.errors import CatalogError
from socle.graph import Graph, image_order
from socle.loader import load


def validate(path: Path, *, registry: str | None = None) -> tuple[Catalog, Graph]:
    """The catalog at `path` and its variant graph.

    Raises CatalogError listing every problem (syntax, unknown keys, unknown
    parents, cycles, tag collisions, missing files) when there is any.
    `registry` overrides the catalog's registry host.
    """
    catalog, problems = load(path)
    order, cycle_problems = image_order(catalog)
    variants, tag_problems = derive(catalog, order)
    problems += cycle_problems + tag_problems
    if problems:
        raise CatalogError(problems)
    if registry:
        catalog = catalog.with_registry(registry)
    return catalog, Graph(tuple(variants))
