"""Logins for the console's write actions: OpenID Connect through authlib, and CSRF tokens.

The authorization code flow runs with state, nonce and PKCE (S256); authlib
checks the ID token's signature, issuer, audience and nonce. The session (a
signed, HttpOnly cookie) keeps only the user's name, email, groups and when the
login expires: no token of the provider is kept, shown or logged. A user may
write (rebuild, promote, prune) iff the configured group is in the groups claim.
Without --oidc-issuer nobody logs in and the console is read-only.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from socle.serve.console import Console
from socle.serve.settings import OidcSettings

log = logging.getLogger(__name__)

SESSION_SECONDS = 8 * 3600  # a login lasts this long (the session cookie's max age too)
SCOPES = "openid email profile groups"
USER_KEY = "user"
CSRF_KEY = "csrf"
NEXT_KEY = "next"


@dataclass(frozen=True)
class User:
    """Who is logged in, and whether the configured group lets them write."""

    name: str
    email: str
    groups: tuple[str, ...]
    authorized: bool


class Provider(Protocol):
    """What the routes need of the OIDC client (authlib's Starlette app; a fake in unit tests)."""

    async def authorize_redirect(self, request: Request, redirect_uri: str) -> Response: ...

    async def authorize_access_token(self, request: Request) -> dict[str, Any]: ...


def make_provider(oidc: OidcSettings) -> Provider:
    """authlib's client for `oidc`: discovery from the issuer, code flow with PKCE S256."""
    with warnings.catch_warnings():  # authlib 1.9 warns of httpx on import: not the user's issue
        import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401  (its filter first)

        warnings.filterwarnings("ignore", message="The httpx module is deprecated")
        from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]

    oauth = OAuth()
    client: Provider = oauth.register(
        name="socle",
        client_id=oidc.client_id,
        client_secret=oidc.client_secret,
        server_metadata_url=f"{oidc.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPES, "code_challenge_method": "S256"},
    )
    return client


# -- what routes ask ---------------------------------------------------------------------------


def _oidc(request: Request) -> OidcSettings | None:
    console: Console = request.app.state.console
    return console.settings.oidc


def current_user(request: Request) -> User | None:
    """The logged-in user, or None (not logged in, the login expired, or no OIDC configured)."""
    oidc = _oidc(request)
    if oidc is None:
        return None
    data = request.session.get(USER_KEY)
    if not isinstance(data, dict):
        return None
    expires = data.get("exp")
    if not isinstance(expires, int | float) or expires <= time.time():
        request.session.pop(USER_KEY, None)
        return None
    groups = tuple(str(g) for g in data.get("groups") or ())
    return User(
        name=str(data.get("name") or ""),
        email=str(data.get("email") or ""),
        groups=groups,
        authorized=oidc.group in groups,
    )


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); every write form carries it."""
    token = request.session.get(CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_KEY] = token
    return token


def check_csrf(request: Request, value: object) -> None:
    """403 unless `value` is the session's CSRF token (compared in constant time)."""
    expected = request.session.get(CSRF_KEY)
    if (
        not isinstance(expected, str)
        or not expected
        or not isinstance(value, str)
        or not hmac.compare_digest(expected.encode(), value.encode())
    ):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def require_writer(request: Request) -> User:
    """The user, if they may write: 401 when not logged in, 403 when not in the group."""
    oidc = _oidc(request)
    if oidc is None:
        raise HTTPException(
            403, "this console is read-only: socle serve was started without --oidc-issuer"
        )
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "log in first: /auth/login")
    if not user.authorized:
        raise HTTPException(403, f"{user.name} is not in the group {oidc.group!r}")
    return user


def user_from_claims(claims: Mapping[str, Any], oidc: OidcSettings, now: float) -> dict[str, Any]:
    """What the session keeps of an ID token's claims (nothing else of the token)."""
    raw = claims.get(oidc.groups_claim) or []
    groups = [raw] if isinstance(raw, str) else [str(g) for g in raw if isinstance(g, str)]
    email = str(claims.get("email") or "")
    name = str(
        claims.get("preferred_username") or claims.get("name") or email or claims.get("sub") or ""
    )
    return {"name": name, "email": email, "groups": groups, "exp": int(now + SESSION_SECONDS)}


def _safe_next(value: str | None) -> str:
    """A local path to return to after the login (never another site)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# -- routes ------------------------------------------------------------------------------------


def routes(console: Console) -> list[BaseRoute]:
    oidc = console.settings.oidc
    provider = make_provider(oidc) if oidc is not None else None

    async def login(request: Request) -> Response:
        if provider is None:
            return _page(
                console,
                request,
                404,
                "Read-only console",
                "This console is read-only: socle serve was started without --oidc-issuer, "
                "so nobody can log in to rebuild, promote or prune.",
            )
        request.session[NEXT_KEY] = _safe_next(request.query_params.get("next"))
        redirect_uri = str(request.url_for("auth_callback"))
        try:
            return await provider.authorize_redirect(request, redirect_uri)
        except Exception as exc:  # discovery failed: the provider is down or misnamed
            log.warning("OIDC login: the provider %s did not answer: %s", oidc and oidc.issuer, exc)
            return _page(
                console,
                request,
                502,
                "Login unavailable",
                "The login provider did not answer; try again later.",
            )

    async def callback(request: Request) -> Response:
        if provider is None or oidc is None:
            return _page(console, request, 404, "Read-only console", "Nobody logs in here.")
        from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]

        refused = request.query_params.get("error")
        if refused:  # the provider said no (access_denied...): its word, shortened
            return _page(console, request, 400, "Login failed", f"Login failed: {refused[:80]}.")
        try:
            token = await provider.authorize_access_token(request)
        except OAuthError as exc:
            log.info("OIDC login refused: %s", exc.error)
            return _page(console, request, 400, "Login failed", f"Login failed: {exc.error}.")
        except Exception as exc:
            log.warning("OIDC login failed: %s", type(exc).__name__)
            return _page(console, request, 502, "Login failed", "The login provider failed.")
        claims = token.get("userinfo")
        if not isinstance(claims, Mapping):
            return _page(console, request, 400, "Login failed", "No ID token came back.")
        next_path = _safe_next(request.session.get(NEXT_KEY))
        # a fresh session: nothing of before the login (or of the flow) survives it
        request.session.clear()
        request.session[USER_KEY] = user_from_claims(claims, oidc, time.time())
        csrf_token(request)
        log.info("%s logged in", request.session[USER_KEY]["name"])
        return RedirectResponse(next_path, status_code=303)

    async def logout(request: Request) -> Response:
        async with request.form() as form:
            check_csrf(request, form.get("csrf"))
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    return [
        Route("/auth/login", login, methods=["GET"], name="auth_login"),
        Route("/auth/callback", callback, methods=["GET"], name="auth_callback"),
        Route("/auth/logout", logout, methods=["POST"], name="auth_logout"),
    ]


def context(request: Request, console: Console, **extra: Any) -> dict[str, Any]:
    """The template context (pages.page_context when the UI helper's module has it)."""
    from socle.serve import pages

    page_context = getattr(pages, "page_context", None)
    if page_context is not None:
        result: dict[str, Any] = page_context(request, console, **extra)
        return result
    import socle

    return {
        "request": request,
        "user": current_user(request),
        "csrf": csrf_token(request),
        "version": socle.__version__,
        "catalog": str(console.settings.catalog),
        **extra,
    }


def _page(console: Console, request: Request, status: int, title: str, message: str) -> Response:
    return console.templates.TemplateResponse(
        request,
        "auth_message.html",
        context(request, console, title=title, message=message),
        status_code=status,
    )
