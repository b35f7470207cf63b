from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from socle.builders import BuildFailed, BuildRequest, RunResult
from socle.builders.buildah import BuildahBuilder, bud_command, push_command, run_command
from socle.errors import InputError
from socle.process import Completed


def request(tmp_path: Path, **changes: Any) -> BuildRequest:
    fields: dict[str, Any] = {
        "context": tmp_path / "ctx",
        "dockerfile": tmp_path / "ctx" / "Dockerfile",
        "build_args": {"BASE_IMAGE": "127.0.0.1:5000/my/debian:12@sha256:" + "a" * 64, "A": "1"},
        "labels": {"org.example.b": "2", "org.example.a": "1"},
        "name": "socle-build/java:17-debian12",
        "output": tmp_path / "out",
        "insecure_registries": ("127.0.0.1:5000",),
    }
    return BuildRequest(**{**fields, **changes})


def test_bud_command_uses_host_network_and_sorted_arguments(tmp_path: Path) -> None:
    req = request(tmp_path)
    assert bud_command(req) == [
        "buildah", "bud", "--network", "host", "--pull=missing", "--format", "oci",
        "-f", str(req.dockerfile), "--tls-verify=false",
        "--build-arg", "A=1", "--build-arg", f"BASE_IMAGE={req.build_args['BASE_IMAGE']}",
        "--label", "org.example.a=1", "--label", "org.example.b=2",
        "-t", "socle-build/java:17-debian12", str(req.context),
    ]  # fmt: skip


def test_tls_stays_verified_without_insecure_registries(tmp_path: Path) -> None:
    assert "--tls-verify=false" not in bud_command(request(tmp_path, insecure_registries=()))


def test_a_pinned_storage_driver_goes_to_every_command(tmp_path: Path) -> None:
    req = request(tmp_path)
    for cmd in (
        bud_command(req, storage_driver="vfs"),
        push_command("x:1", tmp_path / "out", storage_driver="vfs"),
        run_command("c", ["true"], user=None, storage_driver="vfs"),
    ):
        assert cmd[:3] == ["buildah", "--storage-driver", "vfs"]


def test_build_pushes_the_image_to_an_oci_layout(
    tmp_path: Path, fake_run: Any, layout: Callable[[Path, int], None]
) -> None:
    def handler(cmd: list[str]) -> Completed:
        if cmd[1] == "push":
            layout(Path(cmd[3].removeprefix("oci:")), 1)
        return Completed("STEP 1/1: FROM base\n", "")

    runner = fake_run(handler)
    result = BuildahBuilder(run=runner).build(request(tmp_path))
    assert result.layout == tmp_path / "out"
    assert "STEP 1/1: FROM base" in result.log_tail
    assert runner.commands[1] == [
        "buildah", "push", "socle-build/java:17-debian12", f"oci:{(tmp_path / 'out').resolve()}",
    ]  # fmt: skip


def test_a_failing_step_raises_build_failed_with_the_log_tail(
    tmp_path: Path, fake_run: Any, command_error: Any
) -> None:
    stdout = "STEP 1/2: FROM base\nSTEP 2/2: RUN cat /nope\ncat: can't open '/nope'\n"
    stderr = 'Error: building at STEP "RUN cat /nope": while running runtime: exit status 1\n'

    def handler(cmd: list[str]) -> Completed:
        raise command_error(cmd, 1, stdout, stderr)

    with pytest.raises(BuildFailed) as caught:
        BuildahBuilder(run=fake_run(handler)).build(request(tmp_path))
    assert caught.value.step == "RUN cat /nope"
    assert "cat: can't open '/nope'" in caught.value.message
    assert "socle-build/java:17-debian12" in caught.value.message


def test_run_returns_the_exit_code_and_removes_the_container(
    fake_run: Any, command_error: Any
) -> None:
    def handler(cmd: list[str]) -> Completed:
        if cmd[1] == "run":
            raise command_error(
                cmd, 3, "out\n", "err\nError: while running runtime: exit status 3\n"
            )
        return Completed("", "")

    runner = fake_run(handler)
    result = BuildahBuilder(run=runner).run("my/image:1", ["sh", "-c", "exit 3"], user="65534")
    assert result == RunResult(3, "out\n", "err\n")
    (_, _, _, _, container, _), run_cmd, rm_cmd = runner.commands
    assert run_cmd == [
        "buildah", "run", "--network", "none", "--user", "65534", container, "--",
        "sh", "-c", "exit 3",
    ]  # fmt: skip
    assert rm_cmd == ["buildah", "rm", container]


