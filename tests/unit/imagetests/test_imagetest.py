"""Image tests: parsing (every problem located), inheritance, the runner with a fake
builder for each kind of check, and the JUnit XML CI systems read."""

from __future__ import annotations

import itertools
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from socle.builders.interface import BuildRequest, BuildResult, RunResult
from socle.core.catalog import Location
from socle.core.nodes import Reader
from socle.errors import SocleError
from socle.imagetests import (
    CommandCheck,
    FileCheck,
    FileType,
    ImageTest,
    MetadataCheck,
    Outcome,
    TestReport,
    TestResult,
    effective_tests,
    parse_tests,
    run_tests,
    stale_skips,
    to_junit_xml,
)
from socle.imagetests.files import STAT_FORMAT

FILE = "catalog.yaml"


def parse(text: str) -> tuple[tuple[ImageTest, ...], list[str]]:
    """Parse the value of the top-level `tests:` key of `text` (dedented)."""
    reader = Reader(FILE)
    root = yaml.compose(textwrap.dedent(text))
    assert isinstance(root, yaml.MappingNode)
    tests = parse_tests(reader, root.value[0][1])
    located = sorted(
        reader.problems, key=lambda p: (p.line, p.column)
    )  # as CatalogError shows them
    return tests, [str(problem) for problem in located]


class FakeBuilder:
    """Records every run; `answer` gives each command's canned result (or raises)."""

    name = "fake"

    def __init__(self, answer: Callable[[list[str]], RunResult] | None = None) -> None:
        self.runs: list[tuple[str, list[str], str | None]] = []
        self._answer = answer or (lambda command: RunResult(0, "", ""))

    def run(
        self, name: str, command: Sequence[str], *, user: str | None = None, network: str = "host"
    ) -> RunResult:
        assert network == "none", "image tests must run without network"
        self.runs.append((name, list(command), user))
        return self._answer(list(command))

    def build(self, request: BuildRequest) -> BuildResult:
        raise NotImplementedError

    def load(self, layout: Path, name: str) -> None:
        raise NotImplementedError

    def remove(self, *names: str) -> None:
        raise NotImplementedError


def ticking_clock(step: float = 0.25) -> Callable[[], float]:
    """A clock that advances `step` seconds at each reading."""
    counter = itertools.count()
    return lambda: next(counter) * step


def command_test(name: str, *command: str, **expect: Any) -> ImageTest:
    return ImageTest(name, CommandCheck(tuple(command), **expect))


# --- parsing -------------------------------------------------------------------------------


def test_the_documented_example_parses_into_the_model() -> None:
    tests, problems = parse(
        """\
        tests:
          - name: java runs
            command: [java, -version]
            exit_code: 0
            stderr: 'openjdk version "17'
            stdout_absent: [WARNING, ERROR]
          - name: as nobody
            command: [id, -u]
            user: "65534"
            stdout: ^65534$
          - name: no shell history
            file: /root/.bash_history
            absent: true
          - name: tomcat home
            file: /usr/share/tomcat10
            type: directory
            mode: 0755
            owner: root
          - name: runs as tomcat
            metadata:
              user: tomcat
              workdir: /
              env: {JAVA_HOME: /usr/lib/jvm/java-17-openjdk-amd64}
              exposed_ports: ["8080/tcp", 8443]
              entrypoint: []
              cmd: [catalina.sh, run]
              labels: {org.opencontainers.image.version: '10\\..*'}
          - name: inherited one
            skip: true
        """
    )
    assert problems == []
    assert tests == (
        command_test(
            "java runs",
            "java",
            "-version",
            stderr=('openjdk version "17',),
            stdout_absent=("WARNING", "ERROR"),
        ),
        command_test("as nobody", "id", "-u", user="65534", stdout=("^65534$",)),
        ImageTest("no shell history", FileCheck("/root/.bash_history", absent=True)),
        ImageTest(
            "tomcat home",
            FileCheck("/usr/share/tomcat10", type=FileType.DIRECTORY, mode=0o755, owner="root"),
        ),
        ImageTest(
            "runs as tomcat",
            MetadataCheck(
                user="tomcat",
                workdir="/",
                env=(("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64"),),
                exposed_ports=("8080/tcp", "8443/tcp"),
                entrypoint=(),
                cmd=("catalina.sh", "run"),
                labels=(("org.opencontainers.image.version", "10\\..*"),),
            ),
        ),
        ImageTest("inherited one", None),
    )
    assert [t.location for t in tests][:2] == [Location(FILE, 2, 5), Location(FILE, 7, 5)]
    assert [t.kind for t in tests] == ["command", "command", "file", "file", "metadata", "skip"]
    assert tests[-1].skip and not tests[0].skip


