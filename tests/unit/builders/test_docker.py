from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from socle.builders import BuildFailed, BuildRequest, RunResult
from socle.builders.docker import (
    DockerBuilder,
    build_command,
    export_command,
    load_command,
    new_layers,
    run_command,
)
from socle.errors import InputError
from socle.process import Completed


def request(tmp_path: Path) -> BuildRequest:
    return BuildRequest(
        context=tmp_path / "ctx",
        dockerfile=tmp_path / "ctx" / "Dockerfile",
        build_args={"BASE_IMAGE": "127.0.0.1:5000/my/debian:12@sha256:" + "a" * 64},
        labels={"org.example.a": "1"},
        name="socle-build/java:17-debian12",
        output=tmp_path / "out",
        insecure_registries=("127.0.0.1:5000",),
    )


def test_build_command_uses_host_network(tmp_path: Path) -> None:
    req = request(tmp_path)
    assert build_command(req) == [
        "docker", "build", "--network", "host", "--force-rm", "-f", str(req.dockerfile),
        "--build-arg", f"BASE_IMAGE={req.build_args['BASE_IMAGE']}",
        "--label", "org.example.a=1", "-t", "socle-build/java:17-debian12", str(req.context),
    ]  # fmt: skip


def test_skopeo_moves_images_between_daemon_and_layouts(tmp_path: Path) -> None:
    oci = f"oci:{(tmp_path / 'out').resolve()}"
    assert export_command("my/java", tmp_path / "out") == [
        "skopeo", "copy", "docker-daemon:my/java:latest", oci,
    ]  # fmt: skip
    assert load_command(tmp_path / "out", "my/java:17") == [
        "skopeo", "copy", oci, "docker-daemon:my/java:17",
    ]  # fmt: skip


def test_run_command_has_no_network_and_never_pulls() -> None:
    assert run_command("my/java:17", ["id", "-u"], user="65534") == [
        "docker", "run", "--rm", "--network", "none", "--pull", "never",
        "--user", "65534", "my/java:17", "id", "-u",
    ]  # fmt: skip


def test_build_uses_the_classic_builder_then_exports(
    tmp_path: Path, fake_run: Any, layout: Callable[[Path, int], None]
) -> None:
    def handler(cmd: list[str]) -> Completed:
        if cmd[0] == "skopeo":
            layout(Path(cmd[3].removeprefix("oci:")), 1)
        return Completed("Step 1/1 : FROM base\nSuccessfully built abc\n", "")

    runner = fake_run(handler)
    result = DockerBuilder(run=runner).build(request(tmp_path))
    assert result.layout == tmp_path / "out"
    assert runner.calls[0][1]["env"] == {"DOCKER_BUILDKIT": "0"}
    assert runner.commands[1][:3] == [
        "skopeo",
        "copy",
        "docker-daemon:socle-build/java:17-debian12",
    ]


def test_a_failing_step_raises_build_failed(
    tmp_path: Path, fake_run: Any, command_error: Any
) -> None:
    stdout = "Step 3/3 : RUN cat /x\n ---> Running in 1\n\x1b[91mcat: can't open '/x'\n\x1b[0m"
    stderr = (
        "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n"
        "            BuildKit is currently disabled; enable it by removing the DOCKER_BUILDKIT=0\n"
        "            environment-variable.\n"
        "\n"
        "The command '/bin/sh -c cat /x' returned a non-zero code: 1\n"
    )

    def handler(cmd: list[str]) -> Completed:
        raise command_error(cmd, 1, stdout, stderr)

    with pytest.raises(BuildFailed, match="failed at step `RUN cat /x`") as caught:
        DockerBuilder(run=fake_run(handler)).build(request(tmp_path))
    message = caught.value.message
    assert "  | cat: can't open '/x'" in message.splitlines()
    assert "returned a non-zero code: 1" in message
    assert "DEPRECATED" not in message and "BuildKit" not in message


def test_run_reports_non_zero_exits(fake_run: Any, command_error: Any) -> None:
    def handler(cmd: list[str]) -> Completed:
        raise command_error(cmd, 2, "", "nope\n")

    assert DockerBuilder(run=fake_run(handler)).run("x", ["false"]) == RunResult(2, "", "nope\n")


def test_remove_deletes_the_image_from_the_daemon(fake_run: Any) -> None:
    runner = fake_run()
    DockerBuilder(run=runner).remove("socle-build/x:1")
    assert runner.commands == [["docker", "image", "rm", "socle-build/x:1"]]


def test_removing_a_missing_image_is_quiet(
    fake_run: Any, command_error: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(cmd: list[str]) -> Completed:
        raise command_error(cmd, 1, "", "Error: No such image: x\n")

    with caplog.at_level(logging.DEBUG, logger="socle.builders"):
        DockerBuilder(run=fake_run(handler)).remove("x")  # does not raise
    assert caplog.records == []


def test_an_image_that_cannot_be_removed_is_one_warning_naming_it(
    fake_run: Any, command_error: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stderr = (
        "Error response from daemon: conflict: unable to remove repository reference "
        '"socle-build/x:1" (must force) - container 3f2a is using its referenced image\n'
    )

    def handler(cmd: list[str]) -> Completed:
        raise command_error(cmd, 1, "", stderr)

    with caplog.at_level(logging.WARNING, logger="socle.builders"):
        DockerBuilder(run=fake_run(handler)).remove("socle-build/x:1")  # clean-up never fails
    [record] = caplog.records
    assert record.getMessage().startswith("could not remove the local image socle-build/x:1: ")
    assert "is using its referenced image" in record.getMessage()


CLASSIC_LOG = """Step 2/5 : FROM ${BASE_IMAGE}
 ---> 48d2b07afd8d
Step 3/5 : RUN echo cached
 ---> Using cache
 ---> 1111aaaa2222
Step 4/5 : RUN echo hi > /hello
 ---> Running in 6648dec7f9fc
Removing intermediate container 6648dec7f9fc
 ---> 3ae6daea7a89
Step 5/5 : RUN false
 ---> Running in 29612a517515
Removing intermediate container 29612a517515
"""


def test_new_layers_are_only_those_the_build_committed() -> None:
    assert new_layers(CLASSIC_LOG) == ["3ae6daea7a89"]


def test_a_failed_build_removes_the_images_it_left_dangling(
    tmp_path: Path, fake_run: Any, command_error: Any
) -> None:
    def handler(cmd: list[str]) -> Completed:
        if cmd[1] == "build":
            raise command_error(cmd, 1, CLASSIC_LOG, "The command '/bin/sh -c false' returned 1")
        return Completed("", "")

    runner = fake_run(handler)
    with pytest.raises(BuildFailed):
        DockerBuilder(run=runner).build(request(tmp_path))
    assert runner.commands[1:] == [["docker", "image", "rm", "3ae6daea7a89"]]


def test_docker_refuses_pins_it_cannot_mount(tmp_path: Path) -> None:
    pinned = dataclasses.replace(request(tmp_path), apt_preferences=tmp_path / "pins")
    with pytest.raises(InputError, match="cannot mount the pinned package versions") as caught:
        build_command(pinned)
    assert caught.value.hint == "rebuild with --builder buildah"
