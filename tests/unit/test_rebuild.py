"""`verify_rebuild` with an in-memory registry and a builder that writes a prepared layout."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from socle.builders import BuildRequest, BuildResult, RunResult
from socle.builders.interface import EPOCH_LABEL
from socle.core.state import FINGERPRINT, INPUTS
from socle.errors import InputError
from socle.inputs import InputReader
from socle.oci.content import Manifest, with_annotations
from socle.oci.layout import (
    read_blob,
    read_image_layout,
    write_blob,
    write_image_layout,
    write_index,
)
from socle.oci.media import BASE_DIGEST, BASE_NAME, REF_NAME
from socle.oci.reference import Reference
from socle.rebuild import NotReproduced, verify_rebuild
from socle.validate import validate
from tests.conftest import CatalogWriter

REGISTRY = "127.0.0.1:5000"
PARENT = "sha256:" + "b" * 64
EPOCH = 1_764_633_600
CATALOG = """\
    registry: 127.0.0.1:5000
    namespace: my
    images:
      base:
        upstream: 127.0.0.1:5000/up/base
        versions:
          "1": {digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}
      app:
        parents: [base]
        versions: ["2"]
"""


class LayoutSource:
    """An ImageSource serving one OCI layout under any reference."""

    def __init__(self, layout: Path) -> None:
        self.layout = layout

    def get_manifest(self, ref: Reference) -> Manifest:
        descriptor = json.loads((self.layout / "index.json").read_text())["manifests"][0]
        return Manifest.of(read_blob(self.layout, descriptor["digest"]), descriptor["mediaType"])

    def get_blob(self, ref: Reference, digest: str) -> bytes:
        return (self.layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


class CopyBuilder:
    """A builder whose build output is a prepared layout."""

    name = "fake"

    def __init__(self, layout: Path) -> None:
        self.layout = layout
        self.requests: list[BuildRequest] = []
        self.removed: list[str] = []

    def build(self, request: BuildRequest) -> BuildResult:
        self.requests.append(request)
        shutil.copytree(self.layout, request.output)
        return BuildResult(request.output, "")

    def load(self, layout: Path, name: str) -> None:
        raise AssertionError("not used")

    def run(self, name: str, command: object, **kw: object) -> RunResult:
        raise AssertionError("not used")

    def remove(self, *names: str) -> None:
        self.removed.extend(names)


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _image(out: Path, work: Path, files: dict[str, bytes], labels: dict[str, str]) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    layers = [_tar(work / "0.tar", {"bin/sh": b"sh"}), _tar(work / "1.tar", files)]
    config = {"architecture": "amd64", "os": "linux", "config": {"Labels": labels}}
    write_image_layout(out, layers=layers, config=config)
    return out


def _publish(layout: Path) -> None:
    """What push_layout does: the manifest gets the gates' annotations (a new digest)."""
    image = read_image_layout(layout)
    published = with_annotations(image.manifest, {"io.github.socle.tests": "3 passed"})
    write_blob(layout, published.data, published.media_type)
    write_index(layout, [published.descriptor])


@pytest.fixture
def setup(tmp_path: Path, write_catalog: CatalogWriter) -> tuple[object, object, dict[str, str]]:
    return _catalog_and_records(write_catalog(CATALOG, contexts=("app",)))


def _catalog_and_records(path: Path) -> tuple[object, object, dict[str, str]]:
    """The catalog at `path`, its graph, and what `socle build` records on its `app`."""
    catalog, graph = validate(path)
    (variant,) = (v for v in graph.variants if v.image.name == "app")
    labels = {
        FINGERPRINT: "sha256:" + "f" * 64,
        INPUTS: json.dumps(dict(InputReader().components(variant))),
        EPOCH_LABEL: str(EPOCH),
        REF_NAME: variant.exact_tag,
        BASE_NAME: f"{REGISTRY}/my/base:1",
        BASE_DIGEST: PARENT,
    }
    return catalog, graph, labels


def _verify(
    tmp_path: Path,
    setup: tuple[object, object, dict[str, str]],
    rebuilt: dict[str, bytes],
    *,
    labels: dict[str, str] | None = None,
    published_files: dict[str, bytes] | None = None,
    builder_type: type[CopyBuilder] = CopyBuilder,
) -> tuple[object, CopyBuilder]:
    """Publish an image (of `published_files`, else one config file), rebuild it as `rebuilt`."""
    catalog, graph, recorded = setup
    published = _image(
        tmp_path / "pub",
        tmp_path / "w1",
        published_files or {"etc/app.conf": b"port=80\n"},
        recorded if labels is None else labels,
    )
    _publish(published)
    builder = builder_type(_image(tmp_path / "new", tmp_path / "w2", rebuilt, recorded))
    verdict = verify_rebuild(
        catalog, graph, LayoutSource(published), builder,  # type: ignore[arg-type]
        f"{REGISTRY}/my/app:2-base1", work=tmp_path / "work",
    )  # fmt: skip
    return verdict, builder


