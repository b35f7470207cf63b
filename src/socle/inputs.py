"""What determines each variant's result, read from disk and hashed.

This is the I/O half of fingerprinting: it turns Dockerfiles, build contexts,
build args, bootstrap parameters and upstream pins into named digests. The pure
half (combining them with the parent's fingerprint) is in :mod:`socle.core.plan`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from socle.canonical import canonical_json, sha256_digest
from socle.core.catalog import Version
from socle.core.convention import Variant
from socle.core.plan import Components
from socle.errors import InputError

CHUNK = 1 << 20


class InputReader:
    """Hashes variant inputs, reading each file and context folder once per run."""

    def __init__(self) -> None:
        self._files: dict[Path, str] = {}
        self._trees: dict[tuple[Path, Path | None], str] = {}

    def components(self, variant: Variant) -> Components:
        """Named digests of everything but the parent that decides `variant`'s result."""
        return components_of(variant.version, self)

    def file_digest(self, path: Path) -> str:
        if path not in self._files:
            try:
                self._files[path] = file_sha256(path)
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        return self._files[path]

    def tree_digest(self, root: Path, exclude: Path | None) -> str:
        """Digest of a build context: paths, executable bits, link targets, contents."""
        key = (root, exclude)
        if key not in self._trees:
            entries = [
                (rel, kind, detail, self.file_digest(root / rel) if kind == "file" else "")
                for rel, kind, detail in walk(root, exclude)
            ]
            self._trees[key] = sha256_digest(canonical_json(entries))
        return self._trees[key]


def components_of(version: Version, reader: InputReader) -> Components:
    # Declared architectures are an input (an image of none declared keeps its fingerprint).
    arches = (("architectures", ",".join(version.architectures)),) if version.architectures else ()
    if version.bootstrap is not None:
        parameters = version.bootstrap.parameters()
        if version.architectures:  # each platform's bootstrap gets its own architecture
            del parameters["architecture"]
        return (("bootstrap", sha256_digest(canonical_json(parameters))), *arches)
    if version.upstream is not None:
        pin = version.upstream.digest or f"unpinned:{version.upstream}"
        return (("upstream", pin), *arches)
    assert version.dockerfile is not None and version.context is not None
    return (
        ("args", sha256_digest(canonical_json(dict(version.build_args)))),
        ("context", reader.tree_digest(version.context, version.dockerfile)),
        ("dockerfile", reader.file_digest(version.dockerfile)),
        *arches,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def walk(root: Path, exclude: Path | None) -> Iterable[tuple[str, str, str]]:
    """(relative path, kind, detail) for every entry of a context, sorted, minus ignored ones.

    `.dockerignore` patterns are honoured the way the builders read them
    (fnmatch on the relative path or any of its parents; `!` exceptions are not).
    """
    ignored = dockerignore(root)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if path == exclude or is_ignored(rel, ignored):
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found.append((rel, "link", os.readlink(path)))
            else:
                executable = "x" if info.st_mode & 0o111 else ""
                found.append((rel, "file", executable))
    return found


def dockerignore(root: Path) -> list[str]:
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
            hint="save the .dockerignore as UTF-8",
        ) from None
    lines = (line.strip().rstrip("/") for line in text.splitlines())
    return [line.lstrip("/") for line in lines if line and not line.startswith(("#", "!"))]


def is_ignored(rel: str, patterns: list[str]) -> bool:
    if not patterns:
        return False
    parts = rel.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates)
