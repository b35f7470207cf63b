"""The console's write actions: rebuild a variant, promote, prune.

Each is a POST form that needs a writer (logged in, in the configured group,
see socle.serve.auth) and the session's CSRF token; it queues a RunRequest on
the console's runner and answers 303 to /runs. GET is refused (405). Bad input
(an unknown variant, a bad duration) is 400 with one line saying what is wrong.
"""

from __future__ import annotations

import logging

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from socle.core.catalog import Duration
from socle.errors import SocleError
from socle.serve.auth import User, check_csrf, require_writer
from socle.serve.console import Console
from socle.serve.pruning import PruneRequest
from socle.serve.runner import RunRequest

log = logging.getLogger(__name__)

MAX_KEEP = 1000


class BadInput(Exception):
    """A form field that makes no sense: 400 with this message."""


def routes(console: Console) -> list[BaseRoute]:
    async def authorized_form(request: Request) -> tuple[User, FormData]:
        """The writer and the form, after the login, group and CSRF checks."""
        async with request.form() as form:
            user = require_writer(request)
            check_csrf(request, form.get("csrf"))
            return user, form

    async def rebuild(request: Request) -> Response:
        user, form = await authorized_form(request)
        try:
            key = _known_key(console, form.get("key"))
        except BadInput as exc:
            return _bad(str(exc))
        return _submit(
            console,
            RunRequest(
                action="build",
                trigger="serve",
                only=frozenset({key}),
                user=user.name,
                reason=f"rebuild asked by {user.name} in the console",
                force=True,
            ),
        )

    async def promote(request: Request) -> Response:
        user, form = await authorized_form(request)
        try:
            raw = form.get("key")
            only = frozenset({_known_key(console, raw)}) if raw else frozenset()
        except BadInput as exc:
            return _bad(str(exc))
        return _submit(
            console,
            RunRequest(
                action="promote",
                trigger="serve",
                only=only,
                user=user.name,
                reason=f"promote asked by {user.name}",
            ),
        )

    async def prune(request: Request) -> Response:
        user, form = await authorized_form(request)
        try:
            keep = _keep(form.get("keep"))
            older_than = _older_than(form.get("older-than"))
        except BadInput as exc:
            return _bad(str(exc))
        words = f"keep {keep}" + (f", older than {older_than.text}" if older_than else "")
        return _submit(
            console,
            PruneRequest(
                user=user.name,
                reason=f"prune ({words}) asked by {user.name}",
                keep=keep,
                older_than=older_than,
            ),
        )

    return [
        Route("/actions/rebuild", rebuild, methods=["POST"], name="action_rebuild"),
        Route("/actions/promote", promote, methods=["POST"], name="action_promote"),
        Route("/actions/prune", prune, methods=["POST"], name="action_prune"),
    ]


def _submit(console: Console, request: RunRequest) -> Response:
    queued = console.submit(request)
    log.info(
        "%s queued by %s%s",
        request.action,
        request.user,
        "" if queued else " (joined a waiting run)",
    )
    return RedirectResponse("/runs", status_code=303)


def _bad(message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=400)


def _known_key(console: Console, value: object) -> str:
    """A variant key of the catalog as it is on disk now."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput("which variant? the form needs a key, e.g. my/debian:12")
    key = value.strip()
    try:
        _catalog, graph = console.load()
    except SocleError as exc:
        raise HTTPException(500, f"the catalog does not load: {exc.message}") from None
    if key not in graph.by_key:
        raise BadInput(f"unknown variant {key[:200]!r}: it is not in the catalog")
    return key


def _keep(value: object) -> int:
    if value is None or value == "":
        return 3
    text = value.strip() if isinstance(value, str) else ""
    if not text.isdigit() or not 1 <= int(text) <= MAX_KEEP:
        raise BadInput(f"keep {str(value)[:40]!r}: give a whole number from 1 to {MAX_KEEP}")
    return int(text)


def _older_than(value: object) -> Duration | None:
    if value is None or value == "":
        return None
    from socle.retention import parse_duration

    try:
        return parse_duration(value if isinstance(value, str) else "")
    except SocleError as exc:
        raise BadInput(f"older-than: {exc.message}: {exc.hint}") from None
