"""From a registry push to the images that must follow it."""

from __future__ import annotations

from dataclasses import dataclass

from socle.catalog import Catalog
from socle.convention import Variant
from socle.graph import Graph
from socle.oci.reference import Reference
from socle.watch import Pushed


@dataclass(frozen=True)
class Followers:
    """What a push means for the catalog."""

    pushed: list[Variant]  # catalog variants whose tags the push moved
    children: list[Variant]  # their direct children: the roots of the cascade
    upstream: list[str]  # upstream images (image:tag) the push moved: pins to update


def followers(catalog: Catalog, graph: Graph, push: Pushed) -> Followers:
    """The catalog variants a push touched, their children, and upstream tags it moved."""
    if push.registry not in (None, catalog.registry):
        pushed: list[Variant] = []
    else:
        pushed = [
            v
            for v in graph.variants
            if v.image.repository == push.repository and (push.tag is None or push.tag in v.tags)
        ]
    children = [c for v in pushed for c in graph.children(v)]
    upstream = []
    for _, _, source in catalog.upstreams():
        ref = Reference.parse(f"{source.image}:{source.tag}")
        same_place = push.registry in (None, ref.registry) and push.repository == ref.repository
        if same_place and push.tag in (None, source.tag):
            upstream.append(str(source))
    return Followers(pushed, children, upstream)
