"""What changed upstream, as it happens: registry push notifications and polling.

:class:`Receiver` is a small HTTP endpoint for registries that call back:
CNCF distribution's notifications (`notifications.endpoints` in its config)
and Harbor's webhooks. Every manifest push becomes a :class:`Pushed` handed
to a callback (the rebuild cascade) on one worker thread, one at a time, so
the registry gets its answer at once and never waits for a build.

:class:`Poller` serves registries that cannot call back: it HEADs each
watched tag every `interval` seconds and reports a digest that moved.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from socle.core.cascade import Pushed
from socle.errors import InputError, SocleError
from socle.oci.content import Descriptor
from socle.oci.media import MANIFEST_TYPES
from socle.oci.reference import Reference, is_digest

log = logging.getLogger(__name__)

DISTRIBUTION_EVENTS = (
    "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json",  # distribution 3
)
HARBOR_EVENTS = "application/json"
# Old registries still announce schema1 manifests; they are manifests all the same.
_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MANIFEST_MEDIA_TYPES = frozenset((*MANIFEST_TYPES, *_SCHEMA1))
MAX_BODY = 1 << 20  # distribution batches events; a megabyte is thousands of them
DEDUP_WINDOW = 5.0
QUEUE_SIZE = 1000

OnPush = Callable[["Pushed"], None]




class BadNotification(SocleError):
    """A notification body that is not what a registry sends (answered with 400)."""


# -- parsing -------------------------------------------------------------------------


def parse_notification(content_type: str, body: bytes) -> list[Pushed]:
    """The pushes in a notification body; raise :class:`BadNotification` if it is malformed.

    `content_type` must be one of :data:`DISTRIBUTION_EVENTS` or
    :data:`HARBOR_EVENTS` (checked by the caller).
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadNotification(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadNotification("the body is not a JSON object")
    if "events" in payload or _media_type(content_type) in DISTRIBUTION_EVENTS:
        return distribution_pushes(payload)
    return harbor_pushes(payload)


def distribution_pushes(payload: Mapping[str, Any]) -> list[Pushed]:
    """Manifest pushes in a CNCF distribution envelope `{"events": [...]}`.

    Pulls, mounts, deletes and blob pushes are not pushes of an image: ignored.
    """
    events = payload.get("events")
    if not isinstance(events, list):
        raise BadNotification('a distribution notification needs an "events" list')
    return [push for event in events if (push := _distribution_push(event)) is not None]


def _distribution_push(event: object) -> Pushed | None:
    if not isinstance(event, dict) or event.get("action") != "push":
        return None
    target = event.get("target")
    if not isinstance(target, dict) or target.get("mediaType") not in MANIFEST_MEDIA_TYPES:
        return None
    request = event.get("request")
    host = request.get("host") if isinstance(request, dict) else None
    return _pushed(target.get("repository"), target.get("tag"), target.get("digest"), host)


def harbor_pushes(payload: Mapping[str, Any]) -> list[Pushed]:
    """Artifact pushes in a Harbor webhook (`{"type": "PUSH_ARTIFACT", "event_data": ...}`).

    Other Harbor event types (pulls, deletes, scans, quotas...) are ignored.
    """
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise BadNotification('a Harbor webhook needs a "type"')
    if kind != "PUSH_ARTIFACT":
        return []
    data = payload.get("event_data")
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise BadNotification('a Harbor push needs "event_data" with a "resources" list')
    repository = data.get("repository")
    name = repository.get("repo_full_name") if isinstance(repository, dict) else None
    pushes = []
    for resource in data["resources"]:
        if not isinstance(resource, dict):
            raise BadNotification("a Harbor resource is not a JSON object")
        host = _registry_of(resource.get("resource_url"))
        push = _pushed(name, resource.get("tag"), resource.get("digest"), host)
        if push is not None:
            pushes.append(push)
    return pushes


def _registry_of(resource_url: object) -> str | None:
    """The registry host in a Harbor resource URL (`host/project/name:tag`), if it has one."""
    if not isinstance(resource_url, str):
        return None
    first, sep, _ = resource_url.partition("/")
    looks_like_host = "." in first or ":" in first or first == "localhost"
    return first if sep and looks_like_host else None


def _pushed(repository: object, tag: object, digest: object, host: object) -> Pushed | None:
    """A Pushed from loosely typed fields, or None (logged) when they do not make one."""
    if not isinstance(repository, str) or not repository:
        log.warning("ignored a push without a repository")
        return None
    if not isinstance(digest, str) or not is_digest(digest):
        log.warning("ignored a push to %s without a valid digest: %r", repository, digest)
        return None
    # Harbor names a push by digest with the digest as its tag.
    tag = tag if isinstance(tag, str) and tag and not is_digest(tag) else None
    return Pushed(repository, tag, digest, host if isinstance(host, str) and host else None)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


# -- authentication ------------------------------------------------------------------


def read_secret(path: Path) -> str:
    """The shared secret in `path` (surrounding whitespace removed); never empty."""
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise InputError(f"cannot read the webhook secret file {path}: {exc.strerror}") from None
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


# -- the receiver --------------------------------------------------------------------


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
    Identical pushes within `dedup_window` seconds are passed on once.
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

    def accept(self, pushes: Sequence[Pushed]) -> bool:
        """Queue the pushes not seen within the window; False if the queue is full."""
        with self._lock:
            if self._stopped:
                return False
            now = self._clock()
            self._seen = {p: t for p, t in self._seen.items() if now - t < self._window}
            fresh = [p for p in dict.fromkeys(pushes) if p not in self._seen]
            if self._queue.qsize() + len(fresh) > QUEUE_SIZE:
                return False
            for push in fresh:
                self._seen[push] = now
                self._queue.put_nowait(push)
                log.info("push: %s", push)
        return True

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
        if _media_type(content_type) not in (*DISTRIBUTION_EVENTS, HARBOR_EVENTS):
            error = {"error": f"unexpected content type {content_type!r}"}
            self._answer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, error, close=True)
            return
        body = self._body()
        if body is None:
            return
        try:
            pushes = parse_notification(content_type, body)
        except BadNotification as exc:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": exc.message})
            return
        if not receiver.accept(pushes):
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "busy, retry later"})
            return
        self._answer(HTTPStatus.OK, {"accepted": len(pushes)})

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


