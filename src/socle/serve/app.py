"""The console's ASGI application: routes from each part, and the guards around them all."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socle.serve.console import STATIC, Console

log = logging.getLogger("socle.serve.access")

# Every answer carries these; pages use no inline script, so the policy can be strict.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def create_app(console: Console, *, start: bool = True) -> Starlette:
    """The application; with `start`, its lifespan starts the runner and the refresher."""
    from socle.serve import actions, auth, hooks, metrics, pages

    routes: list[BaseRoute] = [
        *pages.routes(console),
        *hooks.routes(console),
        *metrics.routes(console),
        *auth.routes(console),
        *actions.routes(console),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if start:
            console.start()
        try:
            yield
        finally:
            if start:
                console.stop()

    secret = console.settings.session_secret or secrets.token_urlsafe(32)
    middleware = [
        Middleware(Guard, max_body=console.settings.max_body),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="socle_session",
            same_site="lax",
            # --public means behind a TLS proxy: the cookie then travels over HTTPS only.
            https_only=console.settings.public,
            max_age=8 * 3600,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.console = console
    return app


class Guard:
    """Security headers on every answer, 413 beyond `max_body`, and an access log without queries.

    The query string is never logged: an OIDC callback carries its code there.
    """

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = {"code": 0}
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _too_large(send, self.max_body)
            _log(scope, 413, started)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, limited, send_with_headers)
        except _TooLarge:
            if not status["code"]:
                await _too_large(send, self.max_body)
                status["code"] = 413
        _log(scope, status["code"], started)


class _TooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = f"request body too large (limit {limit} bytes)\n".encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _log(scope: Scope, status: int, started: float) -> None:
    log.info(
        "%s %s %d %.1f ms",
        scope.get("method", "-"),
        scope.get("path", "-"),
        status,
        (time.monotonic() - started) * 1000,
    )
