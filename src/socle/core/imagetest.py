"""Image tests as declared in the catalog: frozen values, and how children inherit them.

Patterns are kept as the strings the catalog gave (validated when parsed), so
a test is plain, comparable data; the runner compiles them when it checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from socle.core.nodes import Location


class FileType(Enum):
    """What a file test expects a path to be."""

    DIRECTORY = "directory"
    FILE = "file"
    LINK = "link"


@dataclass(frozen=True)
class CommandCheck:
    """Run `command` in a throw-away container without network and check what it did.

    `stdout`/`stderr` patterns must each match somewhere in that stream;
    `*_absent` patterns must match nowhere (Python `re`, multi-line mode).
    """

    command: tuple[str, ...]
    exit_code: int = 0
    user: str | None = None  # None: the image's own user
    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    stdout_absent: tuple[str, ...] = ()
    stderr_absent: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileCheck:
    """A path that must be absent, or present with an optional type, mode and owner."""

    path: str
    absent: bool = False
    type: FileType | None = None
    mode: int | None = None  # permission bits, special bits included (0o1777)
    owner: str | None = None  # a user name, or a uid when all digits


@dataclass(frozen=True)
class MetadataCheck:
    """Expectations on the image config; unset fields are not checked.

    `env` and `labels` map names to patterns the whole value must match;
    `exposed_ports` must each be exposed (others may be too); `entrypoint`
    and `cmd` must be exactly equal (an empty tuple means "none").
    """

    user: str | None = None
    workdir: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    labels: tuple[tuple[str, str], ...] = ()


Check = CommandCheck | FileCheck | MetadataCheck


@dataclass(frozen=True)
class ImageTest:
    """One named test of an image; `check` is None for a marker that drops an inherited test."""

    name: str
    check: Check | None
    location: Location | None = field(default=None, compare=False)

    @property
    def skip(self) -> bool:
        """True for `{name: X, skip: true}`: drop the inherited test named X."""
        return self.check is None

    @property
    def kind(self) -> str:
        """`command`, `file`, `metadata` or `skip`, for reports."""
        return KINDS[type(self.check)] if self.check is not None else "skip"


KINDS: dict[type, str] = {CommandCheck: "command", FileCheck: "file", MetadataCheck: "metadata"}


def effective_tests(
    own: tuple[ImageTest, ...], inherited: tuple[ImageTest, ...]
) -> tuple[ImageTest, ...]:
    """The tests an image runs: its parent's, overridden or dropped by its own.

    An own test named like an inherited one replaces it in place; an own skip
    marker drops it; other own tests follow the inherited ones, in order.
    Skip markers never appear in the result. Chain it for levels:
    `effective_tests(version, effective_tests(image, parent_tests))`.
    """
    by_name = {test.name: test for test in own}
    kept = [by_name.get(test.name, test) for test in inherited]
    inherited_names = {test.name for test in inherited}
    added = [test for test in own if test.name not in inherited_names]
    return tuple(test for test in [*kept, *added] if not test.skip)


def stale_skips(
    own: tuple[ImageTest, ...], inherited: tuple[ImageTest, ...]
) -> tuple[ImageTest, ...]:
    """Own skip markers that name no inherited test (a typo, or a test the parent dropped)."""
    names = {test.name for test in inherited}
    return tuple(test for test in own if test.skip and test.name not in names)
