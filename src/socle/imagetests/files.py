"""File checks: one `stat` run in a throw-away container answers them all.

Starting a container costs most of a check (about 0.6 s with buildah), so
every path of an image's file tests goes to a single `stat` call. It runs as
root (uid 0) so a restrictive image user cannot hide a path. The format is
understood by busybox and GNU coreutils alike; `%n` comes last so the path
can be matched back whatever it holds (paths with a newline are refused when
the catalog is read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from socle.core.imagetest import FileCheck, FileType
from socle.process import tail_of

if TYPE_CHECKING:
    from socle.builders.interface import RunResult

STAT_FORMAT = "%F|%a|%U|%u|%n"
STAT_HINT = "file tests need `stat` in the image (busybox or coreutils)"
# How stat words its answer for a path that does not exist.
_MISSING = ("No such file or directory", "Not a directory")
# stat's %F, for the types a test can ask for.
_TYPES = {
    "directory": FileType.DIRECTORY,
    "regular file": FileType.FILE,
    "regular empty file": FileType.FILE,
    "symbolic link": FileType.LINK,
}


@dataclass(frozen=True)
class FileState:
    """What `stat` said about a path that exists."""

    type_text: str  # stat's own words: "regular file", "character special file"...
    mode: int
    owner: str  # "UNKNOWN" when the image has no name for the uid
    uid: str

    @property
    def type(self) -> FileType | None:
        """The type in test terms, or None for devices, sockets and fifos."""
        return _TYPES.get(self.type_text)

    def __str__(self) -> str:
        return f"a {self.type_text} with mode {self.mode:04o}, owner {self.owner} (uid {self.uid})"


@dataclass(frozen=True)
class Unknown:
    """Why the state of a path could not be told (stat failed for another reason)."""

    reason: str


def stat_command(paths: list[str]) -> list[str]:
    """The command that describes every path in `paths`, one line each."""
    return ["stat", "-c", STAT_FORMAT, *paths]


def read_states(result: RunResult, paths: list[str]) -> dict[str, FileState | None | Unknown]:
    """Each path's state from a `stat_command` run: a FileState, None when absent, or Unknown."""
    found: dict[str, FileState] = {}
    for line in result.stdout.splitlines():
        fields = line.split("|", 4)
        if len(fields) == 5 and fields[1].isdigit():
            type_text, mode, owner, uid, path = fields
            found[path] = FileState(type_text, int(mode, 8), owner, uid)
    return {path: found.get(path) or _missing_or_unknown(result, path) for path in paths}


def _missing_or_unknown(result: RunResult, path: str) -> None | Unknown:
    for line in result.stderr.splitlines():
        if f"'{path}'" in line and any(words in line for words in _MISSING):
            return None
    output = tail_of(result.stderr or result.stdout, lines=5)
    return Unknown(f"stat could not check {path} (exit code {result.exit_code})\n{output}".rstrip())


def judge(check: FileCheck, state: FileState | None) -> tuple[bool, str]:
    """Whether `check` holds for what stat found at its path, and why."""
    if check.absent:
        if state is None:
            return True, f"{check.path} is absent as expected"
        return False, f"expected {check.path} to be absent, found {state}"
    if state is None:
        return False, f"expected {check.path} to exist, found nothing there"
    problems = _differences(check, state)
    if problems:
        return False, "\n".join(problems)
    return True, f"{check.path} is {state}"


def _differences(check: FileCheck, state: FileState) -> list[str]:
    problems = []
    if check.type is not None and state.type is not check.type:
        problems.append(f"expected {check.path} to be a {check.type.value}, found {state}")
    if check.mode is not None and state.mode != check.mode:
        problems.append(f"expected {check.path} to have mode {check.mode:04o}, found {state}")
    if check.owner is not None and check.owner != (
        state.uid if check.owner.isdigit() else state.owner
    ):
        problems.append(f"expected {check.path} to be owned by {check.owner}, found {state}")
    return problems
