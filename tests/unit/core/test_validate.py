"""`socle validate`: every problem, located, in one run."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.errors import CatalogError
from socle.validate import validate
from tests.conftest import CatalogWriter


def problems(path: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        validate(path)
    return [str(p) for p in caught.value.problems]


def test_every_problem_is_reported_with_file_line_and_column(
    write_catalog: CatalogWriter, tmp_path: Path
) -> None:
    path = write_catalog(
        """\
        registry: r.test
        imagez: {}
        images:
          centos:
            upstream: centos
            versions: ["7.5.1804", "7-5"]
          java:
            parents: [centos, debain]
            contxt: java
            versions: ["8"]
          tomcat:
            parents: [tomcat2]
            versions: ["9"]
          tomcat2:
            parents: [tomcat]
            versions: ["9"]
          python:
            parents: [centos]
            versions: ["3.11"]
        """,
        contexts=("java", "tomcat", "tomcat2"),
    )
    found = problems(path)
    file = str(path)
    assert found == [
        f"{file}:2:1: error: unknown key 'imagez' in the catalog (did you mean 'images'?)",
        f"{file}:6:28: error: invalid version string '7-5' for image 'centos': use letters, digits, "
        "'.' and '_' (no '-', which separates variants in tags)",
        f"{file}:8:23: error: unknown parent 'debain'; expected one of centos, java, python, tomcat, tomcat2",
        f"{file}:9:5: error: unknown key 'contxt' in image 'java' (did you mean 'context'?)",
        f"{file}:11:3: error: parent cycle: tomcat -> tomcat2 -> tomcat"
        if "tomcat -> tomcat2" in found[4]
        else f"{file}:14:3: error: parent cycle: tomcat2 -> tomcat -> tomcat2",
        f"{file}:19:16: error: context folder python of python:3.11 does not exist "
        "(create it or set `context:`)",
    ]


def test_missing_dockerfile_is_named(write_catalog: CatalogWriter, tmp_path: Path) -> None:
    path = write_catalog(
        """\
        registry: r.test
        images:
          debian: {upstream: debian, versions: ["12"]}
          app:
            parents: [debian]
            dockerfile: app/Containerfile
            versions: ["1"]
        """,
        contexts=("app",),
    )
    assert problems(path) == [
        f"{path}:6:17: error: Dockerfile app/Containerfile of app:1 does not exist "
        "(create it or set `dockerfile:`)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("registry: [", "invalid YAML"),
        ("", "the catalog is empty"),
        (
            "registry: r\nimages:\n  x: {upstream: x, versions: ['1'], digest: 3}\n",
            "unknown key 'digest' in image 'x'",
        ),
        (
            "registry: r\nimages:\n  x: {upstream: x, versions: {'1': {digest: 'md5:1'}}}\n",
            "invalid digest",
        ),
        ("images: {}\n", "the catalog has no `registry`"),
        (
            "registry: r\nimages:\n  x: {upstream: x, bootstrap: {suite: b}, versions: ['1']}\n",
            "both `bootstrap` and `upstream`",
        ),
        ("registry: r\nimages:\n  x: {bootstrap: {}, versions: ['1']}\n", "has no `suite`"),
        ("registry: r\nimages:\n  x: {upstream: x, versions: ['1', '1']}\n", "declared twice"),
        ("registry: r\nimages:\n  Bad: {upstream: x, versions: ['1']}\n", "invalid image name"),
        ("registry: r\nimages:\n  x: {upstream: x}\n", "has no `versions`"),
        (
            "registry: r\nimages:\n  x: {upstream: x, versions: ['1'], default_parent: y}\n",
            "not one of its parents",
        ),
    ],
)
def test_bad_input_is_one_located_line(
    write_catalog: CatalogWriter, text: str, message: str
) -> None:
    path = write_catalog(text)
    found = problems(path)
    assert any(message in line for line in found), found
    assert all(line.startswith(f"{path}:") and ": error: " in line for line in found)


def test_yaml_numbers_keep_their_spelling(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        """\
        registry: r.test
        images:
          centos:
            upstream: centos
            versions:
              7.10: {}
              9.5: {}
        """
    )
    _, graph = validate(path)
    assert [v.key for v in graph.variants] == ["centos:7.10", "centos:9.5"]


def test_registry_override_wins(write_catalog: CatalogWriter) -> None:
    path = write_catalog("registry: r.test\nimages:\n  x: {upstream: x, versions: ['1']}\n")
    catalog, graph = validate(path, registry="127.0.0.1:5000")
    assert graph.variants[0].refs(catalog.registry) == ("127.0.0.1:5000/x:1",)
