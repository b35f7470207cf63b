"""Logins: the OIDC flow's session handling, group authorization and CSRF, with a fake provider.

The real provider (Dex) is exercised in tests/integration/test_console_oidc.py;
here authlib's client is replaced by a fake that hands back chosen claims.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import itsdangerous
import pytest
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.testclient import TestClient

from socle.history.store import HistoryStore
from socle.serve import auth
from socle.serve.app import create_app
from socle.serve.console import Console
from socle.serve.settings import ConsoleSettings, OidcSettings

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "examples" / "seed" / "catalog.yaml"
SECRET = "client-secret-never-shown"
SESSION_SECRET = "unit-test-session-secret"
OIDC = OidcSettings("http://127.0.0.1:1/dex", "socle", SECRET, "socle-admins")


class FakeProvider:
    """Stands for authlib's client: state kept in the session, claims chosen by the test."""

    def __init__(self) -> None:
        self.claims: dict[str, Any] = {}
        self.redirect_uris: list[str] = []

    async def authorize_redirect(self, request: Request, redirect_uri: str) -> Response:
        self.redirect_uris.append(redirect_uri)
        request.session["_state_fake"] = "s1"
        return RedirectResponse(
            f"http://127.0.0.1:1/dex/auth?state=s1&redirect_uri={redirect_uri}", status_code=302
        )

    async def authorize_access_token(self, request: Request) -> dict[str, Any]:
        from authlib.integrations.base_client import MismatchingStateError

        expected = request.session.pop("_state_fake", None)
        if expected is None or request.query_params.get("state") != expected:
            raise MismatchingStateError()
        return {"access_token": "at-secret", "id_token": "id.token.secret", "userinfo": self.claims}


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    monkeypatch.setattr(auth, "make_provider", lambda _oidc: fake)
    return fake


def make_console(tmp_path: Path, oidc: OidcSettings | None) -> Console:
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    settings = ConsoleSettings(catalog=SEED, oidc=oidc, session_secret=SESSION_SECRET)
    return Console(settings, store)


@pytest.fixture
def client(tmp_path: Path, provider: FakeProvider) -> Iterator[TestClient]:
    console = make_console(tmp_path, OIDC)
    with TestClient(create_app(console, start=False), base_url="http://127.0.0.1:8080") as c:
        yield c
    console.store.close()


def log_in(client: TestClient, provider: FakeProvider, **claims: Any) -> None:
    provider.claims = {"sub": "x", "email": "ana@example.com", "name": "ana", **claims}
    start = client.get("/auth/login", params={"next": "/runs"}, follow_redirects=False)
    assert start.status_code == 302
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    back = client.get(
        "/auth/callback", params={"code": "c", "state": state}, follow_redirects=False
    )
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/runs"


def session_of(client: TestClient) -> dict[str, Any]:
    """The session cookie's content (signed by Starlette, not encrypted)."""
    cookie = client.cookies["socle_session"]
    data = itsdangerous.TimestampSigner(SESSION_SECRET).unsign(cookie)
    result: dict[str, Any] = json.loads(base64.b64decode(data))
    return result


def with_session(client: TestClient) -> Request:
    """A request carrying the client's session, for calling auth's functions directly."""
    scope = {"type": "http", "session": session_of(client), "app": client.app}
    return Request(scope)


def test_login_keeps_only_name_email_groups_and_expiry(
    client: TestClient, provider: FakeProvider
) -> None:
    log_in(client, provider, groups=["socle-admins", "x"])
    assert provider.redirect_uris == ["http://127.0.0.1:8080/auth/callback"]
    session = session_of(client)
    assert set(session) == {"user", "csrf"}
    assert set(session["user"]) == {"name", "email", "groups", "exp"}
    assert session["user"]["groups"] == ["socle-admins", "x"]
    assert time.time() + 7 * 3600 < session["user"]["exp"] <= time.time() + auth.SESSION_SECONDS
    assert "secret" not in json.dumps(session)
    user = auth.current_user(with_session(client))
    assert user is not None and user.name == "ana" and user.authorized


