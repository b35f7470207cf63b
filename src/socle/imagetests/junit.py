"""JUnit XML, the report format CI systems (Jenkins, GitLab, GitHub actions) read.

Shape: `<testsuites>` > `<testsuite>` > `<testcase>`, a failed test holding a
`<failure>` (an unmet expectation) or an `<error>` (the check could not be
carried out) whose `message` is the first line and whose text is the whole
message. Times are seconds with millisecond precision.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from socle.imagetests.report import Outcome, TestReport, TestResult

# Characters XML 1.0 cannot hold at all, even escaped (terminal escapes, NUL...).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ELEMENT = {Outcome.FAILED: "failure", Outcome.ERROR: "error"}


def to_junit_xml(report: TestReport, suite_name: str) -> str:
    """The report as a JUnit XML document with one test suite named `suite_name`."""
    counts = {
        "tests": str(len(report.results)),
        "failures": str(report.count(Outcome.FAILED)),
        "errors": str(report.count(Outcome.ERROR)),
        "skipped": "0",
        "time": _seconds(report.duration),
    }
    root = ET.Element("testsuites", {"name": _text(suite_name), **counts})
    suite = ET.SubElement(root, "testsuite", {"name": _text(suite_name), **counts})
    for result in report.results:
        _testcase(suite, result, suite_name)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _testcase(suite: ET.Element, result: TestResult, suite_name: str) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "name": _text(result.name),
            "classname": _text(suite_name),
            "time": _seconds(result.duration),
        },
    )
    tag = _ELEMENT.get(result.outcome)
    if tag is not None:
        message = _text(result.message)
        failure = ET.SubElement(
            case, tag, {"message": message.splitlines()[0] if message else "", "type": result.kind}
        )
        failure.text = message


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _text(value: str) -> str:
    return _NOT_XML.sub(lambda match: f"\\x{ord(match.group(0)):02x}", value)
