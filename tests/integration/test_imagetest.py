"""Image tests for real: a catalog's `tests:` run through buildah against a tiny busybox
image (with `stat`, users, a home, a leftover shell history), then rendered as JUnit XML."""

from __future__ import annotations

import io
import tarfile
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from socle.builders import BUILDERS, Builder
from socle.core.nodes import Reader
from socle.imagetests import ImageTest, Outcome, parse_tests, run_tests, to_junit_xml
from socle.oci.layout import read_image_layout, write_image_layout
from tests.integration.images import BUSYBOX

pytestmark = pytest.mark.integration

APPLETS = ("sh", "cat", "echo", "id", "stat", "true", "false")
FILES: dict[str, tuple[int, int, bytes]] = {  # path: (mode, uid, content)
    "etc/passwd": (0o644, 0, b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/srv/app:/bin/sh\n"),
    "etc/group": (0o644, 0, b"root:x:0:\napp:x:1000:\n"),
    "root/.bash_history": (0o600, 0, b"curl http://secret.example\n"),
}
DIRECTORIES = {"bin": (0o755, 0), "etc": (0o755, 0), "root": (0o700, 0), "srv": (0o755, 0),
               "srv/app": (0o750, 1000), "tmp": (0o1777, 0)}  # fmt: skip
CONFIG = {
    "User": "app",
    "WorkingDir": "/srv/app",
    "Env": ["PATH=/bin", "APP_HOME=/srv/app"],
    "Cmd": ["/bin/sh"],
    "ExposedPorts": {"8080/tcp": {}},
    "Labels": {"org.opencontainers.image.version": "1.2.3"},
}


def image_tar(path: Path) -> None:
    """One layer: busybox with its applets, two users, and a few files to test."""
    with tarfile.open(path, "w") as tar:
        for name, (mode, uid) in DIRECTORIES.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
            tar.addfile(info)
        binary = BUSYBOX.read_bytes()
        files = {"bin/busybox": (0o755, 0, binary), **FILES}
        for name, (mode, uid, data) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, uid, uid
            tar.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)


@dataclass(frozen=True)
class LoadedImage:
    builder: Builder
    name: str
    config: Mapping[str, Any]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedImage]:
    if not BUSYBOX.exists():
        pytest.fail("/bin/busybox is missing: apt-get install busybox-static")
    folder = tmp_path_factory.mktemp("imagetest")
    image_tar(folder / "layer.tar")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": CONFIG,
        "history": [{"created_by": "socle image test fixture"}],
    }
    write_image_layout(folder / "layout", layers=[folder / "layer.tar"], config=config)
    builder = BUILDERS["buildah"]()
    name = "socle-test/imagetest:1"
    builder.load(folder / "layout", name)
    yield LoadedImage(builder, name, read_image_layout(folder / "layout").config)
    builder.remove(name)


def catalog_tests(text: str) -> tuple[ImageTest, ...]:
    """The tests of a catalog snippet, read as the catalog loader reads them."""
    reader = Reader("catalog.yaml")
    node = yaml.compose(textwrap.dedent(text))
    assert node is not None
    tests = parse_tests(reader, node)
    assert reader.problems == []
    return tests


PASSING = """\
- name: echo
  command: [echo, hello]
  stdout: ^hello$
  stderr_absent: .
- name: runs as the image user
  command: [id, -un]
  stdout: ^app$
- name: root when asked
  command: [id, -u]
  user: "0"
  stdout: ^0$
- name: expected failure
  command: [sh, -c, "echo oops >&2; exit 3"]
  exit_code: 3
  stderr: oops
- name: no network
  command: [cat, /proc/net/dev]
  stdout: "lo:"
  stdout_absent: eth
- name: app home
  file: /srv/app
  type: directory
  mode: "0750"
  owner: app
- name: tmp
  file: /tmp
  mode: "1777"
  owner: "0"
- name: sh
  file: /bin/sh
  type: link
- name: no shadow
  file: /etc/shadow
  absent: true
- name: metadata
  metadata:
    user: app
    workdir: /srv/app
    env: {APP_HOME: /srv/app, PATH: /bin}
    exposed_ports: [8080]
    entrypoint: []
    cmd: [/bin/sh]
    labels: {org.opencontainers.image.version: '1\\.2\\.\\d+'}
"""

FAILING = """\
- name: wrong output
  command: [echo, hello]
  stdout: ^bye$
- name: no shell history
  file: /root/.bash_history
  absent: true
- name: echo still fine
  command: [echo, ok]
- name: home mode
  file: /srv/app
  mode: "0755"
- name: missing program
  command: [java, -version]
- name: runs as root
  metadata: {user: root}
"""


def test_a_passing_suite_passes_for_real(image: LoadedImage) -> None:
    report = run_tests(image.builder, image.name, image.config, catalog_tests(PASSING))
    assert [(r.name, r.outcome, r.message) for r in report.failed] == []
    assert report
    messages = {r.name: r.message for r in report.results}
    assert messages["app home"] == "/srv/app is a directory with mode 0750, owner app (uid 1000)"
    assert messages["tmp"] == "/tmp is a directory with mode 1777, owner root (uid 0)"
    assert messages["no shadow"] == "/etc/shadow is absent as expected"
    assert (
        messages["expected failure"]
        == "`sh -c 'echo oops >&2; exit 3'` exited 3 and its output matched"
    )
    assert all(r.duration > 0 for r in report.results if r.kind != "metadata")


def test_a_failing_suite_says_what_was_expected_and_found(image: LoadedImage) -> None:
    report = run_tests(image.builder, image.name, image.config, catalog_tests(FAILING))
    assert not report
    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes == {
        "wrong output": Outcome.FAILED,
        "no shell history": Outcome.FAILED,
        "echo still fine": Outcome.PASSED,
        "home mode": Outcome.FAILED,
        "missing program": Outcome.FAILED,
        "runs as root": Outcome.FAILED,
    }
    messages = {r.name: r.message for r in report.results}
    assert messages["wrong output"] == (
        "`echo hello`: expected stdout to match '^bye$', found no match\n"
        "stdout:\n  | hello\n"
        "stderr: (empty)"
    )
    assert messages["no shell history"] == (
        "expected /root/.bash_history to be absent, "
        "found a regular file with mode 0600, owner root (uid 0)"
    )
    assert messages["home mode"] == (
        "expected /srv/app to have mode 0755, found a directory with mode 0750, owner app (uid 1000)"
    )
    first, *rest = messages["missing program"].splitlines()
    assert first.startswith("`java -version`: expected exit code 0, found ")
    assert "java" in "\n".join(rest)  # the runtime's own words about the missing program
    assert messages["runs as root"] == "expected user 'root', found 'app'"

    junit = ET.fromstring(to_junit_xml(report, "socle-test.imagetest.1"))
    suite = junit.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "5", "0")
    failures = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert failures["echo still fine"] is None
    history = failures["no shell history"]
    assert history is not None and history.get("message", "").startswith(
        "expected /root/.bash_history to be absent"
    )
