"""An image's final files, read from its layers without extracting or running anything.

Layers are tar streams applied bottom first. Only the paths a :class:`Probe`
asks for are kept (parsed as they stream past); the OCI whiteouts of each
layer hide what lower layers had: `.wh.NAME` removes NAME and everything under
it, `.wh..wh..opq` empties its folder, and a non-folder entry replaces a lower
folder with all its content.
"""

from __future__ import annotations

import gzip
import hashlib
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from socle.errors import InputError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_LINK_HOPS = 8
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Found:
    """A file a probe parsed; `value` is whatever the probe made of it."""

    value: object


@dataclass(frozen=True)
class Link:
    """A symbolic link, kept so lookups can follow it."""

    target: str


@dataclass(frozen=True)
class TooLarge:
    """A wanted file bigger than its probe's limit: left unread, reported."""

    size: int
    limit: int


Node = Found | Link


class Probe(Protocol):
    """Chooses which files matter and parses them as they stream past."""

    def limit(self, path: str) -> int | None:
        """The largest size worth reading at `path`, or None to ignore the file."""
        ...

    def parse(self, path: str, data: bytes) -> object | None:
        """What the file at `path` says (None when it says nothing useful)."""
        ...

    def keeps_link(self, path: str) -> bool:
        """True when a symbolic link at `path` must be kept for lookups."""
        ...


@dataclass(frozen=True)
class Deferred:
    """A hard link whose target the layer itself did not provide: resolved when applied.

    `candidates` are tried in order, each a path in the files below or a node
    the layer already had; the first one present wins, and with none the link
    adds nothing (what reading the layer against those files gives).
    """

    candidates: tuple[str | Node, ...]


Entry = Node | Deferred


@dataclass
class LayerChange:
    """What one layer does to the files below it, read without looking at them.

    It depends only on the layer's bytes (and the probe), so it can be cached by
    the layer's digest; :meth:`apply` does the part that depends on the files
    below: a folder entry replaces a lower file, a non-folder entry replaces a
    lower folder with all its content, a hard link takes its target's node.
    """

    added: dict[str, Entry] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)  # the path and everything under it
    emptied: set[str] = field(default_factory=set)  # everything under the folder
    folders: set[str] = field(default_factory=set)  # every folder entry of the layer
    others: set[str] = field(default_factory=set)  # every non-folder entry of the layer

    def apply(self, files: dict[str, Node]) -> None:
        """Turn `files` (the files below) into the files this layer leaves."""
        added = {
            path: node for path, entry in self.added.items() if (node := _settle(entry, files))
        }
        below_folders = {parent for path in files for parent in ancestors(path)}
        hidden = self.hidden | (self.others & below_folders)
        replaced = {path for path in self.folders if path in files}
        if hidden or self.emptied or replaced:
            for path in [p for p in files if _removes(p, hidden, self.emptied, replaced)]:
                del files[path]
        files.update(added)


def _settle(entry: Entry, below: dict[str, Node]) -> Node | None:
    if not isinstance(entry, Deferred):
        return entry
    for candidate in entry.candidates:
        node = below.get(candidate) if isinstance(candidate, str) else candidate
        if node is not None:
            return node
    return None


def _removes(path: str, hidden: set[str], emptied: set[str], replaced: set[str]) -> bool:
    if path in hidden or path in replaced:
        return True
    return any(parent in hidden or parent in emptied for parent in ancestors(path))


def normalize(name: str) -> str:
    """A tar member name as a path relative to the root: `./etc/x/` → `etc/x`."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return path


def ancestors(path: str) -> Iterator[str]:
    """`a/b/c` → `a/b`, `a`."""
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


def read_files(layers: Iterable[Path], probe: Probe) -> dict[str, Node]:
    """The files `probe` wants, as the image's final filesystem has them."""
    files: dict[str, Node] = {}
    for layer in layers:
        read_layer(layer, probe).apply(files)
    return files


def read_layer(layer: Path, probe: Probe) -> LayerChange:
    """What the layer blob at `layer` changes, as far as `probe` cares."""
    change = LayerChange()
    with layer.open("rb") as raw:
        _refuse_zstd(raw, layer)
        try:
            with tarfile.open(fileobj=raw, mode="r|*") as tar:
                for member in tar:
                    _note(member, tar, probe, change)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(f"cannot read the layer {layer.name}: {exc}") from None
    return change


