"""`/hooks/registry`: registry push notifications start the console's rebuild cascade.

The same notifications as `socle watch --listen` (CNCF distribution's
envelopes and Harbor's webhooks), the same shared secret check, and the same
cascade: a push of a catalog image queues a build of its children (and so of
their subtrees) as one console run, triggered by "webhook".

Duplicates make one run: an event the registry delivers again (the same event
id, a retry or a second endpoint) is dropped at any delay, the same push
within a few seconds is dropped (both claimed atomically, as concurrent
deliveries arrive together), and requests for the same children while one
waits are coalesced by the runner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from socle.core.cascade import Pushed, followers
from socle.errors import SocleError
from socle.serve.console import Console
from socle.serve.runner import RunRequest
from socle.watch.notifications import (
    DISTRIBUTION_EVENTS,
    HARBOR_EVENTS,
    BadNotification,
    Delivery,
    media_type,
    parse_deliveries,
)
from socle.watch.receiver import DEDUP_WINDOW, RECENT_EVENTS, authorized

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, object]


class Hooks:
    """What the endpoint remembers between deliveries: recent event ids and pushes."""

    def __init__(
        self,
        console: Console,
        *,
        window: float = DEDUP_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self._window = window
        self._clock = clock
        self._events: OrderedDict[str, None] = OrderedDict()
        self._seen: dict[Pushed, float] = {}
        self._lock = threading.Lock()

    def handle(self, deliveries: Sequence[Delivery]) -> Answer:
        """Queue the children of each new push; answer as the registry is told."""
        fresh = self._claim(deliveries)
        if not fresh:
            return Answer(200, {"accepted": len(deliveries), "new": 0})
        try:
            catalog, graph = self.console.load()  # re-read: it may have changed
        except SocleError as exc:
            self._release(fresh)  # the registry retries a 503 in full
            log.warning("a registry notification waits: the catalog is unusable: %s", exc.message)
            return Answer(503, {"error": f"the catalog is unusable: {exc.message}"})
        queued: list[str] = []
        for delivery in fresh:
            push = delivery.push
            found = followers(catalog, graph, push)
            for upstream in found.upstream:
                log.warning("upstream %s moved: run `socle pins update` and review", upstream)
            keys = frozenset(child.key for child in found.children)
            if not keys:
                log.info("%s: no catalog image is built on it", describe(push))
                continue
            log.info("%s: cascading to %s", describe(push), ", ".join(sorted(keys)))
            self.console.submit(
                RunRequest(action="build", trigger="webhook", only=keys, reason=describe(push))
            )
            queued.extend(k for k in sorted(keys) if k not in queued)
        status = 202 if queued else 200
        return Answer(status, {"accepted": len(deliveries), "new": len(fresh), "queued": queued})

    def _claim(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """The deliveries whose event is not a retry and whose push is new in the window.

        They are marked seen at once, under the lock: the registry delivers one
        event to each endpoint concurrently, and a delivery arriving while the
        first is being handled must not queue a second cascade.
        """
        with self._lock:
            now = self._clock()
            self._seen = {p: t for p, t in self._seen.items() if now - t < self._window}
            fresh: dict[Pushed, Delivery] = {}
            for delivery in deliveries:
                retried = delivery.event is not None and delivery.event in self._events
                if not retried and delivery.push not in self._seen and delivery.push not in fresh:
                    fresh[delivery.push] = delivery
            for delivery in deliveries:
                if delivery.push in fresh:
                    self._seen[delivery.push] = now
                if delivery.event is not None and delivery.push in fresh:
                    self._events[delivery.event] = None
                    self._events.move_to_end(delivery.event)
            while len(self._events) > RECENT_EVENTS:
                self._events.popitem(last=False)
            return list(fresh.values())

    def _release(self, claimed: Sequence[Delivery]) -> None:
        """Forget claimed deliveries that were not handled, so their retry is."""
        with self._lock:
            for delivery in claimed:
                self._seen.pop(delivery.push, None)
                if delivery.event is not None:
                    self._events.pop(delivery.event, None)


def describe(push: Pushed) -> str:
    """`push of REPO:TAG` (with the registry host when the notification names it)."""
    where = f"{push.registry}/" if push.registry else ""
    return f"push of {where}{push.repository}:{push.tag or push.digest}"


def routes(console: Console) -> list[BaseRoute]:
    hooks = Hooks(console)

    async def registry_hook(request: Request) -> Response:
        secret = console.settings.hook_secret
        if secret is None:
            return _json(
                404,
                {
                    "error": "registry webhooks are off: start socle serve with "
                    "--hook-secret-file FILE"
                },
            )
        if not authorized(request.headers.get("authorization"), secret):
            client = request.client.host if request.client else "-"
            log.warning("refused a registry notification from %s: bad secret", client)
            return _json(401, {"error": "bad or missing secret"})
        content_type = request.headers.get("content-type", "")
        if media_type(content_type) not in (*DISTRIBUTION_EVENTS, HARBOR_EVENTS):
            return _json(415, {"error": f"unexpected content type {content_type!r}"})
        body = await request.body()  # the Guard answers 413 beyond settings.max_body
        try:
            deliveries = parse_deliveries(content_type, body)
        except BadNotification as exc:
            return _json(400, {"error": exc.message})
        answer = await run_in_threadpool(hooks.handle, deliveries)
        return _json(answer.status, answer.body)

    return [Route("/hooks/registry", registry_hook, methods=["POST"], name="registry_hook")]


def _json(status: int, body: dict[str, object]) -> Response:
    return JSONResponse(body, status_code=status)
