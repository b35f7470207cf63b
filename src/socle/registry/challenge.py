"""`WWW-Authenticate` challenges (RFC 7235) as registries send them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: `basic` or `bearer`, with its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        """Where to ask for a token (bearer) or the protection space (basic)."""
        return self.params.get("realm", "")

    @property
    def service(self) -> str | None:
        """The `service` to name in a token request."""
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes the registry asked for (space separated in the header)."""
        return tuple(self.params.get("scope", "").split())


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge in a `WWW-Authenticate` value, or None when there is none."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme or "=" in scheme:
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params.setdefault(match.group(1).lower(), value)
    return Challenge(scheme.lower(), params)