def read_layer_content(layer: Path, probe: Probe) -> tuple[LayerChange, str]:
    """:func:`read_layer`, and the digest of the uncompressed tar it read (its diff_id)."""
    change = LayerChange()
    with layer.open("rb") as raw:
        _refuse_zstd(raw, layer)
        try:
            gzipped = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if gzipped else nullcontext(raw) as plain:
                stream = _Hashing(plain)
                with tarfile.open(fileobj=stream, mode="r|*", bufsize=1 << 20) as tar:
                    for member in tar:
                        _note(member, tar, probe, change)
                stream.drain()  # the end-of-archive padding counts too
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(f"cannot read the layer {layer.name}: {exc}") from None
    return change, f"sha256:{stream.digest.hexdigest()}"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Hashing:
    """A stream read front to back (as `tarfile`'s stream mode does), hashing what it gives."""

    def __init__(self, stream: _Readable) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.position = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        self.position += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def tell(self) -> int:
        return self.position

    def write(self, data: bytes, /) -> int:
        raise OSError("read-only")

    def seek(self, position: int, /) -> int:
        raise OSError("not seekable")

    def close(self) -> None:
        pass


def _note(member: tarfile.TarInfo, tar: tarfile.TarFile, probe: Probe, change: LayerChange) -> None:
    path = normalize(member.name)
    if not path:
        return
    parent, _, base = path.rpartition("/")
    if base == OPAQUE:
        change.emptied.add(parent)
        return
    if base.startswith(WHITEOUT):
        change.hidden.add(posixpath.join(parent, base[len(WHITEOUT) :]))
        return
    if member.isdir():
        change.folders.add(path)
        return
    change.others.add(path)
    entry = _entry(member, path, tar, probe, change)
    if entry is None:
        return
    earlier = change.added.get(path)
    if isinstance(entry, Deferred) and earlier is not None:
        # a link that finds nothing leaves the layer's earlier entry at this path
        entry = Deferred(entry.candidates + _candidates(earlier))
    change.added[path] = entry


def _entry(
    member: tarfile.TarInfo, path: str, tar: tarfile.TarFile, probe: Probe, change: LayerChange
) -> Entry | None:
    if member.issym():
        return Link(member.linkname) if probe.keeps_link(path) else None
    if member.islnk():
        target = normalize(member.linkname)
        same_layer = change.added.get(target)
        if isinstance(same_layer, Found | Link):
            return same_layer
        # the target is in a lower layer (or the layer's copy is settled with the lower files)
        return Deferred((*(_candidates(same_layer) if same_layer else ()), target))
    limit = probe.limit(path)
    if not member.isfile() or limit is None:
        return None
    if member.size > limit:
        return Found(TooLarge(member.size, limit))
    stream = tar.extractfile(member)
    if stream is None:
        return None
    value = probe.parse(path, stream.read())
    return None if value is None else Found(value)


def _candidates(entry: Entry) -> tuple[str | Node, ...]:
    return entry.candidates if isinstance(entry, Deferred) else (entry,)


def _refuse_zstd(raw: IO[bytes], layer: Path) -> None:
    magic = raw.read(4)
    raw.seek(0)
    if magic == ZSTD_MAGIC:
        raise InputError(
            f"the layer {layer.name} is zstd-compressed, which socle cannot read yet",
            hint="push the image with gzip layers (buildah push --compression-format gzip)",
        )


def lookup(files: dict[str, Node], path: str) -> object | None:
    """The parsed value at `path`, following symbolic links on it and on its folders."""
    for _ in range(MAX_LINK_HOPS):
        node = files.get(path)
        if isinstance(node, Found):
            return node.value
        if isinstance(node, Link):
            path = _resolve(path, node.target)
            continue
        redirected = _through_linked_folder(files, path)
        if redirected is None:
            return None
        path = redirected
    return None


def _through_linked_folder(files: dict[str, Node], path: str) -> str | None:
    for folder in ancestors(path):
        node = files.get(folder)
        if isinstance(node, Link):
            return _resolve(folder, node.target) + path[len(folder) :]
    return None


def _resolve(link: str, target: str) -> str:
    base = "" if target.startswith("/") else posixpath.dirname(link)
    return normalize(posixpath.join(base, target))
