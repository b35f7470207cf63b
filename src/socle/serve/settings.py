"""What `socle serve` was started with."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from socle.errors import InputError


@dataclass(frozen=True)
class OidcSettings:
    """The OpenID Connect provider that logs users in for write actions."""

    issuer: str  # e.g. http://127.0.0.1:5556/dex (its /.well-known/openid-configuration)
    client_id: str
    client_secret: str
    group: str  # the `groups` claim value that may rebuild, promote and prune
    groups_claim: str = "groups"


@dataclass(frozen=True)
class ConsoleSettings:
    catalog: Path
    registry: str | None = None  # overrides the catalog's registry
    host: str = "127.0.0.1"
    port: int = 8080
    public: bool = False
    db_url: str | None = None
    builder: str = "buildah"
    jobs: int = 2
    sign_key: Path | None = None  # passphrase from SOCLE_PASSWORD, as for `socle build`
    verify_key: Path | None = None  # the public key the image pages check signatures with
    hook_secret: str | None = None  # /hooks/registry's shared secret (None: hooks refused)
    oidc: OidcSettings | None = None  # None: the console is read-only
    session_secret: str = ""  # signs the session cookie; random per start when empty
    refresh_seconds: float = 60.0  # how often the overview is read again from the registry
    keep_runs: int = 1000  # history retention: runs older than the newest N are forgotten
    max_body: int = 1 << 20  # request bodies beyond this get 413
    deployments: tuple[Path, ...] = ()  # rendered deployments prune must keep

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_listen(value: str, *, public: bool) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT`); a non-loopback host needs `public`."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(
            f"--listen {value!r} is not HOST:PORT", hint="e.g. --listen 127.0.0.1:8080"
        )
    host = host.strip("[]") or "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise InputError(
                f"--listen {value!r}: give an IP address, not a host name",
                hint="e.g. --listen 127.0.0.1:8080",
            ) from None
        address = ipaddress.ip_address("127.0.0.1")
        host = "127.0.0.1"
    if not address.is_loopback and not public:
        raise InputError(
            f"--listen {value!r} is not a loopback address: the console would be reachable "
            "from other machines",
            hint="put it behind your TLS proxy and pass --public, or listen on 127.0.0.1",
        )
    return host, int(port_text)
