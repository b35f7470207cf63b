"""One error base for everything socle reports to a user.

Library code raises these (translating third-party errors where they arise);
only the CLI turns them into exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SocleError(Exception):
    """An error with a one-sentence message for the user and an optional hint."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The text shown to the user: the message, then the hint if any."""
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class GateFailed(SocleError):
    """An image did not pass a trust gate (tests, scan policy...); the message says which and why."""


class InputError(SocleError):
    """Bad input from the user (catalog, arguments, files): exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem found in a file, located for an editor to jump to."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: error: {self.message}"


class CatalogError(InputError):
    """A catalog that cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.file, p.line, p.column)))
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the catalog")

    def diagnostics(self) -> str:
        return "\n".join(str(p) for p in self.problems)