def test_no_tests_is_an_empty_tuple() -> None:
    assert parse("tests:\n") == ((), [])
    assert parse("tests: []\n") == ((), [])


def test_skip_false_is_an_ordinary_test() -> None:
    tests, problems = parse("tests:\n  - {name: t, skip: false, command: [true]}\n")
    assert (tests, problems) == ((command_test("t", "true"),), [])


def test_every_problem_is_located_with_file_line_and_column() -> None:
    _, problems = parse(
        """\
        tests:
          - name: typo
            command: [true]
            stdot: x
          - name: nothing
          - name: both
            command: [true]
            file: /etc
          - name: bad regex
            command: [true]
            stderr: ["ok", "(unclosed"]
          - name: bad mode
            file: /etc
            mode: "0855"
          - name: dup
            command: [true]
          - name: dup
            command: [false]
          - command: [true]
          - name: skipped
            skip: true
            command: [true]
          - name: shell line
            command: java -version
          - name: exit
            command: [true]
            exit_code: 300
          - name: kind
            file: /etc
            type: dir
          - name: relative
            file: etc/passwd
          - name: foreign
            command: [true]
            mode: "0755"
          - name: absent mode
            file: /x
            absent: true
            owner: root
          - name: meta
            metadata:
              entrypont: [sh]
              exposed_ports: [http]
              env: {1BAD: x}
              cmd: sh
          - name: empty meta
            metadata: {}
          - just a string
        """
    )
    assert problems == [
        f"{FILE}:4:5: error: unknown key 'stdot' in a test (did you mean 'stdout'?)",
        f"{FILE}:5:5: error: test 'nothing' checks nothing: give it one of `command`, `file` or `metadata`",
        f"{FILE}:8:5: error: test 'both' has both `command` and `file`: write one check per test",
        f"{FILE}:11:20: error: invalid regular expression '(unclosed' in `stderr`: missing ), unterminated subpattern at position 0",
        f"{FILE}:14:11: error: `mode` of test 'bad mode' must be octal permission bits like \"0755\" or \"1777\", not '0855'",
        f"{FILE}:17:5: error: test 'dup' is declared twice (first on line 15)",
        f"{FILE}:19:5: error: a test has no `name`",
        f"{FILE}:22:5: error: test 'skipped' is skipped: it takes only `name` and `skip`, not `command`",
        f"{FILE}:24:14: error: `command` of test 'shell line' must be a non-empty list of arguments, e.g. [java, -version] (for a shell line: [sh, -c, '...'])",
        f"{FILE}:27:16: error: `exit_code` of test 'exit' must be a number from 0 to 255, not '300'",
        f"{FILE}:30:11: error: unknown file type 'dir' in test 'kind' (did you mean 'directory'?)",
        f"{FILE}:32:11: error: `file` of test 'relative' must be an absolute path, not 'etc/passwd'",
        f"{FILE}:35:5: error: `mode` belongs to file tests, not to command test 'foreign'",
        f"{FILE}:39:5: error: test 'absent mode' expects /x to be absent: drop `owner`",
        f"{FILE}:42:7: error: unknown key 'entrypont' in `metadata` of test 'meta' (did you mean 'entrypoint'?)",
        f"{FILE}:43:23: error: invalid port 'http': expected PORT or PORT/tcp|udp|sctp",
        f"{FILE}:44:13: error: invalid name '1BAD' in `env`",
        f"{FILE}:45:12: error: `cmd` in test 'meta' must be a list of arguments ([] for none)",
        f"{FILE}:47:15: error: `metadata` of test 'empty meta' checks nothing: give it one of user, workdir, env, exposed_ports, entrypoint, cmd, labels",
        f"{FILE}:48:5: error: a test must be a mapping",
    ]


