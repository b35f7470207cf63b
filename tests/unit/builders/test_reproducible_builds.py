"""A BuildRequest with a SOURCE_DATE_EPOCH: what each builder is told, and what it writes."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from socle.builders import BuildRequest
from socle.builders.buildah import BuildahBuilder, bud_command
from socle.builders.docker import DockerBuilder, build_command
from socle.builders.interface import EPOCH_LABEL
from socle.builders.normalise import NormaliseError, diff_ids_of
from socle.oci.layout import read_image_layout, write_image_layout
from socle.process import Completed

EPOCH = 1_764_633_600  # 2025-12-02T00:00:00Z
BASE = "127.0.0.1:5000/my/debian@sha256:" + "a" * 64


def request(tmp_path: Path, **changes: Any) -> BuildRequest:
    fields: dict[str, Any] = {
        "context": tmp_path / "ctx",
        "dockerfile": tmp_path / "ctx" / "Dockerfile",
        "build_args": {"BASE_IMAGE": BASE},
        "labels": {"org.example.a": "1"},
        "name": "socle-build/app:1",
        "output": tmp_path / "out",
    }
    return BuildRequest(**{**fields, **changes})


def _tar(path: Path, files: dict[str, int]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, mtime in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = 1, mtime
            tar.addfile(info, io.BytesIO(b"x"))
    return path


def _built_layout(out: Path, work: Path) -> str:
    """What a builder exports: the parent's layer, then one with a log and a fresh file."""
    parent = _tar(work / "parent.tar", {"bin/sh": 1_000})
    own = _tar(work / "own.tar", {"app/conf": EPOCH + 7_000, "var/log/dpkg.log": EPOCH + 7_000})
    config = {"architecture": "amd64", "os": "linux", "created": "2025-12-02T02:00:00Z"}
    write_image_layout(out, layers=[parent, own], config=config)
    return read_image_layout(out).diff_ids[0]


def test_without_an_epoch_the_command_lines_are_as_before(tmp_path: Path) -> None:
    for cmd in (bud_command(request(tmp_path)), build_command(request(tmp_path))):
        assert "--timestamp" not in cmd
        assert not any("SOURCE_DATE_EPOCH" in word or EPOCH_LABEL in word for word in cmd)


def test_with_an_epoch_buildah_gets_the_timestamp_the_argument_and_the_label(
    tmp_path: Path,
) -> None:
    cmd = bud_command(request(tmp_path, source_date_epoch=EPOCH))
    assert cmd[cmd.index("--timestamp") + 1] == str(EPOCH)
    assert f"SOURCE_DATE_EPOCH={EPOCH}" in cmd
    assert f"{EPOCH_LABEL}={EPOCH}" in cmd


def test_with_an_epoch_docker_gets_the_argument_and_the_label(tmp_path: Path) -> None:
    cmd = build_command(request(tmp_path, source_date_epoch=EPOCH))
    assert f"SOURCE_DATE_EPOCH={EPOCH}" in cmd
    assert f"{EPOCH_LABEL}={EPOCH}" in cmd


def test_a_declared_source_date_epoch_argument_wins(tmp_path: Path) -> None:
    req = request(tmp_path, source_date_epoch=EPOCH, build_args={"SOURCE_DATE_EPOCH": "5"})
    assert req.effective_build_args()["SOURCE_DATE_EPOCH"] == "5"


@pytest.mark.parametrize("builder", ["buildah", "docker"])
def test_a_reproducible_build_normalises_only_the_layers_above_the_parent(
    tmp_path: Path, fake_run: Any, builder: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    parent_id: list[str] = []

    def handler(cmd: list[str]) -> Completed:
        if "push" in cmd or cmd[:2] == ["skopeo", "copy"]:
            parent_id.append(_built_layout(Path(cmd[-1].removeprefix("oci:")), work))
        if "inspect" in cmd:
            assert cmd[-1] == BASE
            if builder == "buildah":
                return Completed(json.dumps({"OCIv1": {"rootfs": {"diff_ids": parent_id}}}), "")
            return Completed(json.dumps([{"RootFS": {"Layers": parent_id}}]), "")
        return Completed("", "")

    runner = fake_run(handler)
    made = BuildahBuilder(run=runner) if builder == "buildah" else DockerBuilder(run=runner)
    before = _built_layout(work / "copy", work)
    parent_blob = read_image_layout(work / "copy").layers[0]

    made.build(request(tmp_path, source_date_epoch=EPOCH))

    image = read_image_layout(tmp_path / "out")
    assert image.diff_ids[0] == before and image.layers[0] == parent_blob
    assert image.config["created"] == "2025-12-02T00:00:00Z"
    assert image.digest != read_image_layout(work / "copy").digest
    with tarfile.open(image.blob_path(image.layers[1].digest)) as tar:
        members = tar.getmembers()
    assert [(m.name, m.mtime) for m in members] == [("app/conf", EPOCH)]


def test_an_unreadable_description_of_the_parent_is_one_clear_error() -> None:
    with pytest.raises(NormaliseError, match="cannot read the parent's layers"):
        diff_ids_of("[]", (0, "RootFS", "Layers"))
