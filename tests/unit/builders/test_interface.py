from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from socle.builders import BUILDERS, BuildFailed
from socle.builders.interface import (
    build_log,
    failing_step,
    oci_reference,
    prepare_output,
    qualified_tag,
)
from socle.errors import InputError, SocleError
from socle.oci.layout import index_descriptor

BUILDAH_LOG = """STEP 1/3: FROM 127.0.0.1:5000/test/base@sha256:abc
STEP 2/3: RUN echo hi > /hello
STEP 3/3: RUN ls /nope
ls: /nope: No such file or directory
"""
DOCKER_LOG = """Step 1/3 : ARG BASE_IMAGE
Step 2/3 : FROM ${BASE_IMAGE}
 ---> 934f71afb315
Step 3/3 : RUN ls /nope
 ---> Running in 007dfed004cd
ls: /nope: No such file or directory
The command '/bin/sh -c ls /nope' returned a non-zero code: 1
"""


@pytest.mark.parametrize("log", [BUILDAH_LOG, DOCKER_LOG])
def test_the_failing_step_is_the_last_one_announced(log: str) -> None:
    assert failing_step(log) == "RUN ls /nope"


def test_a_log_without_steps_has_no_failing_step() -> None:
    assert failing_step("Error: no such file Dockerfile") is None


def test_build_failed_names_image_step_and_the_commands_own_error() -> None:
    error = BuildFailed("socle-build/java:17", DOCKER_LOG)
    assert error.step == "RUN ls /nope"
    assert error.message.startswith("build of socle-build/java:17 failed at step `RUN ls /nope`")
    assert "ls: /nope: No such file or directory" in error.message
    assert error.hint


def test_build_log_keeps_the_end_of_both_streams() -> None:
    stdout = "\n".join(f"out {i}" for i in range(100))
    stderr = "\n".join(f"err {i}" for i in range(100))
    log = build_log(stdout, stderr, lines=8)
    assert log.splitlines() == [f"out {i}" for i in range(92, 100)] + [
        f"err {i}" for i in range(95, 100)
    ]


def test_qualified_tag_adds_latest_only_when_there_is_no_tag() -> None:
    assert qualified_tag("socle-build/java") == "socle-build/java:latest"
    assert qualified_tag("socle-build/java:17-debian12") == "socle-build/java:17-debian12"
    assert qualified_tag("127.0.0.1:5000/my/java") == "127.0.0.1:5000/my/java:latest"
    assert qualified_tag("127.0.0.1:5000/my/java:17") == "127.0.0.1:5000/my/java:17"


def test_prepare_output_replaces_a_previous_layout(
    tmp_path: Path, layout: Callable[[Path, int], None]
) -> None:
    out = tmp_path / "out"
    layout(out, 2)
    prepare_output(out)
    assert not out.exists()


def test_prepare_output_refuses_a_folder_that_is_not_a_layout(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="not an OCI image layout"):
        prepare_output(tmp_path)
    assert (tmp_path / "precious.txt").exists()


def test_single_manifest_insists_on_exactly_one(
    tmp_path: Path, layout: Callable[[Path, int], None]
) -> None:
    layout(tmp_path / "one", 1)
    layout(tmp_path / "two", 2)
    assert index_descriptor(tmp_path / "one").digest == f"sha256:{0:064x}"
    with pytest.raises(SocleError, match="holds 2 manifests"):
        index_descriptor(tmp_path / "two")
    with pytest.raises(SocleError, match="not a readable OCI image layout"):
        index_descriptor(tmp_path / "missing")


def test_oci_reference_is_absolute_and_refuses_colons(tmp_path: Path) -> None:
    assert oci_reference(tmp_path / "out") == f"oci:{tmp_path.resolve() / 'out'}"
    with pytest.raises(InputError):
        oci_reference(tmp_path / "a:b")


def test_builders_are_listed_by_name() -> None:
    assert sorted(BUILDERS) == ["buildah", "docker"]


def test_a_missing_tool_points_at_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SocleError, match="buildah is not installed") as caught:
        BUILDERS["buildah"]()
    assert caught.value.hint is not None
    assert "make setup" in caught.value.hint