def test_a_bad_skip_or_user_is_one_problem_each() -> None:
    _, problems = parse(
        "tests:\n  - {name: a, skip: maybe, command: [true]}\n  - {name: b, command: [id], user: ''}\n"
    )
    assert problems == [
        f"{FILE}:2:21: error: skip must be true or false, not 'maybe'",
        f"{FILE}:3:36: error: `user` of test 'b' is empty: name a user or a uid",
    ]


def test_tests_must_be_a_list() -> None:
    tests, problems = parse("tests:\n  java: {command: [java]}\n")
    assert tests == ()
    assert problems == [f"{FILE}:2:3: error: tests must be a list of tests, each with a `name`"]


def test_a_test_with_a_problem_is_left_out_and_the_others_kept() -> None:
    tests, problems = parse(
        "tests:\n  - {name: ok, command: [true]}\n  - {name: bad, command: [true], exit_code: x}\n"
    )
    assert [t.name for t in tests] == ["ok"]
    assert len(problems) == 1


# --- inheritance ---------------------------------------------------------------------------


PARENT = (
    command_test("java runs", "java", "-version"),
    ImageTest("no history", FileCheck("/root/.bash_history", absent=True)),
    command_test("locale", "locale"),
)


def test_a_child_without_tests_inherits_its_parents() -> None:
    assert effective_tests((), PARENT) == PARENT


def test_a_child_test_with_the_same_name_replaces_the_parents_in_place() -> None:
    override = command_test("java runs", "java", "-version", stderr=("17",))
    own = (command_test("tomcat", "catalina.sh", "version"), override)
    assert effective_tests(own, PARENT) == (override, PARENT[1], PARENT[2], own[0])


def test_a_skip_marker_drops_the_inherited_test_and_is_not_run() -> None:
    own = (ImageTest("locale", None), ImageTest("no such test", None))
    assert effective_tests(own, PARENT) == PARENT[:2]
    assert stale_skips(own, PARENT) == (own[1],)


def test_levels_chain_parent_then_image_then_version() -> None:
    image = (ImageTest("locale", None),)
    version = (command_test("locale", "locale", "-a"),)  # a version can bring it back
    assert effective_tests(version, effective_tests(image, PARENT)) == (*PARENT[:2], version[0])


# --- running: commands ---------------------------------------------------------------------


def test_a_command_test_runs_without_network_through_the_builder_and_passes() -> None:
    builder = FakeBuilder(lambda cmd: RunResult(0, "", 'openjdk version "17.0.9" 2023-10-17\n'))
    test = command_test("java runs", "java", "-version", stderr=('openjdk version "17',))
    report = run_tests(builder, "my/java:17", {}, [test], clock=ticking_clock())
    assert builder.runs == [("my/java:17", ["java", "-version"], None)]
    assert report.results == (
        TestResult(
            "java runs",
            "command",
            Outcome.PASSED,
            "`java -version` exited 0 and its output matched",
            0.25,
        ),
    )
    assert report and not report.failed


def test_a_failing_command_says_what_was_expected_and_what_was_found() -> None:
    builder = FakeBuilder(lambda cmd: RunResult(1, "WARNING: low memory\n", "version 21\n"))
    test = command_test(
        "java runs",
        "sh",
        "-c",
        "java -version",
        user="tomcat",
        stderr=("version 17",),
        stdout_absent=("WARN\\w+",),
    )
    report = run_tests(builder, "img", {}, [test])
    assert builder.runs == [("img", ["sh", "-c", "java -version"], "tomcat")]
    assert not report
    assert report.results[0].outcome is Outcome.FAILED
    assert report.results[0].message == (
        "`sh -c 'java -version'`: expected exit code 0, found 1\n"
        "expected stdout not to match 'WARN\\\\w+', found 'WARNING'\n"
        "expected stderr to match 'version 17', found no match\n"
        "stdout:\n  | WARNING: low memory\n"
        "stderr:\n  | version 21"
    )


def test_an_expected_non_zero_exit_code_passes() -> None:
    builder = FakeBuilder(lambda cmd: RunResult(2, "", ""))
    report = run_tests(builder, "img", {}, [command_test("t", "false", exit_code=2)])
    assert report.results[0].message == "`false` exited 2"
    assert report


