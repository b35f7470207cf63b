"""Run an image's tests: commands and file checks in throw-away containers, metadata from its config."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from socle.core.imagetest import CommandCheck, FileCheck, ImageTest, MetadataCheck
from socle.errors import SocleError
from socle.imagetests.files import STAT_HINT, Unknown, judge, read_states, stat_command
from socle.imagetests.metadata import check_metadata
from socle.imagetests.report import Outcome, TestReport, TestResult
from socle.process import tail_of

if TYPE_CHECKING:
    from socle.builders.interface import Builder, RunResult

Clock = Callable[[], float]
Verdict = tuple[bool, str]
OUTPUT_LINES = 10  # of each stream, in a failed command's message


def run_tests(
    builder: Builder,
    image_name: str,
    config: Mapping[str, Any],
    tests: Sequence[ImageTest],
    *,
    clock: Clock = time.monotonic,
) -> TestReport:
    """Run `tests` against the local image `image_name` and report every outcome.

    `config` is the image's OCI config document (`LayoutImage.config`), read by
    metadata tests. Commands run one container each, without network; all
    file tests share one `stat` container. Skip markers are ignored. A test
    the builder cannot carry out (a :class:`SocleError`) ends in
    :attr:`Outcome.ERROR`; the others still run. Results keep `tests`' order.
    """
    active = [test for test in tests if test.check is not None]
    files = _run_file_tests(builder, image_name, active, clock)
    results = tuple(
        files[index] if index in files else _run_one(builder, image_name, config, test, clock)
        for index, test in enumerate(active)
    )
    return TestReport(image_name, results)


def _run_one(
    builder: Builder, image: str, config: Mapping[str, Any], test: ImageTest, clock: Clock
) -> TestResult:
    start = clock()
    try:
        passed, message = _verdict(builder, image, config, test)
        outcome = Outcome.PASSED if passed else Outcome.FAILED
    except SocleError as exc:
        outcome, message = Outcome.ERROR, f"could not run the test: {exc.message}"
    return TestResult(test.name, test.kind, outcome, message, clock() - start)


def _verdict(builder: Builder, image: str, config: Mapping[str, Any], test: ImageTest) -> Verdict:
    check = test.check
    if isinstance(check, CommandCheck):
        return judge_command(
            check, builder.run(image, check.command, user=check.user, network="none")
        )
    if isinstance(check, MetadataCheck):
        return check_metadata(check, config)
    raise AssertionError(f"unexpected check {check!r}")  # file checks run in one batch


def judge_command(check: CommandCheck, result: RunResult) -> Verdict:
    """Whether a command's run meets `check`, and why."""
    shown = f"`{shlex.join(check.command)}`"
    problems = []
    if result.exit_code != check.exit_code:
        problems.append(f"expected exit code {check.exit_code}, found {result.exit_code}")
    problems += _stream("stdout", result.stdout, check.stdout, check.stdout_absent)
    problems += _stream("stderr", result.stderr, check.stderr, check.stderr_absent)
    if problems:
        return False, "\n".join([f"{shown}: {problems[0]}", *problems[1:], *_output(result)])
    matched = " and its output matched" if _patterns_of(check) else ""
    return True, f"{shown} exited {result.exit_code}{matched}"


def _stream(name: str, text: str, wanted: tuple[str, ...], unwanted: tuple[str, ...]) -> list[str]:
    problems = [
        f"expected {name} to match {pattern!r}, found no match"
        for pattern in wanted
        if not re.search(pattern, text, re.MULTILINE)
    ]
    for pattern in unwanted:
        match = re.search(pattern, text, re.MULTILINE)
        if match:
            problems.append(f"expected {name} not to match {pattern!r}, found {match.group(0)!r}")
    return problems


def _output(result: RunResult) -> list[str]:
    lines = []
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        tail = tail_of(text, OUTPUT_LINES)
        lines.append(f"{name}:\n{tail}" if tail else f"{name}: (empty)")
    return lines


def _patterns_of(check: CommandCheck) -> bool:
    return bool(check.stdout or check.stderr or check.stdout_absent or check.stderr_absent)


def _run_file_tests(
    builder: Builder, image: str, tests: list[ImageTest], clock: Clock
) -> dict[int, TestResult]:
    """Results of the file tests among `tests`, by index; they share the time of one run."""
    checks = {i: t.check for i, t in enumerate(tests) if isinstance(t.check, FileCheck)}
    if not checks:
        return {}
    paths = list(dict.fromkeys(check.path for check in checks.values()))
    start = clock()
    try:
        states = read_states(
            builder.run(image, stat_command(paths), user="0", network="none"), paths
        )
    except SocleError as exc:
        states = {path: Unknown(f"could not run stat: {exc.message}") for path in paths}
    share = (clock() - start) / len(checks)
    results = {}
    for index, check in checks.items():
        state = states[check.path]
        if isinstance(state, Unknown):
            outcome, message = Outcome.ERROR, f"{state.reason}\nhint: {STAT_HINT}"
        else:
            passed, message = judge(check, state)
            outcome = Outcome.PASSED if passed else Outcome.FAILED
        results[index] = TestResult(tests[index].name, "file", outcome, message, share)
    return results
