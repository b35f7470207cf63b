"""The parent/child graph of variants: build order, ancestors, descendants."""

from __future__ import annotations

import graphlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from socle.core.catalog import Catalog
from socle.core.convention import Variant
from socle.errors import InputError, Problem


def image_order(catalog: Catalog) -> tuple[list[str], list[Problem]]:
    """Image names, parents first; each cycle is a problem naming every image in it.

    Images in a cycle, and their descendants, are left out of the order.
    """
    problems: list[Problem] = []
    blocked: set[str] = set()
    while True:
        try:
            return list(ordered(catalog, blocked).static_order()), problems
        except graphlib.CycleError as exc:
            cycle: list[str] = list(exc.args[1])
            first = catalog.by_name[cycle[0]].location
            message = f"parent cycle: {' -> '.join(cycle)}"
            problems.append(Problem(first.file, first.line, first.column, message))
            blocked |= set(cycle)


def ordered(catalog: Catalog, blocked: set[str]) -> graphlib.TopologicalSorter[str]:
    """A sorter over the images that neither are nor descend from a `blocked` one."""
    changed = True
    while changed:
        changed = False
        for image in catalog.images:
            if image.name not in blocked and image.parent_images() & blocked:
                blocked.add(image.name)
                changed = True
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for image in catalog.images:
        if image.name not in blocked:
            parents = sorted(p for p in image.parent_images() if p in catalog.by_name)
            sorter.add(image.name, *parents)
    return sorter


@dataclass(frozen=True)
class Graph:
    """Variants in build order (parents before children) with their links."""

    variants: tuple[Variant, ...]
    by_key: dict[str, Variant] = field(init=False, repr=False, compare=False)
    children_of: dict[str, tuple[Variant, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        children: dict[str, list[Variant]] = defaultdict(list)
        for v in self.variants:
            if v.parent is not None:
                children[v.parent.key].append(v)
        object.__setattr__(self, "by_key", {v.key: v for v in self.variants})
        object.__setattr__(self, "children_of", {k: tuple(c) for k, c in children.items()})

    def children(self, variant: Variant) -> tuple[Variant, ...]:
        return self.children_of.get(variant.key, ())

    def descendants(self, variant: Variant) -> Iterator[Variant]:
        """Every variant built on `variant`, directly or not, parents first."""
        stack = list(reversed(self.children(variant)))
        while stack:
            child = stack.pop()
            yield child
            stack.extend(reversed(self.children(child)))

    def ancestors(self, variant: Variant) -> list[Variant]:
        """The chain of parents, nearest first."""
        chain = []
        parent = variant.parent
        while parent is not None:
            chain.append(parent)
            parent = parent.parent
        return chain

    def roots(self) -> list[Variant]:
        return [v for v in self.variants if v.parent is None]

    def select(self, names: Iterable[str]) -> list[Variant]:
        """Variants matching `java` (all its variants), `java:8` (one tag) or a key.

        Raises InputError naming what matched nothing.
        """
        found: dict[str, Variant] = {}
        for name in names:
            image, _, tag = name.partition(":")
            matches = [
                v for v in self.variants if v.image.name == image and (not tag or tag in v.tags)
            ]
            if not matches:
                known = sorted({v.image.name for v in self.variants})
                raise InputError(
                    f"no image or tag {name!r} in the catalog",
                    hint=f"images are: {', '.join(known[:20])}",
                )
            found.update((v.key, v) for v in matches)
        return [v for v in self.variants if v.key in found]

    def levels(self) -> Sequence[Sequence[Variant]]:
        """Variants grouped by depth: everything in a level can build in parallel."""
        depth: dict[str, int] = {}
        grouped: dict[int, list[Variant]] = defaultdict(list)
        for v in self.variants:
            d = depth[v.parent.key] + 1 if v.parent is not None else 0
            depth[v.key] = d
            grouped[d].append(v)
        return [grouped[d] for d in sorted(grouped)]