def test_a_builder_error_is_an_error_result_and_the_other_tests_still_run() -> None:
    def answer(cmd: list[str]) -> RunResult:
        if cmd == ["boom"]:
            raise SocleError("command failed with exit code 125: buildah from img")
        return RunResult(0, "", "")

    tests = [command_test("first", "boom"), command_test("second", "true")]
    report = run_tests(FakeBuilder(answer), "img", {}, tests)
    assert [(r.name, r.outcome) for r in report.results] == [
        ("first", Outcome.ERROR),
        ("second", Outcome.PASSED),
    ]
    assert report.results[0].message == (
        "could not run the test: command failed with exit code 125: buildah from img"
    )
    assert report.failed == report.results[:1]


# --- running: files ------------------------------------------------------------------------


def stat_answer(present: dict[str, str]) -> Callable[[list[str]], RunResult]:
    """Answers a stat command like busybox: one line per present path, errors for the rest."""

    def answer(cmd: list[str]) -> RunResult:
        assert cmd[:3] == ["stat", "-c", STAT_FORMAT]
        out = [f"{present[p]}|{p}" for p in cmd[3:] if p in present]
        err = [
            f"stat: can't stat '{p}': No such file or directory"
            for p in cmd[3:]
            if p not in present
        ]
        return RunResult(1 if err else 0, "".join(f"{line}\n" for line in out), "\n".join(err))

    return answer


FILES = {
    "/usr/share/tomcat10": "directory|755|root|0",
    "/root/.bash_history": "regular empty file|600|root|0",
    "/etc/tomcat": "directory|750|tomcat|998",
    "/bin/sh": "symbolic link|777|root|0",
    "/tmp": "directory|1777|root|0",
}


def test_file_tests_share_one_stat_run_as_root_and_report_each_path() -> None:
    builder = FakeBuilder(stat_answer(FILES))
    tests = [
        ImageTest("home", FileCheck("/usr/share/tomcat10", type=FileType.DIRECTORY, mode=0o755)),
        ImageTest("no history", FileCheck("/root/.bash_history", absent=True)),
        ImageTest("no secrets", FileCheck("/etc/secret", absent=True)),
        ImageTest("conf", FileCheck("/etc/tomcat", owner="998", mode=0o750)),
        ImageTest("sh", FileCheck("/bin/sh", type=FileType.LINK, owner="root")),
        ImageTest("tmp", FileCheck("/tmp", mode=0o1777)),
        ImageTest("tmp again", FileCheck("/tmp", mode=0o755)),
        ImageTest("app", FileCheck("/opt/app")),
    ]
    report = run_tests(builder, "img", {}, tests, clock=ticking_clock(0.8))
    assert builder.runs == [
        (
            "img",
            ["stat", "-c", STAT_FORMAT, *dict.fromkeys(t.check.path for t in tests)],  # type: ignore[union-attr]
            "0",
        )
    ]
    assert [(r.name, r.outcome.value, r.message) for r in report.results] == [
        ("home", "passed", "/usr/share/tomcat10 is a directory with mode 0755, owner root (uid 0)"),
        (
            "no history",
            "failed",
            "expected /root/.bash_history to be absent, "
            "found a regular empty file with mode 0600, owner root (uid 0)",
        ),
        ("no secrets", "passed", "/etc/secret is absent as expected"),
        ("conf", "passed", "/etc/tomcat is a directory with mode 0750, owner tomcat (uid 998)"),
        ("sh", "passed", "/bin/sh is a symbolic link with mode 0777, owner root (uid 0)"),
        ("tmp", "passed", "/tmp is a directory with mode 1777, owner root (uid 0)"),
        (
            "tmp again",
            "failed",
            "expected /tmp to have mode 0755, found a directory with mode 1777, owner root (uid 0)",
        ),
        ("app", "failed", "expected /opt/app to exist, found nothing there"),
    ]
    assert {r.duration for r in report.results} == {0.1}  # one 0.8 s run shared by 8 tests


