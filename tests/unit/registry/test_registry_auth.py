from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from socle.errors import InputError
from socle.registry.auth import Credential, DockerConfig
from socle.registry.errors import AuthenticationFailed

REGISTRY = "127.0.0.1:5000"


def write_config(folder: Path, document: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(document))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def helper_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on PATH for fake `docker-credential-*` helpers; each logs its calls."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def add_helper(folder: Path, name: str, known: dict[str, tuple[str, str]]) -> Path:
    """A helper that answers `get` for the hosts in `known`, as docker's helpers do."""
    table = {
        host: {"ServerURL": host, "Username": u, "Secret": s} for host, (u, s) in known.items()
    }
    script = folder / f"docker-credential-{name}"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"table = {json.dumps(table)!r}\n"
        "assert sys.argv[1:] == ['get']\n"
        "host = sys.stdin.read().strip()\n"
        f"open({str(folder / (name + '.calls'))!r}, 'a').write(host + '\\n')\n"
        "found = json.loads(table).get(host)\n"
        "if found is None:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        "print(json.dumps(found))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder / f"{name}.calls"


def test_missing_config_means_anonymous(tmp_path: Path) -> None:
    assert DockerConfig.load(tmp_path / "nowhere").get(REGISTRY) is None


def test_base64_auth_entry(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {REGISTRY: {"auth": b64("ops:s3cr:et")}}})
    assert DockerConfig.load(tmp_path).get(REGISTRY) == Credential("ops", "s3cr:et")


def test_username_password_entry_and_url_keys(tmp_path: Path) -> None:
    auths = {"https://registry.internal:8443/v1/": {"username": "ci", "password": "pw"}}
    write_config(tmp_path, {"auths": auths})
    config = DockerConfig.load(tmp_path)
    assert config.get("registry.internal:8443") == Credential("ci", "pw")
    assert config.get(REGISTRY) is None


def test_identity_token_entry(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {REGISTRY: {"auth": b64("ops:"), "identitytoken": "rt"}}})
    assert DockerConfig.load(tmp_path).get(REGISTRY) == Credential("ops", "", "rt")


def test_docker_config_env_points_at_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path / "elsewhere", {"auths": {REGISTRY: {"auth": b64("a:b")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "elsewhere"))
    assert DockerConfig.load().get(REGISTRY) == Credential("a", "b")


def test_explicit_file_path(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {REGISTRY: {"auth": b64("a:b")}}})
    assert DockerConfig.load(path).get(REGISTRY) == Credential("a", "b")


def test_passwords_are_not_printed() -> None:
    assert "s3cret" not in repr(Credential("ops", "s3cret", "tok3n"))
    assert "tok3n" not in repr(Credential("ops", "s3cret", "tok3n"))


def test_broken_json_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config.json"):
        DockerConfig.load(tmp_path)


def test_bad_base64_is_an_input_error(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {REGISTRY: {"auth": "%%%"}}})
    with pytest.raises(InputError, match="base64"):
        DockerConfig.load(tmp_path)


def test_cred_helper_per_registry_wins_and_is_asked_once(tmp_path: Path, helper_bin: Path) -> None:
    calls = add_helper(helper_bin, "fake", {REGISTRY: ("helper-user", "helper-secret")})
    document = {
        "auths": {REGISTRY: {"auth": b64("file:user")}},
        "credHelpers": {REGISTRY: "fake"},
    }
    config = DockerConfig(document)
    assert config.get(REGISTRY) == Credential("helper-user", "helper-secret")
    assert config.get(REGISTRY) == Credential("helper-user", "helper-secret")
    assert calls.read_text().splitlines() == [REGISTRY]


def test_creds_store_for_every_registry(helper_bin: Path) -> None:
    add_helper(helper_bin, "store", {REGISTRY: ("<token>", "refresh-me")})
    config = DockerConfig({"credsStore": "store", "auths": {"other:1": {}}})
    assert config.get(REGISTRY) == Credential(identity_token="refresh-me")
    assert config.get("other:1") is None  # "credentials not found" means anonymous


def test_creds_store_falls_back_to_auths(helper_bin: Path) -> None:
    add_helper(helper_bin, "store", {})
    config = DockerConfig({"credsStore": "store", "auths": {REGISTRY: {"auth": b64("a:b")}}})
    assert config.get(REGISTRY) == Credential("a", "b")


def test_missing_helper_is_an_authentication_failure(helper_bin: Path) -> None:
    config = DockerConfig({"credHelpers": {REGISTRY: "absent"}})
    with pytest.raises(AuthenticationFailed) as info:
        config.get(REGISTRY)
    assert "docker-credential-absent" in info.value.message
    assert info.value.hint == f"run `docker login {REGISTRY}`"
