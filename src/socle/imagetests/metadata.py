"""Metadata checks: read from the image config, no container needed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from socle.core.imagetest import MetadataCheck


def check_metadata(check: MetadataCheck, image_config: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether `check` holds for an OCI image config (the whole document), and why."""
    runtime: Mapping[str, Any] = image_config.get("config") or {}
    problems = [
        *_exact(check.user, "user", runtime.get("User") or ""),
        # An unset working directory is the runtime's default: /.
        *_exact(check.workdir, "working directory", runtime.get("WorkingDir") or "/"),
        *_patterns(check.env, "environment variable", _env(runtime.get("Env"))),
        *_ports(check.exposed_ports, runtime.get("ExposedPorts") or {}),
        *_argv(check.entrypoint, "entrypoint", runtime.get("Entrypoint")),
        *_argv(check.cmd, "cmd", runtime.get("Cmd")),
        *_patterns(check.labels, "label", runtime.get("Labels") or {}),
    ]
    if problems:
        return False, "\n".join(problems)
    return True, f"the image config has {', '.join(_checked(check))} as expected"


def _exact(expected: str | None, what: str, found: str) -> list[str]:
    if expected is None or expected == found:
        return []
    return [f"expected {what} {expected!r}, found {repr(found) if found else 'none'}"]


def _env(entries: list[str] | None) -> dict[str, str]:
    pairs = (entry.partition("=") for entry in entries or [])
    return {name: value for name, _, value in pairs}


def _patterns(
    expected: tuple[tuple[str, str], ...], what: str, found: Mapping[str, str]
) -> list[str]:
    problems = []
    for name, pattern in expected:
        if name not in found:
            problems.append(f"expected {what} {name} matching {pattern!r}, found it unset")
        elif not re.fullmatch(pattern, found[name]):
            problems.append(f"expected {what} {name} matching {pattern!r}, found {found[name]!r}")
    return problems


def _ports(expected: tuple[str, ...], found: Mapping[str, object]) -> list[str]:
    exposed = sorted(found)
    shown = ", ".join(exposed) or "none"
    return [
        f"expected port {port} to be exposed, found {shown}"
        for port in expected
        if port not in exposed
    ]


def _argv(expected: tuple[str, ...] | None, what: str, found: list[str] | None) -> list[str]:
    actual = tuple(found or ())
    if expected is None or expected == actual:
        return []
    return [f"expected {what} {_shown(expected)}, found {_shown(actual)}"]


def _shown(argv: tuple[str, ...]) -> str:
    return repr(list(argv)) if argv else "none"


def _checked(check: MetadataCheck) -> list[str]:
    names = [
        what
        for what, value in (
            ("user", check.user),
            ("working directory", check.workdir),
            ("entrypoint", check.entrypoint),
            ("cmd", check.cmd),
        )
        if value is not None
    ]
    names += [f"environment variable {name}" for name, _ in check.env]
    names += [f"port {port}" for port in check.exposed_ports]
    names += [f"label {name}" for name, _ in check.labels]
    return names