# -- polling ------------------------------------------------------------------------


class ManifestHeads(Protocol):
    """What polling needs of a registry client (:class:`~socle.registry.RegistryClient`)."""

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        """The descriptor at `ref`, or None when there is none."""
        ...


class Poller:
    """Watches tags by asking for their digest every `interval` seconds.

    The first answer for a tag is its baseline; a later different digest (or
    a tag that appears) is a :class:`Pushed`. A registry that fails to answer
    keeps the last digest known, so an outage is not a change.
    """

    def __init__(self, client: ManifestHeads, refs: Sequence[Reference], interval: float) -> None:
        if interval <= 0:
            raise InputError(f"the polling interval must be positive, got {interval}")
        for ref in refs:
            if ref.tag is None or ref.digest is not None:
                raise InputError(f"cannot watch {ref}: a tag moves, a digest does not")
        self._client = client
        self._refs = tuple(dict.fromkeys(refs))
        self._interval = interval
        self._known: dict[Reference, str | None] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> list[Pushed]:
        """HEAD every watched tag once; the tags whose digest changed since last time."""
        return [push for ref in self._refs if (push := self._check(ref)) is not None]

    def _check(self, ref: Reference) -> Pushed | None:
        try:
            found = self._client.head_manifest(ref)
        except SocleError as exc:
            log.warning("cannot poll %s: %s", ref, exc.message)
            return None
        digest = found.digest if found else None
        first = ref not in self._known
        before = self._known.get(ref)
        self._known[ref] = digest
        if first or digest is None or digest == before:
            return None
        return Pushed(ref.repository, ref.tag, digest, ref.registry)

    def run(self, on_push: OnPush, *, rounds: int | None = None) -> None:
        """Poll until :meth:`stop` (or `rounds` rounds), calling `on_push` for each change."""
        for count in _rounds(rounds):
            if count and self._stopped.wait(self._interval):
                return
            for push in self.poll_once():
                log.info("push: %s", push)
                try:
                    on_push(push)
                except Exception:  # the watcher outlives one failed cascade
                    log.exception("handling %s failed", push)

    def start(self, on_push: OnPush) -> None:
        """Run :meth:`run` in a background thread."""
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self.run, args=(on_push,), name="socle-poll", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling after the current round; wait for the background thread."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _rounds(limit: int | None) -> Iterator[int]:
    count = 0
    while limit is None or count < limit:
        yield count
        count += 1