def test_an_identical_rebuild_is_one_line_naming_the_digest(
    tmp_path: Path, setup: tuple[object, object, dict[str, str]]
) -> None:
    verdict, builder = _verify(tmp_path, setup, {"etc/app.conf": b"port=80\n"})

    assert verdict.same  # type: ignore[attr-defined]
    (line,) = verdict.lines  # type: ignore[attr-defined]
    assert line.startswith(f"{REGISTRY}/my/app:2-base1: reproduced") and "sha256:" in line
    (request,) = builder.requests
    assert request.source_date_epoch == EPOCH
    assert request.build_args["BASE_IMAGE"] == f"{REGISTRY}/my/base@{PARENT}"
    assert request.labels[FINGERPRINT] == setup[2][FINGERPRINT]
    assert builder.removed == [request.name]


def test_a_different_rebuild_names_the_layer_and_the_file(
    tmp_path: Path, setup: tuple[object, object, dict[str, str]]
) -> None:
    with pytest.raises(NotReproduced) as caught:
        _verify(tmp_path, setup, {"etc/app.conf": b"port=8080\n", "etc/new": b"x"})

    message = caught.value.message
    assert "not reproduced" in message
    assert "layer 2 of 2 differs" in message
    assert "1 added, 0 removed, 1 changed paths" in message
    assert "changed  etc/app.conf (8 -> 10 bytes: content)" in message
    assert "added    etc/new (1 bytes)" in message


def test_an_image_without_socle_records_is_refused(
    tmp_path: Path, setup: tuple[object, object, dict[str, str]]
) -> None:
    with pytest.raises(InputError, match="is not an image socle built"):
        _verify(tmp_path, setup, {}, labels={"maintainer": "someone"})


def test_an_image_built_without_an_epoch_is_refused(
    tmp_path: Path, setup: tuple[object, object, dict[str, str]]
) -> None:
    labels = {k: v for k, v in setup[2].items() if k != EPOCH_LABEL}
    with pytest.raises(InputError, match="records no SOURCE_DATE_EPOCH"):
        _verify(tmp_path, setup, {}, labels=labels)


def test_changed_inputs_are_named_before_anything_is_built(
    tmp_path: Path, setup: tuple[object, object, dict[str, str]]
) -> None:
    (tmp_path / "app" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nUSER 1\n")
    with pytest.raises(NotReproduced, match="the catalog's dockerfile of app:2-base1 differs from"):
        _verify(tmp_path, setup, {"etc/app.conf": b"port=80\n"})


DPKG_STATUS = (
    b"Package: libssl3\nStatus: install ok installed\nVersion: 3.0.17-1~deb12u2\n"
    b"Architecture: amd64\nSource: openssl\n\n"
    b"Package: tzdata\nStatus: install ok installed\nVersion: 2025b-0+deb12u1\n"
    b"Architecture: all\n\n"
)


class BuildahLike(CopyBuilder):
    name = "buildah"

    def build(self, request: BuildRequest) -> BuildResult:
        assert request.apt_preferences is not None
        self.pins = sorted(p.name for p in request.apt_preferences.iterdir())
        self.pinned = (request.apt_preferences / "socle-rebuild-pins").read_text()
        return super().build(request)


def test_buildah_rebuilds_with_apt_pinned_to_the_published_package_versions(
    tmp_path: Path, setup: tuple[object, object, dict[str, str]]
) -> None:
    files = {"var/lib/dpkg/status": DPKG_STATUS}
    verdict, builder = _verify(
        tmp_path, setup, files, published_files=files, builder_type=BuildahLike
    )

    assert verdict.same  # type: ignore[attr-defined]
    assert isinstance(builder, BuildahLike)
    assert builder.pins == ["socle-rebuild-pins"]  # the only file apt sees in preferences.d
    assert builder.pinned == (
        "Package: libssl3\nPin: version 3.0.17-1~deb12u2\nPin-Priority: 1001\n\n"
        "Package: tzdata\nPin: version 2025b-0+deb12u1\nPin-Priority: 1001\n"
    )


def test_an_image_without_debian_packages_is_rebuilt_without_pins(
    tmp_path: Path, setup: tuple[object, object, dict[str, str]]
) -> None:
    verdict, builder = _verify(tmp_path, setup, {"etc/app.conf": b"port=80\n"})
    (request,) = builder.requests
    assert request.apt_preferences is None
    assert request.platform is None  # no architectures declared: the builder's own


def test_a_multi_platform_image_is_rebuilt_for_its_own_platform(
    tmp_path: Path, write_catalog: CatalogWriter
) -> None:
    """As `socle build` passes --platform to every build of a catalog with architectures."""
    text = CATALOG.replace("namespace: my\n", "namespace: my\n    architectures: [amd64]\n")
    setup = _catalog_and_records(write_catalog(text, contexts=("app",)))

    verdict, builder = _verify(tmp_path, setup, {"etc/app.conf": b"port=80\n"})

    assert verdict.same  # type: ignore[attr-defined]
    (request,) = builder.requests
    assert request.platform == "linux/amd64"
