"""The naming convention, exactly as the organisation uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.errors import CatalogError
from socle.validate import validate
from tests.conftest import ROOT, CatalogWriter

SEED = [
    "127.0.0.1/my/centos:7",
    "127.0.0.1/my/centos:7.5",
    "127.0.0.1/my/centos:7.5.1804",
    "127.0.0.1/my/debian:9",
    "127.0.0.1/my/debian:9.5",
    "127.0.0.1/my/java:8-centos7",
    "127.0.0.1/my/java:8-centos7.5",
    "127.0.0.1/my/java:8-centos7.5.1804",
    "127.0.0.1/my/java:8-debian9",
    "127.0.0.1/my/java:8-debian9.5",
]


def all_refs(path: Path) -> list[str]:
    catalog, graph = validate(path)
    return sorted(r for v in graph.variants for r in v.refs(catalog.registry))


def tags_of(path: Path) -> dict[str, list[str]]:
    _, graph = validate(path)
    return {v.key: list(v.tags) for v in graph.variants}


def test_seed_catalog_gives_exactly_the_ten_references() -> None:
    assert all_refs(ROOT / "examples/seed/catalog.yaml") == SEED


def test_floating_aliases_go_to_the_highest_version_by_version_order(
    write_catalog: CatalogWriter,
) -> None:
    path = write_catalog(
        """
        registry: r.test
        namespace: my
        images:
          centos:
            upstream: centos
            versions: ["7.10.2009", "7.5.1804", "7.6.1810"]
          java:
            parents: [centos]
            versions: ["8"]
        """,
        contexts=("java",),
    )
    tags = tags_of(path)
    # 7.10 > 7.6 by version order although "7.10" < "7.6" as strings
    assert tags["centos:7.10.2009"] == ["7.10.2009", "7", "7.10"]
    assert tags["centos:7.6.1810"] == ["7.6.1810", "7.6"]
    assert tags["centos:7.5.1804"] == ["7.5.1804", "7.5"]
    assert tags["java:8-centos7.10.2009"] == ["8-centos7.10.2009", "8-centos7", "8-centos7.10"]
    assert tags["java:8-centos7.5.1804"] == ["8-centos7.5.1804", "8-centos7.5"]


def test_exact_tags_never_move_between_versions(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        """
        registry: r.test
        images:
          debian:
            upstream: debian
            versions: ["12", "12.1", "12.0"]
        """
    )
    tags = tags_of(path)
    assert tags["debian:12"] == ["12"]  # 12.1 is higher, but `12` is version 12's own tag
    assert tags["debian:12.1"] == ["12.1"]
    assert tags["debian:12.0"] == ["12.0"]


def test_default_parent_gives_bare_tags_and_aliases(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        """
        registry: r.test
        namespace: my
        images:
          debian:
            upstream: debian
            versions: ["11", "12"]
          java:
            parents: [debian]
            default_parent: debian:12
            aliases: [latest]
            versions:
              "11": {}
              "17": {aliases: [lts]}
        """,
        contexts=("java",),
    )
    tags = tags_of(path)
    assert tags["java:17-debian12"] == ["17-debian12", "17", "latest", "lts", "lts-debian12"]
    assert tags["java:11-debian12"] == ["11-debian12", "11"]
    assert tags["java:17-debian11"] == ["17-debian11", "lts-debian11"]


def test_grandchildren_spell_the_whole_chain(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        """
        registry: r.test
        images:
          debian:
            upstream: debian
            versions: ["12.5"]
          java:
            parents: [debian]
            tag_name: jdk
            versions: ["17"]
          tomcat:
            parents: [java]
            versions: ["10.1"]
        """,
        contexts=("java", "tomcat"),
    )
    assert tags_of(path)["tomcat:10.1-jdk17-debian12.5"] == [
        "10.1-jdk17-debian12.5",
        "10-jdk17-debian12",
        "10-jdk17-debian12.5",
        "10.1-jdk17-debian12",
    ]


def test_two_entries_claiming_one_tag_is_an_error_naming_both(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        """
        registry: r.test
        namespace: my
        images:
          debian:
            upstream: debian
            versions: ["12"]
          java:
            parents: [debian]
            versions: ["17"]
          openjdk:
            repository: my/java
            context: java
            parents: [debian]
            versions: ["17"]
        """,
        contexts=("java",),
    )
    with pytest.raises(CatalogError) as caught:
        validate(path)
    [problem] = caught.value.problems
    assert "tag my/java:17-debian12 is claimed by both" in problem.message
    assert "java:17 on debian:12" in problem.message
    assert "openjdk:17 on debian:12" in problem.message
    assert problem.line in (10, 15)


def test_explicit_aliases_on_two_versions_collide(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        """
        registry: r.test
        images:
          debian:
            upstream: debian
            versions:
              "11": {aliases: [stable]}
              "12": {aliases: [stable]}
        """
    )
    with pytest.raises(CatalogError, match="problem") as caught:
        validate(path)
    assert "tag debian:stable is claimed by both debian:11" in caught.value.problems[0].message
