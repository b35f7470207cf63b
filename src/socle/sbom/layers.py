"""An image's final files, read from its layers without extracting or running anything.

Layers are tar streams applied bottom first. Only the paths a :class:`Probe`
asks for are kept (parsed as they stream past); the OCI whiteouts of each
layer hide what lower layers had: `.wh.NAME` removes NAME and everything under
it, `.wh..wh..opq` empties its folder, and a non-folder entry replaces a lower
folder with all its content.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from socle.errors import InputError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_LINK_HOPS = 8
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


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


@dataclass
class _LayerChange:
    """What one layer does to the files below it."""

    added: dict[str, Node] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)  # the path and everything under it
    emptied: set[str] = field(default_factory=set)  # everything under the folder
    replaced: set[str] = field(default_factory=set)  # the path itself only

    def apply(self, files: dict[str, Node]) -> None:
        if self.hidden or self.emptied or self.replaced:
            for path in [p for p in files if self._removes(p)]:
                del files[path]
        files.update(self.added)

    def _removes(self, path: str) -> bool:
        if path in self.hidden or path in self.replaced:
            return True
        return any(parent in self.hidden or parent in self.emptied for parent in ancestors(path))


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
        _read_layer(layer, probe, files).apply(files)
    return files


def _read_layer(layer: Path, probe: Probe, below: dict[str, Node]) -> _LayerChange:
    folders = {parent for path in below for parent in ancestors(path)}
    change = _LayerChange()
    with layer.open("rb") as raw:
        _refuse_zstd(raw, layer)
        try:
            with tarfile.open(fileobj=raw, mode="r|*") as tar:
                for member in tar:
                    _note(member, tar, probe, change, below, folders)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(f"cannot read the layer {layer.name}: {exc}") from None
    return change


def _note(
    member: tarfile.TarInfo,
    tar: tarfile.TarFile,
    probe: Probe,
    change: _LayerChange,
    below: dict[str, Node],
    folders: set[str],
) -> None:
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
        if path in below:
            change.replaced.add(path)
        return
    if path in folders:
        change.hidden.add(path)
    node = _node(member, path, tar, probe, change, below)
    if node is not None:
        change.added[path] = node


def _node(
    member: tarfile.TarInfo,
    path: str,
    tar: tarfile.TarFile,
    probe: Probe,
    change: _LayerChange,
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
    if stream is None:
        return None
    value = probe.parse(path, stream.read())
    return None if value is None else Found(value)


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
