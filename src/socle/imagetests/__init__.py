"""Image tests: what the catalog declares an image must do, and checking it for real.

In the spirit of container-structure-test, each image (and version) lists
named tests under `tests:`: a command to run (exit code, output patterns), a
file to find or not (type, mode, owner), or metadata the image config must
carry (user, workdir, env, ports, entrypoint, cmd, labels). Children inherit
their parents' tests; a child test with the same name replaces the parent's
and `{name: X, skip: true}` drops it.

- :func:`parse_tests` reads a `tests:` node with the catalog's reader.
- :func:`effective_tests` applies inheritance; :func:`stale_skips` finds skips of nothing.
- :func:`run_tests` runs them through a builder and returns a :class:`TestReport`.
- :func:`to_junit_xml` renders a report for CI systems.
"""

from __future__ import annotations

from socle.core.imagetest import (
    Check,
    CommandCheck,
    FileCheck,
    FileType,
    ImageTest,
    MetadataCheck,
    effective_tests,
    stale_skips,
)
from socle.core.imagetest_parse import parse_tests
from socle.imagetests.junit import to_junit_xml
from socle.imagetests.report import Outcome, TestReport, TestResult
from socle.imagetests.runner import run_tests

__all__ = [
    "Check",
    "CommandCheck",
    "FileCheck",
    "FileType",
    "ImageTest",
    "MetadataCheck",
    "Outcome",
    "TestReport",
    "TestResult",
    "effective_tests",
    "parse_tests",
    "run_tests",
    "stale_skips",
    "to_junit_xml",
]
