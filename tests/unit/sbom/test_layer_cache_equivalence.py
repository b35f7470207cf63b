"""Random layer stacks: cached layer changes give the files the reading against lower layers gave.

The oracle is socle's reading before the cache (each layer read against the
files below it, as `git show 9d9d3e0:src/socle/sbom/layers.py` has it), kept
here verbatim in substance: the cache must not change what an inventory sees.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from socle.sbom.cache import dump, load
from socle.sbom.layers import (
    OPAQUE,
    WHITEOUT,
    Found,
    Link,
    Node,
    TooLarge,
    ancestors,
    normalize,
    read_files,
    read_layer,
)
from tests.unit.sbom.test_sbom import Hardlink, Member, Symlink, tar_layer

LIMIT = 4
PATHS = ("a", "a/b", "a/b/s.jar", "a/t.jar", "a/b/c", "c.jar", "d", "d/e.jar", "l.jar")
CONTENT = (b"1", b"22", b"too large")


class FakeProbe:
    """Wants `*.jar` (up to LIMIT bytes), keeps links named `l.jar` or `a/b`, parses to text."""

    version = "fake-1"

    def limit(self, path: str) -> int | None:
        return LIMIT if path.endswith(".jar") else None

    def parse(self, path: str, data: bytes) -> object | None:
        return None if data == b"1" else data.decode()

    def keeps_link(self, path: str) -> bool:
        return path in ("l.jar", "a/b")

    def encode(self, value: object) -> object:
        return value

    def decode(self, doc: object) -> object:
        return str(doc)


# --- the oracle: the reading before the cache ------------------------------------------------


@dataclass
class OldChange:
    added: dict[str, Node] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    emptied: set[str] = field(default_factory=set)
    replaced: set[str] = field(default_factory=set)

    def apply(self, files: dict[str, Node]) -> None:
        if self.hidden or self.emptied or self.replaced:
            for path in [p for p in files if self._removes(p)]:
                del files[path]
        files.update(self.added)

    def _removes(self, path: str) -> bool:
        if path in self.hidden or path in self.replaced:
            return True
        return any(parent in self.hidden or parent in self.emptied for parent in ancestors(path))


def old_read_files(layers: list[Path], probe: FakeProbe) -> dict[str, Node]:
    files: dict[str, Node] = {}
    for layer in layers:
        old_read_layer(layer, probe, files).apply(files)
    return files


def old_read_layer(layer: Path, probe: FakeProbe, below: dict[str, Node]) -> OldChange:
    folders = {parent for path in below for parent in ancestors(path)}
    change = OldChange()
    with tarfile.open(layer, mode="r|*") as tar:
        for member in tar:
            path = normalize(member.name)
            parent, _, base = path.rpartition("/")
            if base == OPAQUE:
                change.emptied.add(parent)
                continue
            if base.startswith(WHITEOUT):
                change.hidden.add(posixpath.join(parent, base[len(WHITEOUT) :]))
                continue
            if member.isdir():
                if path in below:
                    change.replaced.add(path)
                continue
            if path in folders:
                change.hidden.add(path)
            node = old_node(member, path, tar, probe, change, below)
            if node is not None:
                change.added[path] = node
    return change


def old_node(
    member: tarfile.TarInfo,
    path: str,
    tar: tarfile.TarFile,
    probe: FakeProbe,
    change: OldChange,
    below: dict[str, Node],
) -> Node | None:
    if member.issym():
        return Link(member.linkname) if probe.keeps_link(path) else None
    if member.islnk():
        target = normalize(member.linkname)
        return change.added.get(target) or below.get(target)
    limit = probe.limit(path)
    if not member.isfile() or limit is None:
        return None
    if member.size > limit:
        return Found(TooLarge(member.size, limit))
    stream = tar.extractfile(member)
    assert stream is not None
    value = probe.parse(path, stream.read())
    return None if value is None else Found(value)


# --- random layers ---------------------------------------------------------------------------

paths = st.sampled_from(PATHS)
members: st.SearchStrategy[tuple[str, Member]] = st.one_of(
    st.tuples(paths, st.none()),  # a folder
    st.tuples(paths, st.sampled_from(CONTENT)),
    st.tuples(paths, st.builds(Symlink, st.sampled_from(("a", "c.jar", "/d", "b")))),
    st.tuples(paths, st.builds(Hardlink, paths)),
    st.tuples(paths.map(lambda p: posixpath.join(posixpath.dirname(p), WHITEOUT + "x")), st.just(b"")),
    st.tuples(paths.map(lambda p: posixpath.join(p, WHITEOUT + "b")), st.just(b"")),
    st.tuples(paths.map(lambda p: posixpath.join(p, OPAQUE)), st.just(b"")),
    st.tuples(paths.map(lambda p: posixpath.join(posixpath.dirname(p), WHITEOUT + posixpath.basename(p))), st.just(b"")),
)  # fmt: skip
layer_lists = st.lists(st.lists(members, max_size=10), min_size=1, max_size=4)


def write_layers(folder: Path, layers: list[list[tuple[str, Member]]]) -> list[Path]:
    blobs = []
    for index, entries in enumerate(layers):
        blob = folder / f"layer{index}.tar"
        # duplicate names in one layer are allowed (the later one wins)
        blob.write_bytes(tar_layer_with_duplicates(entries))
        blobs.append(blob)
    return blobs


def tar_layer_with_duplicates(entries: list[tuple[str, Member]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, member in entries:
            with tarfile.open(fileobj=io.BytesIO(tar_layer({name: member}))) as one:
                info = one.next()
                assert info is not None
                tar.addfile(info, one.extractfile(info) if info.isfile() else None)
    return buf.getvalue()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(layer_lists)
def test_cached_changes_give_the_files_the_old_reading_gave(
    layers: list[list[tuple[str, Member]]],
) -> None:
    probe = FakeProbe()
    with tempfile.TemporaryDirectory() as tmp:
        blobs = write_layers(Path(tmp), layers)
        expected = old_read_files(blobs, probe)

        assert read_files(blobs, probe) == expected
        files: dict[str, Node] = {}
        for index, blob in enumerate(blobs):
            digest = f"sha256:{index:064x}"
            doc = json.loads(json.dumps(dump(read_layer(blob, probe), digest, probe)))
            load(doc, digest, probe).apply(files)
        assert files == expected


def test_duplicate_names_and_links_to_lower_layers_are_covered() -> None:
    """The cases the cache has to defer to the lower files, checked by hand once."""
    layers: list[list[tuple[str, Member]]] = [
        [("a/t.jar", b"22")],
        [("c.jar", b"22"), ("c.jar", Hardlink("a/x.jar")), ("d/e.jar", Hardlink("a/t.jar"))],
        [("a/t.jar", b"1"), ("l.jar", Hardlink("a/t.jar"))],  # the lower a/t.jar, not the new
    ]
    probe = FakeProbe()
    with tempfile.TemporaryDirectory() as tmp:
        blobs = write_layers(Path(tmp), layers)
        files = read_files(blobs, probe)
        assert files == old_read_files(blobs, probe)
    assert files == {
        "a/t.jar": Found("22"),
        "c.jar": Found("22"),
        "d/e.jar": Found("22"),
        "l.jar": Found("22"),
    }