def test_a_file_of_the_wrong_type_and_owner_lists_every_difference() -> None:
    builder = FakeBuilder(stat_answer(FILES))
    check = FileCheck("/root/.bash_history", type=FileType.DIRECTORY, owner="tomcat")
    report = run_tests(builder, "img", {}, [ImageTest("t", check)])
    assert report.results[0].message == (
        "expected /root/.bash_history to be a directory, "
        "found a regular empty file with mode 0600, owner root (uid 0)\n"
        "expected /root/.bash_history to be owned by tomcat, "
        "found a regular empty file with mode 0600, owner root (uid 0)"
    )


def test_without_stat_in_the_image_file_tests_are_errors_not_passes() -> None:
    runc = (
        'error running container: ... exec: "stat": executable file not found in $PATH\n'
        ": exit status 1\n"
    )
    builder = FakeBuilder(lambda cmd: RunResult(1, "", runc))
    tests = [
        ImageTest("gone", FileCheck("/root/.bash_history", absent=True)),
        ImageTest("there", FileCheck("/etc")),
    ]
    report = run_tests(builder, "img", {}, tests)
    assert [r.outcome for r in report.results] == [Outcome.ERROR, Outcome.ERROR]
    message = report.results[0].message
    assert message.startswith("stat could not check /root/.bash_history (exit code 1)\n")
    assert "executable file not found" in message
    assert message.endswith("hint: file tests need `stat` in the image (busybox or coreutils)")


def test_a_builder_error_makes_every_file_test_an_error() -> None:
    def answer(cmd: list[str]) -> RunResult:
        raise SocleError("command failed with exit code 125: buildah from img")

    report = run_tests(FakeBuilder(answer), "img", {}, [ImageTest("t", FileCheck("/etc"))])
    assert report.results[0].outcome is Outcome.ERROR
    assert report.results[0].message.startswith("could not run stat: command failed")


# --- running: metadata ---------------------------------------------------------------------

CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "User": "tomcat",
        "Env": ["PATH=/usr/bin:/bin", "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64"],
        "ExposedPorts": {"8080/tcp": {}},
        "Cmd": ["catalina.sh", "run"],
        "Labels": {"org.opencontainers.image.version": "10.1.16"},
    },
}


def test_metadata_tests_read_the_config_without_a_container() -> None:
    check = MetadataCheck(
        user="tomcat",
        workdir="/",  # unset: the runtime's default
        env=(("JAVA_HOME", "/usr/lib/jvm/java-17-.*"),),
        exposed_ports=("8080/tcp",),
        entrypoint=(),
        cmd=("catalina.sh", "run"),
        labels=(("org.opencontainers.image.version", "10\\..*"),),
    )
    builder = FakeBuilder()
    report = run_tests(builder, "img", CONFIG, [ImageTest("meta", check)])
    assert builder.runs == []
    assert report.results[0].passed
    assert report.results[0].message == (
        "the image config has user, working directory, entrypoint, cmd, "
        "environment variable JAVA_HOME, port 8080/tcp, "
        "label org.opencontainers.image.version as expected"
    )


def test_a_metadata_mismatch_says_what_was_expected_and_what_was_found() -> None:
    check = MetadataCheck(
        user="root",
        workdir="/srv",
        env=(("JAVA_HOME", "/usr/lib/jvm/java-21"), ("LANG", "C.UTF-8")),
        exposed_ports=("8443/tcp",),
        entrypoint=("tini", "--"),
        cmd=(),
        labels=(("org.opencontainers.image.version", "9\\..*"), ("maintainer", ".+")),
    )
    report = run_tests(FakeBuilder(), "img", CONFIG, [ImageTest("meta", check)])
    assert report.results[0].outcome is Outcome.FAILED
    assert report.results[0].message.splitlines() == [
        "expected user 'root', found 'tomcat'",
        "expected working directory '/srv', found '/'",
        "expected environment variable JAVA_HOME matching '/usr/lib/jvm/java-21', "
        "found '/usr/lib/jvm/java-17-openjdk-amd64'",
        "expected environment variable LANG matching 'C.UTF-8', found it unset",
        "expected port 8443/tcp to be exposed, found 8080/tcp",
        "expected entrypoint ['tini', '--'], found none",
        "expected cmd none, found ['catalina.sh', 'run']",
        "expected label org.opencontainers.image.version matching '9\\\\..*', found '10.1.16'",
        "expected label maintainer matching '.+', found it unset",
    ]


