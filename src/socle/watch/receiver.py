"""A small HTTP endpoint for registries that call back.

Every authenticated manifest push becomes a :class:`Pushed` handed to a
callback (the rebuild cascade) on one worker thread, one at a time, so the
registry gets its answer at once and never waits for a build.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from socle.core.cascade import Pushed
from socle.errors import InputError, SocleError
from socle.watch.notifications import (
    DISTRIBUTION_EVENTS,
    HARBOR_EVENTS,
    BadNotification,
    Delivery,
    media_type,
    parse_deliveries,
)

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # distribution batches events; a megabyte is thousands of them
DEDUP_WINDOW = 5.0
QUEUE_SIZE = 1000
# Event ids remembered to recognise a registry's retries, however late they come
# (distribution retries after its backoff, 10 s in the config `socle up` writes).
RECENT_EVENTS = 10_000

OnPush = Callable[[Pushed], None]


def read_secret(path: Path) -> str:
    """The shared secret in `path` (surrounding whitespace removed); never empty."""
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read the webhook secret file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the webhook secret file {path} is not UTF-8 text (byte offset {exc.start})",
            hint="write the secret as text, e.g. `openssl rand -hex 32 > FILE`",
        ) from None
    if not secret:
        raise InputError(f"the webhook secret file {path} is empty")
    return secret


def authorized(header: str | None, secret: str) -> bool:
    """Whether an Authorization header carries `secret`, as `Bearer <secret>` or bare.

    Harbor sends its configured auth header value as is; distribution sends
    whatever header its endpoint config names. Compared in constant time.
    """
    if not header:
        return False
    given = header.strip().encode()
    scheme, _, token = header.strip().partition(" ")
    bearer = token.strip().encode() if scheme.lower() == "bearer" else b""
    expected = secret.encode()
    # Both comparisons always run: the answer's timing says nothing about the form.
    return hmac.compare_digest(given, expected) | hmac.compare_digest(bearer, expected)


def parse_addr(addr: str) -> tuple[str, int]:
    """`HOST:PORT` as (host, port); port 0 asks the system for a free one."""
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"listen address {addr!r} is not HOST:PORT", hint="e.g. 127.0.0.1:8765")
    return host, int(port)


class Receiver:
    """An HTTP endpoint turning authenticated push notifications into `on_push` calls.

    Answers 200 once the pushes are queued, 401 for a missing or wrong secret,
    415 for a content type no registry sends, 400 for a malformed body, 413
    for an oversized one and 503 when the queue is full (the registry retries).
    Identical pushes within `dedup_window` seconds are passed on once, and so
    is an event the registry delivers again (the same event id: a retry), at
    any delay; the last :data:`RECENT_EVENTS` ids are kept, so memory is bounded
    by that count and by the pushes of one window.
    """

    def __init__(
        self,
        addr: str,
        secret: str,
        on_push: OnPush,
        *,
        dedup_window: float = DEDUP_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not secret:
            raise InputError("the webhook secret is empty")
        self._secret = secret
        self._on_push = on_push
        self._window = dedup_window
        self._clock = clock
        self._seen: dict[Pushed, float] = {}
        self._events: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Pushed | None] = queue.Queue(QUEUE_SIZE)
        self._server = _Server(parse_addr(addr), _Handler, self)
        self._threads: list[threading.Thread] = []
        self._stopped = False

    @property
    def address(self) -> str:
        """`HOST:PORT` actually listened on (the chosen port when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def url(self) -> str:
        """The URL to give a registry as its notification endpoint."""
        return f"http://{self.address}/"

    def start(self) -> None:
        """Serve and work in background threads; returns at once."""
        if self._threads or self._stopped:
            raise SocleError("a receiver starts once")
        # Daemon threads: an interrupted watcher exits even while a cascade runs.
        serve = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="socle-watch-http", daemon=True
        )
        work = threading.Thread(target=self._work, name="socle-watch-worker", daemon=True)
        self._threads = [serve, work]
        for thread in self._threads:
            thread.start()
        log.info("listening for registry notifications on %s", self.url)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening, drop what is still queued, wait for the push being handled.

        Safe to call twice, or on a receiver that never started.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True  # from now on accept() refuses
            dropped = _drain(self._queue)
            self._queue.put_nowait(None)
        if dropped:
            log.warning("stopped with %d push(es) not handled", dropped)
        if self._threads:
            self._server.shutdown()  # waits for serve_forever, which must be running
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s still busy after %.0f s; leaving it", thread.name, timeout)

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def accept(self, deliveries: Sequence[Delivery]) -> bool:
        """Queue the pushes not seen before; False (nothing queued) if the queue is full."""
        with self._lock:
            if self._stopped:
                return False
            now = self._clock()
            self._seen = {p: t for p, t in self._seen.items() if now - t < self._window}
            fresh = self._fresh(deliveries)
            if self._queue.qsize() + len(fresh) > QUEUE_SIZE:
                return False
            for delivery in fresh:
                self._seen[delivery.push] = now
                if delivery.event is not None:
                    self._events[delivery.event] = None
                    if len(self._events) > RECENT_EVENTS:
                        self._events.popitem(last=False)
                self._queue.put_nowait(delivery.push)
                log.info("push: %s", delivery.push)
        return True

    def _fresh(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """The deliveries whose push is new in the window and whose event is not a retry."""
        fresh: dict[Pushed, Delivery] = {}
        for delivery in deliveries:
            retried = delivery.event is not None and delivery.event in self._events
            if not retried and delivery.push not in self._seen and delivery.push not in fresh:
                fresh[delivery.push] = delivery
        return list(fresh.values())

    def authorized(self, header: str | None) -> bool:
        """Whether the request's Authorization header carries the shared secret."""
        return authorized(header, self._secret)

    def _work(self) -> None:
        while (push := self._queue.get()) is not None:
            try:
                self._on_push(push)
            except Exception:  # the watcher outlives one failed cascade
                log.exception("handling %s failed", push)


def _drain(pending: queue.Queue[Pushed | None]) -> int:
    count = 0
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            return count
        count += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        receiver: Receiver,
    ) -> None:
        self.receiver = receiver
        try:
            super().__init__(address, handler)
        except OSError as exc:
            raise SocleError(
                f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}",
                hint="choose another --listen address or port",
            ) from None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is routine (a registry restarting); anything else is logged."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("connection from %s ended: %s", client_address[0], error)
        else:
            log.exception("failed to handle a request from %s", client_address[0])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: distribution reuses its connection
    server_version = "socle-watch"
    timeout = 30  # a client that stops sending does not hold a thread forever
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        if not receiver.authorized(self.headers.get("Authorization")):
            log.warning("refused a notification from %s: bad secret", self.client_address[0])
            self._answer(HTTPStatus.UNAUTHORIZED, {"error": "bad or missing secret"}, close=True)
            return
        content_type = self.headers.get("Content-Type", "")
        if media_type(content_type) not in (*DISTRIBUTION_EVENTS, HARBOR_EVENTS):
            error = {"error": f"unexpected content type {content_type!r}"}
            self._answer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, error, close=True)
            return
        body = self._body()
        if body is None:
            return
        try:
            deliveries = parse_deliveries(content_type, body)
        except BadNotification as exc:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": exc.message})
            return
        if not receiver.accept(deliveries):
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "busy, retry later"})
            return
        self._answer(HTTPStatus.OK, {"accepted": len(deliveries)})

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/healthz":
            self._answer(HTTPStatus.OK, {"status": "ok"})
        else:
            self._answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST notifications here"})

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._answer(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length needed"}, close=True)
            return None
        if int(length) > MAX_BODY:
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "too large"}, close=True)
            return None
        return self.rfile.read(int(length))

    def _answer(
        self, status: HTTPStatus, body: Mapping[str, object], *, close: bool = False
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)
