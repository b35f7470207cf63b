"""The lineage SVG: a layered layout, one linked node per variant, coloured by status."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from socle.history.store import StateView
from socle.serve.lineage import COLOURS, NODE_W, layout, render

SVG = "{http://www.w3.org/2000/svg}"


def state(key: str, parent: str | None, level: int, status: str = "current") -> StateView:
    return StateView(
        key, key.split(":")[0], "t/x", parent, level, (), None, None, None, None, status, ()
    )


STATES = [
    state("base:1", None, 0),
    state("zeta:1-base1", "base:1", 1, "stale"),
    state("other:1", None, 0, "failed"),
    state("alpha:1-other1", "other:1", 1, "missing"),
    state("leaf:1-zeta1", "zeta:1-base1", 2, "vulnerable"),
]


def test_levels_are_columns_and_children_follow_their_parents_order() -> None:
    nodes = {n.state.key: n for n in layout(STATES)}
    assert (
        nodes["base:1"].x == nodes["other:1"].x < nodes["zeta:1-base1"].x < nodes["leaf:1-zeta1"].x
    )
    assert nodes["base:1"].y < nodes["other:1"].y
    # alpha sorts before zeta by name, but its parent sits lower: it follows its parent.
    assert nodes["zeta:1-base1"].y < nodes["alpha:1-other1"].y
    assert nodes["zeta:1-base1"].x - nodes["base:1"].x > NODE_W


def test_the_svg_parses_with_one_link_per_variant_and_an_edge_per_child() -> None:
    root = ET.fromstring(render(STATES))
    links = root.findall(f".//{SVG}a")
    assert sorted(a.get("data-key") or "" for a in links) == sorted(s.key for s in STATES)
    for link in links:
        key = link.get("data-key")
        assert link.get("href") == f"/images/{key}"
        rect = link.find(f"{SVG}rect")
        assert rect is not None and rect.get("fill") == COLOURS[link.get("data-status") or ""]
        title = link.find(f"{SVG}title")
        assert title is not None and key in (title.text or "")
    assert len(root.findall(f".//{SVG}path")) == 3


def test_labels_and_links_are_escaped() -> None:
    svg = render([state('x:<b>&"', None, 0)])
    ET.fromstring(svg)  # still well-formed
    assert "<b>" not in svg and re.search(r'href="/images/x:%3Cb%3E%26%22"', svg)


def test_an_empty_catalog_is_still_an_svg() -> None:
    root = ET.fromstring(render([]))
    assert root.tag == f"{SVG}svg" and not root.findall(f".//{SVG}a")
