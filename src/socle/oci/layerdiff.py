"""What differs, file by file, between two layer blobs (gzipped or plain tars).

For `socle rebuild --verify`: when a rebuilt layer has another digest than the
published one, this says which paths were added, removed or changed, and how
(content, size, mode, owner, mtime, link target), without unpacking anything.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from socle.oci.errors import LayoutError

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One tar member as far as its meaning goes (its content by digest)."""

    kind: str
    size: int
    mode: int
    owner: tuple[int, int]
    mtime: int
    link: str
    content: str  # sha256 of a regular file's bytes, "" otherwise
    xattrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Change:
    """A path whose entry differs between the old and the new layer."""

    path: str
    old: Entry | None
    new: Entry | None

    @property
    def what(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"

    def describe(self) -> str:
        """One line: what happened to the path, with sizes and what changed."""
        if self.old is None:
            assert self.new is not None
            return f"added    {self.path} ({self.new.size} bytes)"
        if self.new is None:
            return f"removed  {self.path} ({self.old.size} bytes)"
        return f"changed  {self.path} ({self.old.size} -> {self.new.size} bytes: {self._how()})"

    def _how(self) -> str:
        old, new = self.old, self.new
        assert old is not None and new is not None
        parts = [
            label
            for label, differs in (
                ("type", old.kind != new.kind),
                ("content", old.content != new.content),
                ("mode", old.mode != new.mode),
                ("owner", old.owner != new.owner),
                ("link target", old.link != new.link),
                ("xattrs", old.xattrs != new.xattrs),
                ("mtime", old.mtime != new.mtime),
            )
            if differs
        ]
        return ", ".join(parts) or "tar header"


def layer_entries(blob: Path) -> dict[str, Entry]:
    """Every member of the layer blob at `blob`, by path (without a leading `./` or `/`)."""
    entries: dict[str, Entry] = {}
    with open_layer(blob) as raw:
        try:
            with tarfile.open(fileobj=raw, mode="r|") as tar:
                for member in tar:
                    entries[member.name.removeprefix("./").lstrip("/")] = _entry(tar, member)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise LayoutError(f"{blob} is not a readable layer: {exc}") from exc
    return entries


def changes(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> list[Change]:
    """The paths that differ, sorted by path."""
    return [
        Change(path, old.get(path), new.get(path))
        for path in sorted(set(old) | set(new))
        if old.get(path) != new.get(path)
    ]


def order_differs(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether two layers list the same paths in another order (a digest changes with it)."""
    return list(old) != list(new) and sorted(old) == sorted(new)


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Entry:
    content = ""
    if member.isreg():
        digest = hashlib.sha256()
        handle = tar.extractfile(member)
        if handle is not None:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        content = digest.hexdigest()
    xattrs = tuple(sorted((k, v) for k, v in member.pax_headers.items() if "xattr." in k))
    return Entry(
        kind=_kind(member),
        size=member.size if member.isreg() else 0,
        mode=member.mode,
        owner=(member.uid, member.gid),
        mtime=int(member.mtime),
        link=member.linkname,
        content=content,
        xattrs=xattrs,
    )


def _kind(member: tarfile.TarInfo) -> str:
    if member.isreg():
        return "file"
    if member.isdir():
        return "directory"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return "special"


@contextmanager
def open_layer(path: Path) -> Iterator[IO[bytes]]:
    """A layer blob opened for reading, decompressed when gzipped."""
    with path.open("rb") as handle:
        magic = handle.read(2)
        handle.seek(0)
        if magic != _GZIP_MAGIC:
            yield handle
            return
        with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
            yield cast(IO[bytes], unzipped)
