"""The lineage graph as SVG, rendered on the server from the overview's rows.

A layered layout: one column per graph level (roots on the left), each variant a
box coloured by its status and linked to its image page, each child joined to
its parent by a curve. Within a column, variants sit in their parents' order,
so a family stays together and curves seldom cross. No script, no style
attribute: colours are presentation attributes, so the strict CSP holds and the
file stands alone as /lineage.svg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from socle.history.store import StateView

COLOURS = {
    "current": "#1a7f37",
    "stale": "#b25e09",
    "vulnerable": "#c4320a",
    "unsigned": "#7a2e8e",
    "failed": "#b42318",
    "missing": "#667085",
}
NODE_W, NODE_H = 220, 30
GAP_X, GAP_Y = 70, 10
MARGIN = 12
LABEL_CHARS = 30


@dataclass(frozen=True)
class Node:
    state: StateView
    x: int
    y: int


def layout(states: Sequence[StateView]) -> list[Node]:
    """Positions: x by level, y by order within the level (parents' order first)."""
    by_level: dict[int, list[StateView]] = {}
    for state in states:
        by_level.setdefault(state.level, []).append(state)
    rank: dict[str, int] = {}
    nodes: list[Node] = []
    for column, level in enumerate(sorted(by_level)):
        ordered = sorted(
            by_level[level],
            key=lambda s: (rank.get(s.parent, -1) if s.parent else -1, s.image, s.key),
        )
        for row, state in enumerate(ordered):
            rank[state.key] = row
            nodes.append(
                Node(
                    state,
                    MARGIN + column * (NODE_W + GAP_X),
                    MARGIN + row * (NODE_H + GAP_Y),
                )
            )
    return nodes


def image_href(key: str) -> str:
    return "/images/" + quote(key, safe=":@+")


def render(states: Sequence[StateView]) -> str:
    """The whole graph as one standalone SVG document."""
    nodes = layout(states)
    width = max((n.x + NODE_W for n in nodes), default=NODE_W) + MARGIN
    height = max((n.y + NODE_H for n in nodes), default=NODE_H) + MARGIN
    where = {n.state.key: n for n in nodes}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="lineage of {len(nodes)} variants">',
        '<g class="edges" fill="none" stroke="#98a2b3" stroke-width="1.2">',
    ]
    for node in nodes:
        parent = where.get(node.state.parent or "")
        if parent is None:
            continue
        x1, y1 = parent.x + NODE_W, parent.y + NODE_H // 2
        x2, y2 = node.x, node.y + NODE_H // 2
        middle = (x1 + x2) // 2
        parts.append(f'<path d="M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"/>')
    parts.append("</g>")
    parts.append('<g class="nodes">')
    for node in nodes:
        state = node.state
        colour = COLOURS.get(state.status, COLOURS["missing"])
        label = state.key if len(state.key) <= LABEL_CHARS else state.key[: LABEL_CHARS - 1] + "…"
        title = f"{state.key}: {state.status}"
        if state.reasons:
            title += " — " + "; ".join(state.reasons)
        parts.append(
            f'<a href={quoteattr(image_href(state.key))} class="node" '
            f"data-key={quoteattr(state.key)} data-status={quoteattr(state.status)}>"
            f"<title>{escape(title)}</title>"
            f'<rect x="{node.x}" y="{node.y}" width="{NODE_W}" height="{NODE_H}" rx="4" '
            f'fill="{colour}"/>'
            f'<text x="{node.x + 8}" y="{node.y + NODE_H // 2 + 4}" fill="#fff" '
            f'font-family="ui-monospace, monospace" font-size="12">{escape(label)}</text></a>'
        )
    parts.append("</g></svg>")
    return "\n".join(parts)
