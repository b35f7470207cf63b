"""The normaliser on tiny synthetic layouts: a parent layer, then what a build added."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from socle.builders import BuildRequest
from socle.builders.normalise import (
    NormaliseError,
    is_noise,
    normalise_layout,
    reproduce,
    reproduce_build,
)
from socle.oci.layout import read_image_layout, write_image_layout
from socle.oci.media import BASE_DIGEST, BASE_NAME

EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z
LATER = EPOCH + 86_400 * 3  # "now", during the build
OLDER = EPOCH - 86_400 * 400  # a packaged file's time
Entry = tuple[str, bytes | None, int]  # name, content (None: a directory), mtime


def _tar(path: Path, entries: list[Entry], *, atime: float | None = None) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mtime in entries:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uid, info.gid, info.mode = 0, 0, 0o644
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size = len(data)
            if atime is not None:
                info.pax_headers = {"atime": str(atime), "mtime": f"{mtime}.{int(atime) % 997}"}
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


BUILD: list[Entry] = [
    ("etc", None, LATER),
    ("etc/app.conf", b"port=8080\n", LATER),
    ("usr/share/doc/pkg/copyright", b"packaged\n", OLDER),
    ("var/log/dpkg.log", b"2026-12-02 02:00:01 install pkg\n", LATER),
    ("var/log/apt/history.log", b"Start-Date: 2026-12-02\n", LATER),
    ("var/log/apt", None, LATER),
    ("var/lib/apt/lists", None, LATER),
    ("var/lib/apt/lists/lock", b"", LATER),
    ("var/cache/ldconfig/aux-cache", b"\x01\x02", LATER),
    ("var/cache/debconf/config.dat-old", b"old\n", LATER),
    ("var/cache/apt/pkgcache.bin", b"cache", LATER),
    ("var/log/.wh.alternatives.log", b"", LATER),
    ("etc/machine-id", b"7bbd971d7c90454f9c6dd18e9ef96828\n", LATER),
]


def _layout(
    tmp_path: Path,
    name: str,
    *,
    build: list[Entry],
    atime: float | None = None,
    labels: dict[str, str] | None = None,
) -> Path:
    parent = _tar(tmp_path / f"{name}-parent.tar", [("bin", None, OLDER), ("bin/sh", b"#!", OLDER)])
    built = _tar(tmp_path / f"{name}-build.tar", build, atime=atime)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-12-02T02:00:05.123456789Z",
        "config": {"Labels": labels or {"a": "b"}},
        "history": [
            {"created": "2023-01-01T00:00:00Z", "created_by": "bootstrap", "comment": "FROM a/b:1"},
            {"created": "2026-12-02T02:00:04.5Z", "created_by": "ENV A=1", "empty_layer": True},
            {
                "created": "2026-12-02T02:00:05Z",
                "created_by": "RUN apt-get install pkg",
                "comment": "FROM 3684b562a749",
            },
        ],
    }
    out = tmp_path / name
    annotations = {
        "org.opencontainers.image.base.digest": "sha256:" + name[0] * 64,  # a local stage
        "org.opencontainers.image.base.name": "",
        "org.example.kept": "yes",
    }
    write_image_layout(
        out, layers=[parent, built], config=config, annotations=annotations, ref_name="latest"
    )
    return out


def _members(layout: Path, index: int) -> dict[str, tarfile.TarInfo]:
    image = read_image_layout(layout)
    data = gzip.decompress(image.blob_path(image.layers[index].digest).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_noise_is_dropped_and_meaningful_files_stay(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=BUILD)

    result = normalise_layout(layout, epoch=EPOCH, keep=1)

    names = set(_members(layout, 1))
    assert names == {
        "etc",
        "etc/app.conf",
        "usr/share/doc/pkg/copyright",
        "var/log/apt",
        "var/lib/apt/lists",
        "var/log/.wh.alternatives.log",
    }
    assert "var/log/dpkg.log" in result.dropped
    assert "etc/machine-id" in result.dropped
    assert "var/cache/ldconfig/aux-cache" in result.dropped


def test_whiteouts_are_kept_even_of_noise_paths(tmp_path: Path) -> None:
    assert not is_noise("var/log/apt/.wh.history.log")
    assert is_noise("./var/log/apt/history.log")
    layout = _layout(tmp_path, "a", build=BUILD)
    normalise_layout(layout, epoch=EPOCH, keep=1)
    assert "var/log/.wh.alternatives.log" in _members(layout, 1)


def test_mtimes_are_clamped_to_the_epoch_and_pax_times_dropped(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=BUILD, atime=LATER + 0.25)

    normalise_layout(layout, epoch=EPOCH, keep=1)

    members = _members(layout, 1)
    assert members["etc/app.conf"].mtime == EPOCH
    assert members["usr/share/doc/pkg/copyright"].mtime == OLDER  # older times stay
    assert all(
        "atime" not in m.pax_headers and "mtime" not in m.pax_headers for m in members.values()
    )
    assert members["etc/app.conf"].mode == 0o644 and members["etc"].mode == 0o755


def test_the_parent_layer_stays_byte_for_byte(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=BUILD)
    before = read_image_layout(layout)
    parent_blob = before.blob_path(before.layers[0].digest).read_bytes()

    normalise_layout(layout, epoch=EPOCH, keep=1)

    after = read_image_layout(layout)
    assert after.layers[0] == before.layers[0]
    assert after.diff_ids[0] == before.diff_ids[0]
    assert after.blob_path(after.layers[0].digest).read_bytes() == parent_blob
    assert after.layers[1].digest != before.layers[1].digest


def test_two_builds_differing_only_in_noise_and_times_give_one_digest(tmp_path: Path) -> None:
    # The same files in the same order; the build's own times and the logs differ.
    other = [
        (name, b"other log\n" if data and "log" in name else data, mtime + 3_600)
        if mtime == LATER
        else (name, data, mtime)
        for name, data, mtime in BUILD
    ]
    first = _layout(tmp_path, "a", build=BUILD, atime=LATER + 0.5)
    second = _layout(tmp_path, "b", build=other, atime=LATER + 7.75)
    assert read_image_layout(first).digest != read_image_layout(second).digest

    one = normalise_layout(first, epoch=EPOCH, keep=1)
    two = normalise_layout(second, epoch=EPOCH, keep=1)

    assert one.digest == two.digest == read_image_layout(first).digest


def test_normalising_twice_changes_nothing(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=BUILD)
    once = normalise_layout(layout, epoch=EPOCH, keep=1).digest
    copy = tmp_path / "copy"
    shutil.copytree(layout, copy)
    assert normalise_layout(copy, epoch=EPOCH, keep=1).digest == once


def test_config_dates_become_the_epoch_and_index_and_blobs_follow(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=BUILD)
    before = read_image_layout(layout)

    result = normalise_layout(layout, epoch=EPOCH, keep=1)

    image = read_image_layout(layout)
    assert image.digest == result.digest
    assert image.ref_name == "latest"
    assert image.config["created"] == "2023-11-14T22:13:20Z"
    dates = [entry["created"] for entry in image.config["history"]]
    assert dates == ["2023-01-01T00:00:00Z", "2023-11-14T22:13:20Z", "2023-11-14T22:13:20Z"]
    assert image.config["config"] == {"Labels": {"a": "b"}}
    blobs = {p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert before.digest.split(":")[1] not in blobs  # the replaced manifest is gone
    assert {b.digest.split(":")[1] for b in image.manifest.blobs()} | {
        image.digest.split(":")[1]
    } == blobs


def test_a_layer_of_only_noise_is_removed_and_its_history_marked_empty(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=[("var/log/dpkg.log", b"x", LATER)])

    result = normalise_layout(layout, epoch=EPOCH, keep=1)

    image = read_image_layout(layout)
    assert result.empty_layers == 1
    assert len(image.layers) == len(image.diff_ids) == 1
    assert image.config["history"][2]["empty_layer"] is True


def test_keeping_more_layers_than_the_image_has_is_refused(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=BUILD)
    with pytest.raises(NormaliseError, match="cannot keep 3 parent layers"):
        normalise_layout(layout, epoch=EPOCH, keep=3)


def test_a_stage_s_local_image_id_in_a_history_comment_is_replaced(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=BUILD)

    normalise_layout(layout, epoch=EPOCH, keep=1)

    comments = [entry.get("comment") for entry in read_image_layout(layout).config["history"]]
    assert comments == ["FROM a/b:1", None, "FROM <stage>"]


def test_a_local_parent_named_in_a_history_comment_is_recorded_by_its_published_name(
    tmp_path: Path,
) -> None:
    # buildah writes "FROM NAME" for the first step on a base; a child built on its
    # parent's local copy must record what a build on the published parent records.
    for name, base in (("a", "a/b:1"), ("b", "b/b:1")):
        layout = _layout(tmp_path, name, build=BUILD)
        parent = read_image_layout(layout).diff_ids[:1]
        reproduce(
            layout, epoch=EPOCH, base_diff_ids=parent, base=base, base_recorded_as="reg.test/t/b:1"
        )
        comments = [entry.get("comment") for entry in read_image_layout(layout).config["history"]]
        expected = "FROM reg.test/t/b:1" if name == "a" else "FROM a/b:1"  # only `base` is renamed
        assert comments == [expected, None, "FROM <stage>"]


def test_the_builder_s_base_annotations_go_and_others_stay(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "a", build=BUILD)

    normalise_layout(layout, epoch=EPOCH, keep=1)

    assert read_image_layout(layout).manifest.json()["annotations"] == {"org.example.kept": "yes"}


def test_base_labels_inherited_from_the_parent_go_unless_the_build_sets_them(
    tmp_path: Path,
) -> None:
    # A parent an earlier socle published names its own parent in its labels; its
    # child would say its base is its grandparent. A rebuild of an image published
    # with those labels sets them again: they stay.
    grandparent = {BASE_NAME: "reg.test/t/debian:12", BASE_DIGEST: "sha256:" + "c" * 64}
    for name, own in (("a", {}), ("b", grandparent)):
        layout = _layout(tmp_path, name, build=BUILD, labels={**grandparent, "a": "b"})
        request = BuildRequest(
            context=tmp_path,
            dockerfile=tmp_path / "Dockerfile",
            build_args={},
            labels=own,
            name=f"socle-build/{name}:1",
            output=layout,
            source_date_epoch=EPOCH,
        )
        reproduce_build(request, read_image_layout(layout).diff_ids[:1])
        labels = read_image_layout(layout).config["config"]["Labels"]
        assert labels == ({"a": "b"} if name == "a" else {**grandparent, "a": "b"})
