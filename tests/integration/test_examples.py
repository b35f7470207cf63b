"""The bundled example catalog, as `make demo` uses it: it validates and plans as the README says."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import ROOT, socle

ENTERPRISE = str(ROOT / "examples" / "enterprise" / "catalog.yaml")
# The README's chain: Debian 12 -> OpenJDK 17 -> Tomcat 10 -> the legacy app, plus Python 3.11.
VARIANTS = {
    "debian:12": ["12"],  # an OS image built here, not pulled
    "java:17-debian12": ["17-debian12", "17", "latest"],
    "python:3.11-debian12": ["3.11-debian12", "3-debian12", "3.11", "3"],
    "tomcat:10-java17-debian12": ["10-java17-debian12", "10-java17"],
    "legacy-app:1.0-tomcat10-java17-debian12": [
        "1.0-tomcat10-java17-debian12",
        "1-tomcat10-java17-debian12",
        "1.0-tomcat10-java17",
        "1-tomcat10-java17",
    ],
}


def test_the_enterprise_example_validates() -> None:
    result = socle("validate", "-c", ENTERPRISE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{ENTERPRISE}: ok: 5 images, 5 variants, 14 tags on 127.0.0.1:5000"
    )
    tags = socle("tags", "-c", ENTERPRISE).stdout.split()
    assert "127.0.0.1:5000/my/java:17-debian12" in tags  # the README's pull, exactly
    assert "127.0.0.1:5000/my/java:17" in tags  # the README's `socle verify` reference


def test_against_an_empty_registry_every_variant_is_to_build(tmp_path: Path) -> None:
    empty = LocalRegistry(tmp_path / "registry")
    try:
        env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
        args = ("-c", ENTERPRISE, "--registry", empty.host)
        result = socle("plan", *args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        images = json.loads(result.stdout)["images"]
        table = socle("plan", *args, env=env)
    finally:
        empty.stop()

    assert [i["action"] for i in images] == ["build"] * 5
    assert all(i["reasons"] == ["never published"] for i in images)
    order = [f"{i['name']}:{i['variant']}" for i in images]
    assert order.index("debian:12") == 0, "the OS image is built first"
    assert order.index("java:17-debian12") < order.index("tomcat:10-java17-debian12")
    assert order.index("tomcat:10-java17-debian12") < order.index(
        "legacy-app:1.0-tomcat10-java17-debian12"
    )
    refs = {f"{i['name']}:{i['variant']}": sorted(i["refs"]) for i in images}
    assert refs == {
        key: sorted(f"{empty.host}/my/{key.split(':')[0]}:{tag}" for tag in tags)
        for key, tags in VARIANTS.items()
    }
    assert table.returncode == 0, table.stderr
    assert f"5 to build, 0 current, registry {empty.host}" in table.stdout
    assert table.stdout.count("never published") == 5
