"""Where the catalog comes from: its git remote and commit, for OCI source/revision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from socle.errors import SocleError
from socle.process import run


@dataclass(frozen=True)
class Revision:
    source: str | None
    commit: str | None

    @classmethod
    def of(cls, folder: Path) -> Revision:
        """The git remote URL and HEAD commit (`+dirty` when changed) of `folder`, if any."""

        def git(*args: str) -> str | None:
            try:
                out = run(["git", "-C", str(folder), *args], check=False).stdout.strip()
            except SocleError:  # no git on this machine
                return None
            return out or None

        commit = git("rev-parse", "HEAD")
        if commit and git("status", "--porcelain", "--", "."):
            commit += "+dirty"
        source = git("config", "--get", "remote.origin.url")
        return cls(source, commit)
