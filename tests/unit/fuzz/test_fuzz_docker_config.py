"""Fuzz docker's `config.json` and what a credential helper prints.

The property: loading the file and asking it for a registry's credential gives
a credential, None, or socle's error — whatever the file holds.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, given

from socle.process import CommandError, Completed
from socle.registry import auth
from socle.registry.auth import DockerConfig
from tests.unit.fuzz.mutations import FUZZ, json_bytes, refuses_cleanly

REGISTRY = "127.0.0.1:5000"
SEED: dict[str, Any] = {
    "auths": {
        REGISTRY: {"auth": base64.b64encode(b"ops:s3cret").decode()},
        "https://r.test/v1/": {"username": "u", "password": "p"},
        "token.test": {"identitytoken": "refresh"},
    },
    "credHelpers": {"helper.test": "fake"},
    "credsStore": "store",
}
HELPER_ANSWER = {"ServerURL": "helper.test", "Username": "u", "Secret": "s"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docker")


def ask_every_registry(path: Path, helper_output: bytes) -> None:
    """Load `path` and ask it for each registry it names (the helper prints `helper_output`)."""

    def helper(command: list[str], **_: object) -> Completed:
        if command[0] == "docker-credential-store":
            raise CommandError(command, 1, "credentials not found in native keychain", "")
        return Completed(helper_output.decode(errors="replace"), "")

    config = refuses_cleanly(lambda: DockerConfig.load(path))
    if not isinstance(config, DockerConfig):
        return
    with mock.patch.object(auth, "run", helper):
        for registry in (REGISTRY, "r.test", "token.test", "helper.test", "other.test"):
            found = refuses_cleanly(lambda registry=registry: config.get(registry))
            if isinstance(found, auth.Credential):  # what httpx will be given
                assert isinstance(found.username, str) and isinstance(found.password, str)
                assert found.identity_token is None or isinstance(found.identity_token, str)


def test_the_seed_holds_every_kind_of_entry(folder: Path) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps(SEED))
    with mock.patch.object(
        auth, "run", lambda command, **_: Completed(json.dumps(HELPER_ANSWER), "")
    ):
        config = DockerConfig.load(path)
        assert config.get("helper.test") == auth.Credential("u", "s")
        assert config.get("token.test") == auth.Credential("u", "s")  # credsStore answers first


@FUZZ
@given(json_bytes(SEED), json_bytes(HELPER_ANSWER))
# Crashes found, each now an InputError naming the file and the key:
@example(b'{"auths": [true]}', b"{}")  # AttributeError: 'list' has no 'items'
@example(b'{"credHelpers": [{}]}', b"{}")  # ValueError from dict()
@example(b'{"credsStore": 1}', b"{}")  # TypeError: str + int
@example(b'{"auths": {"r.test": {"auth": 1}}}', b"{}")  # TypeError in b64decode
@example(b'{"auths": {"r.test": {"auth": "\\u0080"}}}', b"{}")  # ValueError: not ASCII
@example(b'{"auths": {"r.test": {"username": 1}}}', b"{}")  # a Credential with an int
@example(b'{"auths": ' + b"[" * 100_000, b"{}")  # RecursionError: nested too deep
@example(b"{}", b"[" * 100_000)  # the same, printed by a credential helper
def test_docker_config(folder: Path, config: bytes, helper_output: bytes) -> None:
    path = folder / "config.json"
    path.write_bytes(config)
    ask_every_registry(path, helper_output)
