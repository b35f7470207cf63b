"""The variant graph as text, Mermaid or Graphviz DOT."""

from __future__ import annotations

from collections.abc import Iterator

from socle.core.convention import Variant
from socle.core.graph import Graph

FORMATS = ("text", "mermaid", "dot")


def draw(graph: Graph, fmt: str) -> str:
    """The graph in format `fmt` (one of FORMATS)."""
    lines = {"text": as_text, "mermaid": as_mermaid, "dot": as_dot}[fmt](graph)
    return "\n".join(lines)


def as_text(graph: Graph) -> Iterator[str]:
    """An indented tree, one variant a line with its other tags in brackets."""

    def walk(variant: Variant, depth: int) -> Iterator[str]:
        others = [t for t in variant.tags if t != variant.exact_tag]
        extra = f"  [{', '.join(others)}]" if others else ""
        yield f"{'  ' * depth}{variant.key}{extra}"
        for child in graph.children(variant):
            yield from walk(child, depth + 1)

    for root in graph.roots():
        yield from walk(root, 0)


def node_id(variant: Variant) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in variant.key)


def as_mermaid(graph: Graph) -> Iterator[str]:
    yield "graph TD"
    for v in graph.variants:
        yield f'  {node_id(v)}["{v.key}"]'
    for v in graph.variants:
        if v.parent is not None:
            yield f"  {node_id(v.parent)} --> {node_id(v)}"


def as_dot(graph: Graph) -> Iterator[str]:
    yield "digraph socle {"
    yield "  rankdir=LR;"
    yield "  node [shape=box];"
    for v in graph.variants:
        yield f'  "{v.key}";'
    for v in graph.variants:
        if v.parent is not None:
            yield f'  "{v.parent.key}" -> "{v.key}";'
    yield "}"
