"""A real OpenID Connect provider for the console's login tests: Dex on 127.0.0.1, in memory.

`make tools` builds Dex at a pinned version into .tools/bin. Its static
password database holds three users (bcrypt cost 10; Dex refuses less):

- alice / alice-pass, in the groups socle-admins and socle-readers (a writer);
- bob / bob-pass, in other-team only (logged in, not authorized);
- carol / carol-pass, with no groups claim at all.

`login_form` walks Dex's real login pages with httpx, as a browser would.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from tests.integration.conftest import free_port
from tests.integration.helpers import TOOLS

DEX = TOOLS / "dex"
CLIENT_ID = "socle-web"
GROUP = "socle-admins"
USERS = {
    # email: (password, bcrypt hash of it, username, userID, groups)
    "alice@example.com": (
        "alice-pass",
        "$2b$10$Fex6qIRHLQh8v40XAuUj5edQUSZfU2kqyxzqniKzvwRwR7fkk4qsy",
        "alice",
        "0b1c6a2e-0000-4000-8000-00000000a11c",
        ["socle-admins", "socle-readers"],
    ),
    "bob@example.com": (
        "bob-pass",
        "$2b$10$ztxhvEm1AcR1ZDBQcG2o7eVHKoIeJv31Z4x8/Z56cE8YpCRS.O/6.",
        "bob",
        "0b1c6a2e-0000-4000-8000-000000000b0b",
        ["other-team"],
    ),
    "carol@example.com": (
        "carol-pass",
        "$2b$10$bi6jYI.9XleMwZENvqB5kuBRSvxYB1zM5wWpXyaIijAF7TkXngjjS",
        "carol",
        "0b1c6a2e-0000-4000-8000-0000000ca201",
        [],
    ),
}


@dataclass
class Dex:
    issuer: str
    client_id: str
    client_secret: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def write_config(root: Path, port: int, redirect_uri: str, client_secret: str) -> Path:
    lines = [
        "# Dex on loopback only, in memory, for socle's OIDC login tests",
        f"issuer: http://127.0.0.1:{port}/dex",
        "storage:\n  type: memory",
        f"web:\n  http: 127.0.0.1:{port}",
        "logger:\n  level: info\n  format: text",
        "oauth2:\n  skipApprovalScreen: true\n  responseTypes: [code]",
        "expiry:\n  idTokens: 10m",
        "staticClients:",
        f"  - id: {CLIENT_ID}\n    name: socle\n    secret: {client_secret}",
        f"    redirectURIs:\n      - {redirect_uri}",
        "enablePasswordDB: true",
        "staticPasswords:",
    ]
    for email, (_password, hashed, username, user_id, groups) in USERS.items():
        lines.append(
            f'  - email: {email}\n    hash: "{hashed}"\n    username: {username}\n'
            f"    userID: {user_id}" + (f"\n    groups: [{', '.join(groups)}]" if groups else "")
        )
    path = root / "dex.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def running_dex(root: Path, redirect_uri: str, client_secret: str) -> Iterator[Dex]:
    """Dex serving on a free loopback port until the block ends; ready when discovery answers."""
    if not os.access(DEX, os.X_OK):
        pytest.fail(f"{DEX} is missing: `make tools` builds Dex (part of `make setup`)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(root, port, redirect_uri, client_secret)
    log_path = root / "dex.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(DEX), "serve", str(config)], stdout=log, stderr=log)
    dex = Dex(f"http://127.0.0.1:{port}/dex", CLIENT_ID, client_secret, log_path, proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dex exited with {proc.returncode}:\n{dex.log()[-2000:]}")
            try:
                answer = httpx.get(f"{dex.issuer}/.well-known/openid-configuration", timeout=1)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dex did not answer in 30 s:\n{dex.log()[-2000:]}")
            time.sleep(0.05)
        yield dex
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Form(HTMLParser):
    """The first form's action and input names, and whether Dex shows its error box."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: list[str] = []
        self.error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = found.get("action") or ""
        elif tag == "input" and found.get("name"):
            self.inputs.append(found["name"] or "")
        elif tag == "div" and "dex-error-box" in (found.get("class") or ""):
            self.error = True


def login_form(
    http: httpx.Client, page: httpx.Response, email: str, password: str
) -> httpx.Response:
    """Fill in Dex's login form (the page `page` shows) and follow where Dex sends the browser."""
    form = _Form()
    form.feed(page.text)
    assert form.action is not None and "login" in form.inputs, (
        f"no Dex login form at {page.url} (HTTP {page.status_code}): {page.text[:300]}"
    )
    return http.post(
        urljoin(str(page.url), form.action),
        data={"login": email, "password": password},
        follow_redirects=True,
    )


def shows_login_error(page: httpx.Response) -> bool:
    form = _Form()
    form.feed(page.text)
    return form.error
