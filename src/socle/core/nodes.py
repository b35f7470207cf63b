"""Reading YAML with positions: every value keeps the file, line and column it came from.

The catalog, the pins file, image tests and the CVE policy are all read with
:class:`Reader`, so each problem anywhere is reported as `FILE:LINE:COL`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import yaml

from socle.errors import Problem

# libyaml's composer is ~10x faster; node marks are the same.
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Location:
    """Where something was declared, for error messages (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


Entries = dict[str, tuple[yaml.Node, yaml.Node]]


class Reader:
    """Walks YAML nodes, converting them to values and recording problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def where(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def error(self, node: yaml.Node, message: str) -> None:
        loc = self.where(node)
        self.problems.append(Problem(loc.file, loc.line, loc.column, message))

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> Entries:
        """A mapping's entries by key; unknown and duplicate keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping")
            return {}
        entries: Entries = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, f"a key in {what} must be a single value, not a list or mapping")
                continue
            key = str(key_node.value)
            if key in entries:
                self.error(key_node, f"duplicate key {key!r} in {what}")
                continue
            if allowed and key not in allowed:
                self.error(key_node, f"unknown key {key!r} in {what}{did_you_mean(key, allowed)}")
                continue
            entries[key] = (key_node, value_node)
        return entries

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.error(node, f"{what} must be a single value")
            return None
        return str(node.value)

    def strings(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        """A list of scalars (a lone scalar counts as a list of one)."""
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node, what)
            return [] if value is None else [(value, node)]
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list")
            return []
        items = [(self.scalar(item, f"each entry of {what}"), item) for item in node.value]
        return [(value, item) for value, item in items if value is not None]

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        value = self.scalar(node, what)
        if value is None:
            return None
        if value.lower() in ("true", "yes", "on"):
            return True
        if value.lower() in ("false", "no", "off"):
            return False
        self.error(node, f"{what} must be true or false, not {value!r}")
        return None


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; expected one of {', '.join(choices)}"