def test_an_image_config_without_runtime_settings_has_none() -> None:
    check = MetadataCheck(user="app", exposed_ports=("80/tcp",))
    report = run_tests(FakeBuilder(), "img", {"os": "linux"}, [ImageTest("m", check)])
    assert report.results[0].message.splitlines() == [
        "expected user 'app', found none",
        "expected port 80/tcp to be exposed, found none",
    ]


# --- the report ----------------------------------------------------------------------------


def test_the_report_keeps_declaration_order_and_drops_skip_markers() -> None:
    builder = FakeBuilder(
        lambda cmd: stat_answer(FILES)(cmd) if cmd[0] == "stat" else RunResult(0, "", "")
    )
    tests = [
        command_test("a", "true"),
        ImageTest("b", FileCheck("/tmp")),
        ImageTest("c", None),
        ImageTest("d", MetadataCheck(user="tomcat")),
        ImageTest("e", FileCheck("/nope")),
    ]
    report = run_tests(builder, "img", CONFIG, tests, clock=ticking_clock(1.0))
    assert [r.name for r in report.results] == ["a", "b", "d", "e"]
    assert [r.kind for r in report.results] == ["command", "file", "metadata", "file"]
    assert not report
    assert [r.name for r in report.failed] == ["e"]
    assert report.summary() == "3 passed, 1 failed in 3.0 s"


def test_an_empty_report_is_truthy() -> None:
    report = run_tests(FakeBuilder(), "img", {}, [])
    assert report and report.summary() == "no tests in 0.0 s"


# --- JUnit XML -----------------------------------------------------------------------------


def junit_report() -> TestReport:
    return TestReport(
        "my/java:17",
        (
            TestResult("java runs", "command", Outcome.PASSED, "`java -version` exited 0", 0.5123),
            TestResult(
                "no <history> & co",
                "file",
                Outcome.FAILED,
                "expected /root/.bash_history to be absent, found a regular file\nmore",
                0.25,
            ),
            TestResult("meta", "metadata", Outcome.ERROR, "could not run: \x1b[31mred\x00", 0.0),
        ),
    )


def test_junit_xml_is_well_formed_with_suite_cases_and_failures() -> None:
    text = to_junit_xml(junit_report(), "socle.my-java.17")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    root = ET.fromstring(text.encode())
    assert root.tag == "testsuites"
    [suite] = root
    assert suite.tag == "testsuite"
    expected = {"tests": "3", "failures": "1", "errors": "1", "skipped": "0", "time": "0.762"}
    assert suite.attrib == {"name": "socle.my-java.17", **expected}
    assert root.attrib == {"name": "socle.my-java.17", **expected}
    cases = list(suite)
    assert [(c.tag, c.get("name"), c.get("classname"), c.get("time")) for c in cases] == [
        ("testcase", "java runs", "socle.my-java.17", "0.512"),
        ("testcase", "no <history> & co", "socle.my-java.17", "0.250"),
        ("testcase", "meta", "socle.my-java.17", "0.000"),
    ]
    assert list(cases[0]) == []
    [failure] = cases[1]
    assert failure.tag == "failure" and failure.get("type") == "file"
    assert (
        failure.get("message") == "expected /root/.bash_history to be absent, found a regular file"
    )
    assert failure.text == "expected /root/.bash_history to be absent, found a regular file\nmore"
    [error] = cases[2]
    assert error.tag == "error"
    assert error.text == "could not run: \\x1b[31mred\\x00"  # XML cannot hold these characters


def test_junit_xml_of_a_passing_report_has_no_failures() -> None:
    report = TestReport("img", (TestResult("t", "command", Outcome.PASSED, "ok", 1.0),))
    suite = ET.fromstring(to_junit_xml(report, "img"))[0]
    assert (suite.get("failures"), suite.get("errors"), suite.get("time")) == ("0", "0", "1.000")
    assert [list(case) for case in suite] == [[]]


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.ERROR])
def test_a_failed_or_errored_test_makes_the_report_falsy(outcome: Outcome) -> None:
    report = TestReport("img", (TestResult("t", "file", outcome, "m", 0.0),))
    assert not report and report.failed == report.results
