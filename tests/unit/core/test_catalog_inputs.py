"""Inputs a new user gets wrong: each is refused in one located line, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle import stack
from socle.errors import CatalogError, InputError
from socle.oci.reference import registry_host_problem
from socle.stack import StackPaths
from socle.validate import validate
from tests.conftest import CatalogWriter

UPSTREAM = """\
    registry: {registry}
    namespace: my
    images:
      debian:
        upstream: debian
        versions: {versions}
    """


def problems(path: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        validate(path)
    assert caught.value.exit_code == 2
    return [str(p) for p in caught.value.problems]


def test_a_catalog_that_is_not_utf8_is_one_located_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b'registry: r.test\nimages:\n  debian: {upstream: debian, versions: ["12\xff"]}\n')
    assert problems(path) == [
        f"{path}:3:44: error: not UTF-8 text: byte 0xff at offset 68 (save the file as UTF-8)"
    ]


def test_a_pins_file_that_is_not_utf8_is_one_located_problem(
    write_catalog: CatalogWriter, tmp_path: Path
) -> None:
    path = write_catalog(UPSTREAM.format(registry="r.test", versions='["12"]'))
    pins = tmp_path / "catalog.pins.yaml"
    pins.write_bytes(b"debian:12: \xe9\n")
    assert problems(path) == [
        f"{pins}:1:12: error: not UTF-8 text: byte 0xe9 at offset 11 (save the file as UTF-8)"
    ]


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ("http://127.0.0.1:5000", "is a URL: write 127.0.0.1:5000, without the scheme"),
        ("https://r.test/", "is a URL: write r.test, without the scheme"),
        ("r.test/my", "has a path: write r.test, and put the path in the catalog's `namespace`"),
        ("'r test'", "is not a host[:port] (such as 127.0.0.1:5000)"),
    ],
)
def test_a_registry_that_is_not_a_host_is_refused_where_it_is_written(
    write_catalog: CatalogWriter, registry: str, message: str
) -> None:
    path = write_catalog(UPSTREAM.format(registry=registry, versions='["12"]'))
    assert problems(path) == [f"{path}:1:11: error: registry {registry.strip(chr(39))!r} {message}"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:5000", "r.test", "localhost:5000", "[::1]:5000"])
def test_a_host_and_port_is_a_registry(host: str) -> None:
    assert registry_host_problem(host) is None


def test_a_registry_option_written_as_a_url_is_refused(write_catalog: CatalogWriter) -> None:
    path = write_catalog(UPSTREAM.format(registry="r.test", versions='["12"]'))
    with pytest.raises(InputError) as caught:
        validate(path, registry="http://127.0.0.1:5000")
    assert caught.value.exit_code == 2
    assert caught.value.message == (
        "registry 'http://127.0.0.1:5000' of --registry or SOCLE_REGISTRY "
        "is a URL: write 127.0.0.1:5000, without the scheme"
    )


def test_socle_up_refuses_a_registry_address_written_as_a_url(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a URL: write 127.0.0.1:5000, without the scheme"):
        stack.up(StackPaths(tmp_path), registry_addr="http://127.0.0.1:5000", docker=False)


@pytest.mark.parametrize(("versions", "column"), [("[]", 15), ("{}", 15)])
def test_an_image_with_no_versions_is_refused(
    write_catalog: CatalogWriter, versions: str, column: int
) -> None:
    path = write_catalog(UPSTREAM.format(registry="r.test", versions=versions))
    assert problems(path) == [
        f"{path}:6:{column}: error: image 'debian' has an empty `versions`: list at least one"
    ]


def test_a_control_character_is_located_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("registry: r.test\nimages:\n  d: {upstream: d, versions: ['1\x07']}\n")
    assert problems(path) == [
        f"{path}:3:33: error: invalid YAML: character U+0007 is not allowed in YAML (remove it)"
    ]


def test_a_key_that_is_a_list_is_named_as_such(write_catalog: CatalogWriter) -> None:
    path = write_catalog(
        """\
        registry: r.test
        images:
          ? [a, b]
          : {upstream: d, versions: ["1"]}
          d:
            upstream: d
            versions: {? [1]: {}}
        """
    )
    assert problems(path) == [
        f"{path}:3:5: error: a key in images must be a single value, not a list or mapping",
        f"{path}:7:18: error: a version must be a single value",
    ]
