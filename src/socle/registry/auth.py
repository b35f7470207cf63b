"""Registry credentials from the standard docker configuration file.

Reads `config.json` the way docker does: a per-registry `credHelpers` entry
wins, then the global `credsStore`, then the `auths` entry (base64 `auth` or
`username`/`password`, or an `identitytoken`). Helpers run through
:func:`socle.process.run`. Nothing configured means anonymous access.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from socle.errors import InputError
from socle.process import CommandError, run
from socle.registry.errors import AuthenticationFailed

CONFIG_FILE = "config.json"
HELPER_PREFIX = "docker-credential-"
# A credential helper's `Username` when `Secret` is an OAuth2 refresh token.
TOKEN_USERNAME = "<token>"
HELPER_TIMEOUT = 60.0


@dataclass(frozen=True)
class Credential:
    """A user name and password, or an identity (refresh) token; never printed."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)


class CredentialSource(Protocol):
    """Where the client asks for credentials, once per registry host."""

    def get(self, registry: str) -> Credential | None:
        """The credential for `registry` (host[:port]), or None for anonymous access."""
        ...


class Anonymous:
    """No credentials for any registry."""

    def get(self, registry: str) -> Credential | None:
        """Always None."""
        return None


@dataclass(frozen=True)
class StaticCredentials:
    """Fixed credentials per registry host (for callers that already hold them)."""

    by_registry: Mapping[str, Credential]

    def get(self, registry: str) -> Credential | None:
        """The credential configured for `registry`, if any."""
        return self.by_registry.get(registry)


def config_path(docker_config: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The config file: `docker_config` (a file or a folder), else $DOCKER_CONFIG, else ~/.docker."""
    environ = os.environ if env is None else env
    if docker_config is None:
        folder = environ.get("DOCKER_CONFIG")
        docker_config = Path(folder) if folder else Path.home() / ".docker"
    return docker_config / CONFIG_FILE if docker_config.is_dir() else docker_config


class DockerConfig:
    """Credentials from a docker `config.json`, looked up lazily and cached per registry."""

    def __init__(self, document: Mapping[str, Any], *, source: str = CONFIG_FILE) -> None:
        self._auths = _normalized_auths(_section(document, "auths", source), source)
        self._helpers = _helpers(_section(document, "credHelpers", source), source)
        store = document.get("credsStore") or None
        if store is not None and not isinstance(store, str):
            raise _malformed(source, "`credsStore` is not a helper name")
        self._store: str | None = store
        self._cache: dict[str, Credential | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, docker_config: Path | None = None) -> DockerConfig:
        """Read the config file (see :func:`config_path`); a missing file means anonymous."""
        path = config_path(docker_config)
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return cls({})
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise InputError(
                f"cannot read the docker config {path}: {exc}",
                hint="fix the file or point DOCKER_CONFIG at another folder",
            ) from None
        if not isinstance(document, dict):
            raise InputError(f"the docker config {path} is not a JSON object")
        return cls(document, source=str(path))

    def get(self, registry: str) -> Credential | None:
        """The credential for `registry`, asking a credential helper at most once."""
        with self._lock:
            if registry in self._cache:
                return self._cache[registry]
        found = self._lookup(registry)
        with self._lock:
            self._cache[registry] = found
        return found

    def _lookup(self, registry: str) -> Credential | None:
        helper = self._helpers.get(registry) or self._store
        if helper:
            found = helper_credential(helper, registry)
            if found is not None:
                return found
        return self._auths.get(registry)


def helper_credential(helper: str, registry: str) -> Credential | None:
    """Ask `docker-credential-<helper> get` for `registry`; None when it has nothing."""
    command = [HELPER_PREFIX + helper, "get"]
    try:
        out = run(command, input=registry, timeout=HELPER_TIMEOUT).stdout
    except CommandError as exc:
        if "credentials not found" in (exc.stdout + exc.stderr).lower():
            return None
        raise AuthenticationFailed(
            registry, f"the credential helper failed: {exc.message}"
        ) from None
    try:
        answer = json.loads(out)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise AuthenticationFailed(
            registry, f"{command[0]} did not print the expected JSON"
        ) from None
    if username == TOKEN_USERNAME:
        return Credential(identity_token=secret)
    return Credential(username, secret)


def _normalized_auths(auths: Mapping[str, Any], source: str) -> dict[str, Credential]:
    """`auths` keyed by bare host[:port] (keys may be URLs such as `https://host/v1/`)."""
    found: dict[str, Credential] = {}
    for key, entry in auths.items():
        credential = _auth_entry(entry, key, source)
        if credential is not None:
            found[_host_of(key)] = credential
    return found


def _section(document: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    """The object at `key` (absent or null: empty); :class:`InputError` if it is something else."""
    section = document.get(key) or {}
    if not isinstance(section, dict):
        raise _malformed(source, f"`{key}` is not a JSON object")
    return section


def _helpers(section: Mapping[str, Any], source: str) -> dict[str, str]:
    """`credHelpers`: registry -> helper name, each a string."""
    for registry, helper in section.items():
        if not isinstance(helper, str):
            raise _malformed(source, f"the credential helper of {registry!r} is not a name")
    return dict(section)


def _malformed(source: str, detail: str) -> InputError:
    return InputError(
        f"the docker config {source} is malformed: {detail}",
        hint="fix the file (or run `docker login` again), or point DOCKER_CONFIG at another folder",
    )


def _auth_entry(entry: Any, key: str, source: str) -> Credential | None:
    if not isinstance(entry, dict):
        return None
    fields = {name: entry.get(name) or "" for name in ("auth", "username", "password", "identitytoken")}
    wrong = sorted(name for name, value in fields.items() if not isinstance(value, str))
    if wrong:
        raise _malformed(source, f"`{wrong[0]}` of {key!r} is not a string")
    if fields["auth"]:
        username, password = _decode_auth(fields["auth"], key, source)
    else:
        username, password = fields["username"], fields["password"]
    token = fields["identitytoken"] or None
    if not (username or password or token):
        return None
    return Credential(username, password, token)


def _decode_auth(value: str, key: str, source: str) -> tuple[str, str]:
    try:
        username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # not base64, not ASCII, or not UTF-8 once decoded
        sep = ""
    if not sep:
        raise InputError(
            f"the `auth` of {key!r} in {source} is not base64 of user:password",
            hint=f"run `docker login {_host_of(key)}` again",
        )
    return username, password


def _host_of(key: str) -> str:
    """`https://host:port/v1/` -> `host:port`; a bare host is kept."""
    without_scheme = key.split("://", 1)[-1]
    return without_scheme.split("/", 1)[0]
