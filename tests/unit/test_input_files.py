"""Text files a user names besides the catalog: not UTF-8, or not YAML, is one located line."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.commands.trust import load_policy
from socle.errors import CatalogError, InputError
from socle.inputs import dockerignore
from socle.watch.receiver import read_secret


def test_a_policy_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"max_severity: m\xe9dium\n")
    with pytest.raises(CatalogError) as caught:
        load_policy(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1:16: error: not UTF-8 text: byte 0xe9 at offset 15 (save the file as UTF-8)"
    ]


def test_a_policy_that_is_not_yaml_is_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("max_severity: [high\n")
    with pytest.raises(CatalogError) as caught:
        load_policy(path)
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}:2:1: error: invalid YAML: ")
    assert "\n" not in str(problem)


def test_a_webhook_secret_that_is_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"\xff\xfes3cret")
    with pytest.raises(InputError, match=r"is not UTF-8 text \(byte offset 0\)"):
        read_secret(path)


def test_a_dockerignore_that_is_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_bytes(b"build/\ncaf\xe9\n")
    with pytest.raises(InputError, match=r"\.dockerignore is not UTF-8 text \(byte 0xe9 at offset 10\)"):
        dockerignore(tmp_path)
