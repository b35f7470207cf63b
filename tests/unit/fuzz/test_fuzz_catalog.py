"""Fuzz the catalog and its pins file: every input is a catalog or located problems.

Each example goes through what `socle validate`, `tags` and `graph` do: load,
order, derive the variants and tags, their references and the drawings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from socle.core.drawing import FORMATS, draw
from socle.errors import SocleError
from socle.validate import validate
from tests.unit.fuzz.mutations import (
    FUZZ,
    mutated_bytes,
    mutated_document,
    mutated_text,
    refuses_cleanly,
)

D1 = "sha256:" + "1" * 64
SEED: dict[str, Any] = {
    "registry": "127.0.0.1:5000",
    "namespace": "my",
    "max_age": "7d",
    "scan": {"scanner": "debian", "db": "tracker.json"},
    "policy": {
        "max_severity": "medium",
        "require_scan": True,
        "ignore_unfixed": False,
        "allowlist": [
            {"cve": "CVE-2023-1234", "reason": "never run", "owner": "ops", "expires": "2027-06-30"}
        ],
    },
    "images": {
        "debian": {
            "bootstrap": {"suite": "bookworm", "packages": ["ca-certificates"]},
            "versions": {"12": {}},
            "tests": [{"name": "debian 12", "command": ["cat", "/etc/debian_version"], "stdout": "^12\\."}],
        },
        "alpine": {"upstream": "alpine", "versions": {"3.20": {"digest": D1, "tag": "3.20"}}},
        "centos": {"upstream": "centos", "versions": ["7.5.1804"]},
        "java": {
            "parents": ["debian", "centos"],
            "default_parent": "debian:12",
            "aliases": ["latest"],
            "args": {"JAVA": "17"},
            "max_age": "12h",
            "versions": {"17": {"args": {"PKG": "openjdk-17"}, "aliases": ["lts"]}, "21": None},
            "tests": [
                {"name": "java runs", "command": ["java", "-version"], "exit_code": 0, "stderr": "17"},
                {"name": "home", "file": "/usr/lib/jvm", "type": "directory", "mode": "0755", "owner": "root"},
                {"name": "user", "metadata": {"user": "java", "exposed_ports": ["8080/tcp"]}},
            ],
        },
        "app": {"parents": ["java:17"], "repository": "my/apps/app", "tag_name": "a", "versions": ["1.0"]},
    },
}
PINS = f"# pins\ncentos:7.5.1804: {D1}\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog folder with the build contexts the seed names."""
    root = tmp_path_factory.mktemp("catalog")
    for name in ("java", "app"):
        (root / name).mkdir()
        (root / name / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    return root


def check(folder: Path, catalog: bytes, pins: bytes = PINS.encode()) -> None:
    """Validate `catalog` as a user would, and use what comes out as the commands do."""
    (folder / "catalog.yaml").write_bytes(catalog)
    (folder / "catalog.pins.yaml").write_bytes(pins)
    found = refuses_cleanly(lambda: validate(folder / "catalog.yaml"))
    if isinstance(found, SocleError):
        return
    catalog_value, graph = found
    for variant in graph.variants:
        variant.refs(catalog_value.registry)
    for fmt in FORMATS:
        draw(graph, fmt)


SEED_TEXT = yaml.safe_dump(SEED, sort_keys=False)


def test_the_seed_is_a_valid_catalog(folder: Path) -> None:
    (folder / "catalog.yaml").write_text(SEED_TEXT)
    (folder / "catalog.pins.yaml").write_text(PINS)
    _, graph = validate(folder / "catalog.yaml")
    assert len(graph.variants) == 8


@FUZZ
@given(mutated_document(SEED))
def test_catalog_structure(folder: Path, doc: Any) -> None:
    check(folder, yaml.safe_dump(doc, allow_unicode=True).encode())


@FUZZ
@given(st.one_of(mutated_text(SEED_TEXT), st.text(max_size=200)))
@example("\x1f")  # PyYAML's refusal of a control character spanned two lines, located at 1:1
@example("registry: r.test\nimages:\n  d:\n    upstream: d\n    versions: ['1\x00']\n")
def test_catalog_text(folder: Path, text: str) -> None:
    check(folder, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.one_of(mutated_bytes(SEED_TEXT.encode()), st.binary(max_size=200)))
def test_catalog_bytes(folder: Path, data: bytes) -> None:
    check(folder, data)


@FUZZ
@given(st.one_of(mutated_text(PINS).map(str.encode), mutated_bytes(PINS.encode())))
@example(b"centos:7.5.1804: \x07\n")  # the same, in the pins file
def test_pins_file(folder: Path, pins: bytes) -> None:
    check(folder, SEED_TEXT.encode(), pins)
