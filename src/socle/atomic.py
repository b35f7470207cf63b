"""Atomic file writes: a reader sees the old content or the new, never half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` in one rename, creating its folder.

    The temporary file sits beside `path` (same filesystem, so the rename is
    atomic) and has a unique name, so concurrent writers never share it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    """:func:`write_bytes` for UTF-8 text."""
    write_bytes(path, text.encode(), mode=mode)


def move_into_place(tmp: Path | str, path: Path, *, mode: int | None = None) -> None:
    """Rename a finished temporary file onto `path` (same filesystem), or remove it on failure."""
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