def test_session_cookie_is_httponly_and_samesite(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.claims = {"sub": "x", "name": "ana"}
    start = client.get("/auth/login", follow_redirects=False)
    cookie = start.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_user_outside_the_group_is_not_authorized(
    client: TestClient, provider: FakeProvider
) -> None:
    log_in(client, provider, groups=["other-team"])
    user = auth.current_user(with_session(client))
    assert user is not None and not user.authorized
    log_in(client, provider)  # no groups claim at all
    user = auth.current_user(with_session(client))
    assert user is not None and user.groups == () and not user.authorized


def test_callback_with_a_wrong_state_logs_nobody_in(
    client: TestClient, provider: FakeProvider
) -> None:
    provider.claims = {"sub": "x", "name": "ana", "groups": ["socle-admins"]}
    client.get("/auth/login", follow_redirects=False)
    back = client.get("/auth/callback", params={"code": "c", "state": "forged"})
    assert back.status_code == 400
    assert "Login failed" in back.text
    assert "user" not in session_of(client)


def test_callback_error_from_the_provider_is_a_400_page(client: TestClient) -> None:
    back = client.get("/auth/callback", params={"error": "access_denied"})
    assert back.status_code == 400
    assert "access_denied" in back.text


def test_next_never_leaves_the_console() -> None:
    assert auth._safe_next("//evil.example/x") == "/"
    assert auth._safe_next("http://evil.example/") == "/"
    assert auth._safe_next("/\\evil") == "/"
    assert auth._safe_next("/image/debian") == "/image/debian"


def test_an_expired_login_is_logged_out(client: TestClient, provider: FakeProvider) -> None:
    log_in(client, provider, groups=["socle-admins"])
    request = with_session(client)
    request.session["user"]["exp"] = time.time() - 1
    assert auth.current_user(request) is None
    assert "user" not in request.session


def test_logout_needs_the_csrf_token(client: TestClient, provider: FakeProvider) -> None:
    log_in(client, provider, groups=["socle-admins"])
    token = session_of(client)["csrf"]
    assert client.post("/auth/logout", data={"csrf": "wrong"}).status_code == 403
    assert client.post("/auth/logout").status_code == 403
    assert "user" in session_of(client)
    out = client.post("/auth/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    assert "socle_session" not in client.cookies  # the whole session is dropped


def test_logout_is_post_only(client: TestClient) -> None:
    assert client.get("/auth/logout").status_code == 405


def test_csrf_token_is_per_session_and_stable(
    client: TestClient, provider: FakeProvider, tmp_path: Path
) -> None:
    log_in(client, provider, groups=["socle-admins"])
    first = session_of(client)["csrf"]
    assert len(first) >= 32
    request = with_session(client)
    assert auth.csrf_token(request) == first
    auth.check_csrf(request, first)
    other = Request({"type": "http", "session": {}, "app": client.app})
    assert auth.csrf_token(other) != first


def test_check_csrf_refuses_missing_and_wrong_tokens() -> None:
    from starlette.exceptions import HTTPException

    request = Request({"type": "http", "session": {"csrf": "right-token"}})
    for value in (None, "", "wrong-token", 42):
        with pytest.raises(HTTPException) as raised:
            auth.check_csrf(request, value)
        assert raised.value.status_code == 403
    empty = Request({"type": "http", "session": {}})
    with pytest.raises(HTTPException):
        auth.check_csrf(empty, "")


def test_without_oidc_login_says_the_console_is_read_only(tmp_path: Path) -> None:
    console = make_console(tmp_path, None)
    with TestClient(create_app(console, start=False)) as c:
        page = c.get("/auth/login")
        assert page.status_code == 404
        assert "read-only" in page.text and "--oidc-issuer" in page.text
        assert c.get("/auth/callback", params={"code": "c", "state": "s"}).status_code == 404
    console.store.close()


def test_groups_claim_as_a_single_string() -> None:
    user = auth.user_from_claims({"name": "ana", "groups": "socle-admins"}, OIDC, 0.0)
    assert user["groups"] == ["socle-admins"]
    named = auth.user_from_claims({"sub": "s", "preferred_username": "ana2"}, OIDC, 0.0)
    assert named["name"] == "ana2"


def test_a_provider_that_does_not_answer_is_a_502_page(
    client: TestClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(request: Request, redirect_uri: str) -> Response:
        raise OSError("connection refused")

    monkeypatch.setattr(provider, "authorize_redirect", down)
    page = client.get("/auth/login")
    assert page.status_code == 502
    assert "did not answer" in page.text and "Traceback" not in page.text
