"""Layer changes cached by the layer's digest, so a child image reads only its own layers.

A layer is content-addressed: what it changes (its entries of interest,
whiteouts and parsed files, see :class:`~socle.sbom.layers.LayerChange`)
never changes for a digest, so an entry is never stale. The key is the
layer's diff_id (the digest of its uncompressed tar, which survives the
recompression a builder applies to a parent's layers) when the config names
one, checked against the content before an entry is written; else the blob's
digest. It depends on the
parsers, though: the key carries the probe's version (a hash of their code),
so a new socle reads its layers again. Entries are written atomically; an
unreadable entry is read from the layer again, and a cache that cannot be
written only costs time.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from socle import atomic
from socle.sbom.layers import (
    Deferred,
    Entry,
    Found,
    LayerChange,
    Link,
    Node,
    Probe,
    TooLarge,
    read_layer_content,
)
from socle.sbom.layers import read_layer as read_blob

FORMAT = 1
_DIGEST = re.compile(r"^(?P<algo>[a-z0-9]+(?:[+._-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]{32,})$")
_SEP = "\0"  # no path holds a NUL


class CachingProbe(Probe, Protocol):
    """A probe whose parsed values can be written to the cache and read back."""

    @property
    def version(self) -> str:
        """Changes whenever what the probe keeps or how it parses does."""
        ...

    def encode(self, value: object) -> object:
        """`value` (from :meth:`parse`) as JSON."""
        ...

    def decode(self, doc: object) -> object:
        """The value :meth:`encode` gave `doc` for; ValueError when `doc` is not one."""
        ...


@dataclass(frozen=True)
class LayerCache:
    """Cached layer changes under `root`: `<probe version>/<algo>/<hex>.json`."""

    root: Path

    @classmethod
    def under(cls, data_dir: Path) -> LayerCache:
        """The cache in socle's data folder `data_dir`: `cache/sbom-layers/`."""
        return cls(data_dir / "cache" / "sbom-layers")

    def path(self, digest: str, probe: CachingProbe) -> Path | None:
        """Where the change of the layer `digest` is kept (None for a digest socle can't use)."""
        match = _DIGEST.match(digest)
        if match is None:
            return None
        return self.root / probe.version / match["algo"] / f"{match['hex']}.json"

    def read_layer(
        self, blob: Path, digest: str, probe: CachingProbe, *, diff_id: str | None = None
    ) -> tuple[LayerChange, bool]:
        """The change of the layer blob `blob`; True when it came from the cache.

        With the `diff_id` the image's config names for the layer, the entry is
        kept under it, so the same content compressed again (as a builder does
        with a parent's layers) is found too; it is written only when the
        content read hashes to it.
        """
        key = diff_id if diff_id and _DIGEST.match(diff_id) else digest
        path = self.path(key, probe)
        if path is None:
            return read_blob(blob, probe), False
        cached = self._load(path, key, probe)
        if cached is not None:
            return cached, True
        if key == digest:
            change = read_blob(blob, probe)
        else:
            change, content = read_layer_content(blob, probe)
            if content != key:
                return change, False  # not the content the config names: nothing to share
        # a read-only or full disk makes the next run slower, not wrong
        with contextlib.suppress(OSError):
            atomic.write_text(path, json.dumps(dump(change, key, probe)))
        return change, False

    def _load(self, path: Path, digest: str, probe: CachingProbe) -> LayerChange | None:
        try:
            doc = json.loads(path.read_bytes())
            return load(doc, digest, probe)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None  # torn by hand or by an older socle: read the layer again


def dump(change: LayerChange, digest: str, probe: CachingProbe) -> dict[str, object]:
    """The JSON of a layer's change."""
    return {
        "format": FORMAT,
        "probe": probe.version,
        "digest": digest,
        "added": {path: _entry(entry, probe) for path, entry in change.added.items()},
        "hidden": sorted(change.hidden),
        "emptied": sorted(change.emptied),
        "folders": _SEP.join(sorted(change.folders)),
        "others": _SEP.join(sorted(change.others)),
    }


def load(doc: object, digest: str, probe: CachingProbe) -> LayerChange:
    """The change :func:`dump` wrote; ValueError (or a lookup error) when it is not one."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a layer change of this format")
    if doc.get("probe") != probe.version or doc.get("digest") != digest:
        raise ValueError("a layer change of another layer or another probe")
    return LayerChange(
        added={str(path): _decode_entry(e, probe) for path, e in dict(doc["added"]).items()},
        hidden={str(p) for p in doc["hidden"]},
        emptied={str(p) for p in doc["emptied"]},
        folders=_split(doc["folders"]),
        others=_split(doc["others"]),
    )


def _split(text: object) -> set[str]:
    if not isinstance(text, str):
        raise ValueError("a path list must be a string")
    return set(text.split(_SEP)) if text else set()


def _entry(entry: Entry, probe: CachingProbe) -> dict[str, object]:
    if isinstance(entry, Deferred):
        return {
            "deferred": [c if isinstance(c, str) else _node(c, probe) for c in entry.candidates]
        }
    return _node(entry, probe)


def _node(node: Node, probe: CachingProbe) -> dict[str, object]:
    if isinstance(node, Link):
        return {"link": node.target}
    if isinstance(node.value, TooLarge):
        return {"too-large": [node.value.size, node.value.limit]}
    return {"found": probe.encode(node.value)}


def _decode_entry(doc: object, probe: CachingProbe) -> Entry:
    if isinstance(doc, dict) and "deferred" in doc:
        return Deferred(
            tuple(c if isinstance(c, str) else _decode_node(c, probe) for c in doc["deferred"])
        )
    return _decode_node(doc, probe)


def _decode_node(doc: object, probe: CachingProbe) -> Node:
    if not isinstance(doc, dict):
        raise ValueError("a node must be an object")
    if "link" in doc:
        return Link(str(doc["link"]))
    if "too-large" in doc:
        size, limit = doc["too-large"]
        return Found(TooLarge(int(size), int(limit)))
    return Found(probe.decode(doc["found"]))
