"""Write an exported pipeline to a folder, never over files socle did not write.

The folder keeps a list of what socle wrote (`.socle-export.json`, path ->
SHA-256). A new export rewrites those files and removes the ones it no longer
produces. A file it would overwrite or remove that socle did not write, or that
was edited since, makes the export refuse, unless `force`. Other files are left
alone and do not block: a GitHub workflow must be exported into the repository
itself, beside everything else the repository holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from socle.atomic import write_text
from socle.canonical import sha256_digest
from socle.errors import InputError

RECORD = ".socle-export.json"


def written_before(folder: Path) -> dict[str, str]:
    """What the last export wrote here, from its record (empty when there is none)."""
    record = folder / RECORD
    if not record.exists():
        return {}
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
        return {str(k): str(v) for k, v in files.items()}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{record}: not an export record socle can read ({exc})",
            hint="delete it if socle did not write it, or pass --force",
        ) from exc


def foreign(folder: Path, owned: Mapping[str, str], names: Iterable[str]) -> list[str]:
    """Of `names` (paths the export touches), those socle did not write or that changed since."""
    found = []
    for name in sorted(set(names)):
        path = folder / name
        if path.exists() and (
            not path.is_file() or owned.get(name) != sha256_digest(path.read_bytes())
        ):
            found.append(name)
    return found


def write_tree(folder: Path, files: Mapping[str, str], *, engine: str, force: bool) -> list[Path]:
    """Write `files` (relative path -> text) under `folder`; returns the paths written."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is not a folder", hint="-o takes a folder to write into")
    folder.mkdir(parents=True, exist_ok=True)
    owned = written_before(folder)
    strangers = foreign(folder, owned, [*files, *owned])
    if strangers and not force:
        shown = ", ".join(strangers[:5]) + (
            f" and {len(strangers) - 5} more" if len(strangers) > 5 else ""
        )
        raise InputError(
            f"{folder} holds files socle did not write, or edited since: {shown}",
            hint="export into another folder, or pass --force to overwrite them",
        )
    written = []
    for name, text in sorted(files.items()):
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"an exported file must stay inside the folder: {name}")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
        written.append(path)
    for name in sorted(set(owned) - set(files)):
        stale = folder / name
        if stale.is_file():
            stale.unlink()
    record = {
        "engine": engine,
        "files": {name: sha256_digest(text.encode()) for name, text in sorted(files.items())},
    }
    write_text(folder / RECORD, json.dumps(record, indent=2) + "\n")
    return written
