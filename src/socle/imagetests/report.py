"""What running an image's tests found: one result per test, and the report of them all."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar


class Outcome(Enum):
    """How a test ended: its check held, did not hold, or could not be carried out."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # e.g. the container could not start, or `stat` is missing


@dataclass(frozen=True)
class TestResult:
    """One test's outcome; `message` says what was expected and what was found."""

    __test__: ClassVar[bool] = False  # not a pytest class, despite its name

    name: str
    kind: str  # command, file or metadata
    outcome: Outcome
    message: str
    duration: float  # seconds

    @property
    def passed(self) -> bool:
        """True when the check held."""
        return self.outcome is Outcome.PASSED


@dataclass(frozen=True)
class TestReport:
    """The results of one image's tests, in declaration order; falsy when any test failed."""

    __test__: ClassVar[bool] = False

    image: str
    results: tuple[TestResult, ...]

    @property
    def failed(self) -> tuple[TestResult, ...]:
        """The tests that failed or could not be carried out."""
        return tuple(result for result in self.results if not result.passed)

    @property
    def duration(self) -> float:
        """Seconds spent on all the tests."""
        return sum(result.duration for result in self.results)

    def __bool__(self) -> bool:
        return not self.failed

    def count(self, outcome: Outcome) -> int:
        """How many tests ended with `outcome`."""
        return sum(1 for result in self.results if result.outcome is outcome)

    def summary(self) -> str:
        """One line for people: `3 passed, 1 failed in 2.1 s`."""
        return f"{self.counts()} in {self.duration:.1f} s"

    def counts(self) -> str:
        """`3 passed, 1 failed`: the outcome without its time, as recorded on an image
        (a time would give a reproducible image a new digest at every build)."""
        parts = [
            f"{self.count(outcome)} {outcome.value}" for outcome in Outcome if self.count(outcome)
        ]
        return ", ".join(parts) or "no tests"
