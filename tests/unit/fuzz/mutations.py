"""Inputs for the fuzzers: random bytes and text, and mutations of valid examples.

Random input is refused by a parser's first check (not JSON, not YAML, no PEM
block); mutations of a valid document get past it and reach the code that
walks the structure, which is where the crashes hide.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import event, settings
from hypothesis import strategies as st

from socle.errors import CatalogError, SocleError

T = TypeVar("T")

# Every fuzzer in this folder: bounded, no per-example deadline (scrypt and
# validation are slow on a loaded 2-core machine), and derandomized so a run
# is reproducible; the explicit @example inputs are the regressions.
# SOCLE_FUZZ_EXAMPLES=5000 explores further, with fresh random inputs.
_DEEPER = os.environ.get("SOCLE_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_DEEPER) if _DEEPER else 150, deadline=None, derandomize=not _DEEPER
)

# Values JSON and YAML can carry, including the awkward ones: huge and
# non-finite numbers, empty containers, control characters.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "0", "-1", "1e400", "sha256:", "a" * 300, "\x00", "é"])
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def mutated_bytes(seed: bytes) -> st.SearchStrategy[bytes]:
    """`seed` after a few byte edits: replace, insert, delete a span, or truncate."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data)))
            edit = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
            chunk = draw(st.binary(min_size=1, max_size=4))
            if edit == "replace":
                data[at : at + len(chunk)] = chunk
            elif edit == "insert":
                data[at:at] = chunk
            elif edit == "delete":
                del data[at : at + draw(st.integers(1, 16))]
            else:
                del data[at:]
        return bytes(data)

    return build()


def mutated_text(seed: str) -> st.SearchStrategy[str]:
    """`seed` after a few character edits (any Unicode, control characters included)."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        text = seed
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(text)))
            chunk = draw(st.text(min_size=1, max_size=4) | st.sampled_from(list(":-[]{}&*!|>'\"%@`#,\n\t ")))
            end = at + draw(st.integers(0, 8))
            text = text[:at] + chunk + text[end:]
        return text

    return build()


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `doc` (the root is `()`)."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


def mutated_document(seed: Any) -> st.SearchStrategy[Any]:
    """`seed` (JSON-like) with a few values replaced by random ones, or deleted."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        doc = json.loads(json.dumps(seed))
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(_paths(doc)))
            if not path:
                doc = draw(VALUES)
                continue
            parent = doc
            try:
                for step in path[:-1]:
                    parent = parent[step]
                if draw(st.booleans()):
                    parent[path[-1]] = draw(VALUES)
                else:
                    del parent[path[-1]]
            except (KeyError, IndexError, TypeError):
                continue  # an earlier edit removed this path
        return doc

    return build()


def json_bytes(seed: Any) -> st.SearchStrategy[bytes]:
    """JSON documents: mutations of `seed`, random values, and byte edits of `seed`."""
    encoded = json.dumps(seed).encode()
    return st.one_of(
        mutated_document(seed).map(lambda doc: json.dumps(doc).encode()),
        VALUES.map(lambda doc: json.dumps(doc).encode()),
        mutated_bytes(encoded),
        st.binary(max_size=64),
    )


def refuses_cleanly(parse: Callable[[], T]) -> T | SocleError:
    """Run `parse`; a refusal must be socle's error, in lines a user can read.

    Any other exception propagates and fails the fuzzer with the input.
    """
    try:
        value = parse()
    except SocleError as exc:
        assert_readable(exc)
        event(f"refused: {type(exc).__name__}")
        return exc
    event("parsed")
    return value


def assert_readable(exc: SocleError) -> None:
    """One non-empty line per message (each located problem for a catalog)."""
    lines = [str(p) for p in exc.problems] if isinstance(exc, CatalogError) else [exc.message]
    assert lines, "an error with no problem in it"
    for line in lines:
        assert line.strip(), "an empty error message"
        assert "\n" not in line, f"a message on several lines: {line!r}"
        assert "Traceback" not in line
