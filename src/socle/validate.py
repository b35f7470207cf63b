"""Load a catalog from disk and derive its graph, gathering every problem into one error.

The I/O side of :mod:`socle.core.loader`: it reads the files and names the scanners.
"""

from __future__ import annotations

from pathlib import Path

from socle.core.catalog import Catalog
from socle.core.convention import derive
from socle.core.graph import Graph, image_order
from socle.core.loader import load
from socle.errors import CatalogError, InputError
from socle.oci.reference import registry_host_problem
from socle.scan import SCANNERS


class LocalFiles:
    """The catalog's files as they are on this machine."""

    def read_text(self, path: Path) -> str:
        return path.read_text(encoding="utf-8")

    def is_file(self, path: Path) -> bool:
        return path.is_file()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()


def validate(path: Path, *, registry: str | None = None) -> tuple[Catalog, Graph]:
    """The catalog at `path` and its variant graph.

    Raises CatalogError listing every problem (syntax, unknown keys, unknown
    parents, cycles, tag collisions, missing files) when there is any.
    `registry` overrides the catalog's registry host; InputError if it is no host.
    """
    if registry and (problem := registry_host_problem(registry)):
        raise InputError(f"registry {registry!r} of --registry or SOCLE_REGISTRY {problem}")
    catalog, problems = load(path, files=LocalFiles(), scanners=SCANNERS)
    order, cycle_problems = image_order(catalog)
    variants, tag_problems = derive(catalog, order)
    problems += cycle_problems + tag_problems
    if problems:
        raise CatalogError(problems)
    if registry:
        catalog = catalog.with_registry(registry)
    return catalog, Graph(tuple(variants))
