"""From a registry push to the images that must follow it."""

from __future__ import annotations

from dataclasses import dataclass

from socle.core.catalog import Catalog
from socle.core.convention import Variant
from socle.core.graph import Graph
from socle.oci.reference import Reference


@dataclass(frozen=True)
class Pushed:
    """A manifest pushed to a repository: by tag (`tag` set) or by digest only."""

    repository: str
    tag: str | None
    digest: str
    registry: str | None = None
    """The registry host the pusher used, when the notification says."""

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}" if self.registry else self.repository
        return f"{name}{f':{self.tag}' if self.tag else ''}@{self.digest}"


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
