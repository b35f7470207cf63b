"""`architectures:` in the catalog: where it may be said, and what validate refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.core.platforms import platform_json, platform_of
from socle.errors import CatalogError
from socle.inputs import InputReader
from socle.validate import validate
from tests.conftest import CatalogWriter

DIGEST = "sha256:" + "a" * 64


def problems(path: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        validate(path)
    return [str(p) for p in caught.value.problems]


def test_the_catalog_image_and_version_each_may_say_and_the_nearest_wins(
    write_catalog: CatalogWriter,
) -> None:
    path = write_catalog(
        f"""\
        registry: r.test
        architectures: [amd64, arm64]
        images:
          os:
            upstream: os
            versions: {{"1": {{digest: "{DIGEST}"}}}}
          tool:
            parents: [os]
            versions:
              "1": {{}}
              "2": {{architectures: [arm64]}}
          solo:
            parents: [os]
            architectures: [amd64]
            versions: ["1"]
        """,
        contexts=("tool", "solo"),
    )
    _, graph = validate(path)
    found = {v.key: v.architectures for v in graph.variants}
    assert found == {
        "os:1": ("amd64", "arm64"),
        "tool:1-os1": ("amd64", "arm64"),
        "tool:2-os1": ("arm64",),
        "solo:1-os1": ("amd64",),
    }
    multi = {v.key for v in graph.variants if v.multi_platform}
    assert multi == {"os:1", "tool:1-os1"}  # one architecture is one image, no index


def test_without_architectures_an_image_is_amd64_or_its_bootstraps(
    write_catalog: CatalogWriter,
) -> None:
    path = write_catalog(
        """\
        registry: r.test
        images:
          os:
            bootstrap: {suite: bookworm, architecture: arm64}
            versions: ["12"]
          base:
            bootstrap: {suite: bookworm}
            versions: ["12"]
        """
    )
    _, graph = validate(path)
    assert {v.key: v.architectures for v in graph.variants} == {
        "os:12": ("arm64",),
        "base:12": ("amd64",),
    }
    assert not any(v.multi_platform for v in graph.variants)


def test_an_unknown_architecture_is_located(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        f"""\
        registry: r.test
        images:
          os:
            upstream: os
            architectures: [amd64, arm46, amd64]
            versions: {{"1": {{digest: "{DIGEST}"}}}}
        """
    )
    found = problems(path)
    assert any(
        p.startswith(f"{path}:5:28: error: unknown architecture 'arm46' (did you mean 'arm64'?)")
        and "socle knows amd64, arm64" in p
        for p in found
    ), found
    assert f"{path}:5:35: error: architecture 'amd64' is listed twice" in found


def test_a_parent_lacking_one_of_the_childs_platforms_is_refused(
    write_catalog: CatalogWriter,
) -> None:
    path = write_catalog(
        f"""\
        registry: r.test
        images:
          os:
            upstream: os
            versions: {{"1": {{digest: "{DIGEST}"}}}}
          tool:
            parents: [os]
            architectures: [amd64, arm64]
            versions: ["1"]
        """,
        contexts=("tool",),
    )
    assert problems(path) == [
        f"{path}:9:16: error: tool:1 is built for amd64, arm64, but its parent os:1 only for amd64: "
        "add arm64 to the `architectures` of os, or leave it out here"
    ]


def test_a_bootstrap_may_not_also_name_its_architecture(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        """\
        registry: r.test
        architectures: [amd64, arm64]
        images:
          os:
            bootstrap: {suite: bookworm, architecture: arm64}
            versions: ["12"]
        """
    )
    (problem,) = problems(path)
    assert "sets `architecture` and the image has `architectures`" in problem
    assert problem.startswith(f"{path}:5:")


def test_declared_architectures_are_an_input_and_undeclared_ones_change_nothing(
    write_catalog: CatalogWriter,
) -> None:
    text = """\
        registry: r.test
        images:
          os:
            bootstrap: {suite: bookworm}
            versions: ["12"]
        """
    path = write_catalog(text)
    _, graph = validate(path)
    (plain,) = graph.variants
    assert [name for name, _ in InputReader().components(plain)] == ["bootstrap"]
    path.write_text(path.read_text().replace("images:", "architectures: [amd64, arm64]\nimages:"))
    _, graph = validate(path)
    (multi,) = graph.variants
    components = dict(InputReader().components(multi))
    assert components["architectures"] == "amd64,arm64"
    assert components["bootstrap"] != dict(InputReader().components(plain))["bootstrap"]


def test_oci_platforms_of_debian_architectures() -> None:
    assert platform_of("arm64") == "linux/arm64/v8"
    assert platform_of("amd64") == "linux/amd64"
    assert platform_json("armhf") == {"architecture": "arm", "os": "linux", "variant": "v7"}