def test_load_pulls_through_a_unique_alias_then_names_the_image(
    tmp_path: Path, fake_run: Any, layout: Callable[[Path, int], None]
) -> None:
    layout(tmp_path / "layout", 1)
    outputs = {"pull": "Getting...\nabc123\n", "info": f"{tmp_path / 'run'}\n"}
    (tmp_path / "run").mkdir()
    runner = fake_run(lambda cmd: Completed(outputs.get(cmd[1], ""), ""))
    BuildahBuilder(run=runner).load(tmp_path / "layout", "socle-test/debian:12")
    info, pull, tag, rmi = runner.commands
    alias = pull[3].removeprefix("oci:")
    assert info == ["buildah", "info", "--format", "{{.store.RunRoot}}"]
    assert pull[:3] == ["buildah", "pull", "-q"] and alias.startswith("socle-load-")
    assert tag == ["buildah", "tag", "abc123", "socle-test/debian:12"]
    assert rmi == ["buildah", "rmi", f"localhost/{alias}:latest"]
    assert (tmp_path / "run" / "socle-names.lock").exists()  # the store's, for every process


def test_a_buildah_that_names_no_run_root_is_one_error_saying_where_to_look(
    tmp_path: Path, fake_run: Any, layout: Callable[[Path, int], None]
) -> None:
    layout(tmp_path / "layout", 1)
    with pytest.raises(InputError, match="run root") as caught:
        BuildahBuilder(run=fake_run()).load(tmp_path / "layout", "socle-test/debian:12")
    assert "storage.conf" in caught.value.diagnostics()


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    """The names lock of a store of the test's own."""
    return tmp_path / "names.lock"


def test_remove_deletes_the_image_from_buildah_s_storage(fake_run: Any, lock: Path) -> None:
    runner = fake_run()
    BuildahBuilder(run=runner, storage_driver="vfs", names_lock=lock).remove("socle-build/x:1")
    assert runner.commands == [["buildah", "--storage-driver", "vfs", "rmi", "socle-build/x:1"]]


def test_removing_a_missing_image_is_quiet(
    fake_run: Any, command_error: Any, caplog: pytest.LogCaptureFixture, lock: Path
) -> None:
    def handler(cmd: list[str]) -> Completed:
        raise command_error(cmd, 1, "", "Error: x: image not known\n")

    runner = fake_run(handler)
    with caplog.at_level(logging.DEBUG, logger="socle.builders"):
        BuildahBuilder(run=runner, names_lock=lock).remove("x")  # does not raise
    assert runner.commands == [["buildah", "rmi", "x"]]
    assert caplog.records == []


def test_the_images_of_a_run_go_in_one_command_and_a_missing_one_is_quiet(
    fake_run: Any, command_error: Any, caplog: pytest.LogCaptureFixture, lock: Path
) -> None:
    # What buildah 1.28 prints when one of several is gone (it removes the others).
    stderr = "Error: 1 error occurred:\n\t* socle-build/t/b:1: image not known\n\n"

    def handler(cmd: list[str]) -> Completed:
        raise command_error(cmd, 125, "", stderr)

    runner = fake_run(handler)
    with caplog.at_level(logging.DEBUG, logger="socle.builders"):
        BuildahBuilder(run=runner, names_lock=lock).remove("socle-build/t/a:1", "socle-build/t/b:1")
    assert runner.commands == [["buildah", "rmi", "socle-build/t/a:1", "socle-build/t/b:1"]]
    assert caplog.records == []


def test_an_image_that_cannot_be_removed_is_one_warning_naming_it(
    fake_run: Any, command_error: Any, caplog: pytest.LogCaptureFixture, lock: Path
) -> None:
    stderr = "Error: image used by 3f2a: image is in use by a container: consider listing ...\n"

    def handler(cmd: list[str]) -> Completed:
        raise command_error(cmd, 125, "", stderr)

    with caplog.at_level(logging.WARNING, logger="socle.builders"):
        BuildahBuilder(run=fake_run(handler), names_lock=lock).remove(
            "socle-build/x:1"
        )  # clean-up never fails
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("could not remove the local image socle-build/x:1: ")
    assert "image is in use by a container" in record.getMessage()


def test_pinned_package_versions_are_mounted_read_only_as_apt_preferences(tmp_path: Path) -> None:
    cmd = bud_command(request(tmp_path, apt_preferences=tmp_path / "pins"))
    at = cmd.index("--volume")
    assert cmd[at + 1] == f"{tmp_path / 'pins'}:/etc/apt/preferences.d:ro"
    assert "--volume" not in bud_command(request(tmp_path))
