"""The command line contract: output, exit codes, error shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, CatalogWriter
from tests.unit.core.test_convention import SEED

SEED_CATALOG = str(ROOT / "examples/seed/catalog.yaml")


def socle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "socle", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_tags_prints_the_seed_references_sorted() -> None:
    result = socle("tags", "-c", SEED_CATALOG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == SEED


def test_tags_of_one_image_and_registry_override() -> None:
    result = socle(
        "tags", "-c", SEED_CATALOG, "java:8-debian9", env={"SOCLE_REGISTRY": "127.0.0.1:5000"}
    )
    assert result.stdout.splitlines() == [
        "127.0.0.1:5000/my/java:8-debian9",
        "127.0.0.1:5000/my/java:8-debian9.5",
    ]
    result = socle("tags", "-c", SEED_CATALOG, "--registry", "reg.test:443", "centos")
    assert result.stdout.splitlines()[0] == "reg.test:443/my/centos:7"


def test_validate_summary_and_problems(write_catalog: CatalogWriter) -> None:
    ok = socle("validate", "-c", SEED_CATALOG)
    assert ok.returncode == 0
    assert ok.stdout.strip().endswith("ok: 3 images, 4 variants, 10 tags on 127.0.0.1")
    bad = write_catalog("registry: r\nimagez: {}\nimages:\n  x: {upstrem: x, versions: ['1']}\n")
    result = socle("validate", "-c", str(bad))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert (
        lines[0]
        == f"{bad}:2:1: error: unknown key 'imagez' in the catalog (did you mean 'images'?)"
    )
    assert lines[1].startswith(
        f"{bad}:4:7: error: unknown key 'upstrem' in image 'x' (did you mean 'upstream'?)"
    )
    assert "Traceback" not in result.stderr


def test_unknown_image_and_missing_file_are_usage_errors() -> None:
    result = socle("parents", "-c", SEED_CATALOG, "jaav")
    assert result.returncode == 2
    assert result.stderr.startswith("no image or tag 'jaav' in the catalog")
    missing = socle("tags", "-c", "/nonexistent/catalog.yaml")
    assert missing.returncode == 2
    assert "cannot read catalog /nonexistent/catalog.yaml" in missing.stderr
    assert "Traceback" not in missing.stderr
    verbose = socle("-v", "tags", "-c", "/nonexistent/catalog.yaml")
    assert "Traceback" in verbose.stderr
    usage = socle("graph", "-c", SEED_CATALOG, "--format", "png")
    assert usage.returncode == 2


def test_graph_formats_parents_and_children() -> None:
    text = socle("graph", "-c", SEED_CATALOG).stdout.splitlines()
    assert text == [
        "centos:7.5.1804  [7, 7.5]",
        "  java:8-centos7.5.1804  [8-centos7, 8-centos7.5]",
        "debian:9.5  [9]",
        "  java:8-debian9.5  [8-debian9]",
    ]
    mermaid = socle("graph", "-c", SEED_CATALOG, "--format", "mermaid").stdout
    assert mermaid.startswith("graph TD\n") and "n_debian_9_5 --> n_java_8_debian9_5" in mermaid
    dot = socle("graph", "-c", SEED_CATALOG, "--format", "dot").stdout
    assert '"centos:7.5.1804" -> "java:8-centos7.5.1804";' in dot
    assert socle("parents", "-c", SEED_CATALOG, "java:8-centos7").stdout == (
        "java:8-centos7.5.1804: centos:7.5.1804\n"
    )
    assert socle("children", "-c", SEED_CATALOG, "debian").stdout == "java:8-debian9.5\n"


def test_cycle_is_named(write_catalog: CatalogWriter, tmp_path: Path) -> None:
    path = write_catalog(
        "registry: r\nimages:\n  a: {parents: [b], versions: ['1']}\n  b: {parents: [a], versions: ['1']}\n",
        contexts=("a", "b"),
    )
    result = socle("validate", "-c", str(path))
    assert result.returncode == 2
    assert (
        "error: parent cycle: a -> b -> a" in result.stderr
        or "error: parent cycle: b -> a -> b" in result.stderr
    )
