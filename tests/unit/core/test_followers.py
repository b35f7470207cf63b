"""What a registry push means for the catalog (socle watch's cascade roots)."""

from __future__ import annotations

from socle.core.cascade import Pushed, followers
from socle.validate import validate
from tests.conftest import CatalogWriter

CATALOG = """
registry: r.test
namespace: my
images:
  debian:
    upstream: up.test/library/debian
    versions: {"12": {digest: "sha256:%s"}}
  java:
    parents: [debian]
    versions: ["17", "21"]
  tomcat:
    parents: ["java:17-debian12"]
    versions: ["10"]
""" % ("a" * 64)


def test_a_push_to_a_catalog_image_cascades_to_its_children(write_catalog: CatalogWriter) -> None:
    catalog, graph = validate(write_catalog(CATALOG, contexts=("java", "tomcat")))
    found = followers(
        catalog, graph, Pushed("my/java", "17-debian12", "sha256:" + "b" * 64, "r.test")
    )
    assert [v.key for v in found.pushed] == ["java:17-debian12"]
    assert [v.key for v in found.children] == ["tomcat:10-java17-debian12"]
    assert found.upstream == []
    other_registry = followers(
        catalog, graph, Pushed("my/java", "17-debian12", "sha256:" + "b" * 64, "elsewhere.test")
    )
    assert other_registry.children == []


def test_an_upstream_tag_move_is_reported_not_followed(write_catalog: CatalogWriter) -> None:
    catalog, graph = validate(write_catalog(CATALOG, contexts=("java", "tomcat")))
    found = followers(
        catalog, graph, Pushed("library/debian", "12", "sha256:" + "c" * 64, "up.test")
    )
    assert found.upstream == ["up.test/library/debian:12"] and found.children == []
    digest_only = followers(catalog, graph, Pushed("my/debian", None, "sha256:" + "d" * 64, None))
    assert [v.key for v in digest_only.children] == ["java:17-debian12", "java:21-debian12"]
