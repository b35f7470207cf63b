"""The planner's batch of HEADs: lean path for plain answers, full path for everything else."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from socle.oci.content import Descriptor, Manifest
from socle.oci.reference import Reference
from socle.registry.bulk import WORKERS, BulkHeads

DIGEST = "sha256:" + "ab" * 32


class Handler(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 - the http.server protocol
        if "missing" in self.path:
            self.send_response(404)
        elif "guarded" in self.path:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="x"')
        else:
            self.send_response(200)
            self.send_header("Docker-Content-Digest", DIGEST)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", "123")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def bulk(full_calls: list[Reference], *, lean: bool = True) -> BulkHeads:
    def full(ref: Reference) -> Descriptor | None:
        full_calls.append(ref)
        return Descriptor("full", "sha256:" + "cd" * 32, 1)

    return BulkHeads(manifest_url, "application/vnd.oci.image.manifest.v1+json", full, lean=lean)


def test_plain_answers_take_the_lean_path_and_a_challenge_the_full_one(server: str) -> None:
    calls: list[Reference] = []
    heads = bulk(calls)
    ok, missing = Reference(server, "a/ok", "1"), Reference(server, "a/missing", "1")
    found = heads.heads([ok, missing] * 20)
    assert found[0] == Descriptor("application/vnd.oci.image.manifest.v1+json", DIGEST, 123)
    assert found[1] is None
    assert calls == []  # all forty answered on the lean path
    guarded = heads.head(Reference(server, "a/guarded", "1"))
    assert guarded is not None and guarded.media_type == "full"
    # A registry that asked for credentials goes straight to the full path (which authenticates).
    assert heads.head(ok) is not None and calls[-1] == ok and len(calls) == 2


def test_unreachable_and_injected_transports_use_the_full_path(server: str) -> None:
    calls: list[Reference] = []
    dead = Reference("127.0.0.1:9", "a/ok", "1")  # port 9 refuses
    assert bulk(calls).head(dead) is not None and calls == [dead]
    calls.clear()
    assert bulk(calls, lean=False).heads([Reference(server, "a/ok", "1")])[0].media_type == "full"  # type: ignore[union-attr]


BODY = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
BODY_DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()


class Getter(Handler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
        if "missing" in self.path:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        liar = "liar" in self.path
        self.send_header("Docker-Content-Digest", DIGEST if liar else BODY_DIGEST)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A loopback HTTP server with `handler`, in a thread; the server and its host:port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"127.0.0.1:{httpd.server_address[1]}"


def manifest_url(ref: Reference) -> str:
    return f"http://{ref.registry}/v2/{ref.repository}/manifests/{ref.digest or ref.tag}"


def test_gets_take_the_lean_path_only_for_content_that_matches_its_digest() -> None:
    httpd, server = serve(Getter)
    fetched: list[Reference] = []

    def full_get(ref: Reference) -> Manifest | None:
        fetched.append(ref)
        return None

    gets = BulkHeads(manifest_url, "*/*", lambda ref: None, full_get=full_get)
    try:
        ok = gets.get(Reference(server, "a/ok", "1"))
        assert ok is not None and ok.digest == BODY_DIGEST and ok.data == BODY
        pinned = gets.get(Reference(server, "a/ok", digest=BODY_DIGEST))
        assert pinned == ok
        assert gets.get(Reference(server, "a/missing", "1")) is None
        assert fetched == []
        # A body that is not the digest announced, or asked for, is left to the full path.
        liar, wrong = Reference(server, "a/liar", "1"), Reference(server, "a/ok", digest=DIGEST)
        assert gets.get(liar) is None and gets.get(wrong) is None
        assert fetched == [liar, wrong]
    finally:
        httpd.shutdown()


class KeepAlive(Getter):
    """HTTP/1.1 with keep-alive, counting the connections it accepts."""

    protocol_version = "HTTP/1.1"
    opened: list[int] = []

    def setup(self) -> None:
        super().setup()
        KeepAlive.opened.append(1)

    def do_HEAD(self) -> None:  # noqa: N802 - the http.server protocol
        self.send_response(200)
        self.send_header("Docker-Content-Digest", BODY_DIGEST)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()


def test_every_batch_reuses_the_same_workers_and_connections() -> None:
    KeepAlive.opened = []
    httpd, server = serve(KeepAlive)

    def full(ref: Reference) -> None:
        raise AssertionError(f"{ref} left the lean path")

    batch = BulkHeads(manifest_url, "*/*", full, full_get=full)
    refs = [Reference(server, "a/ok", str(i)) for i in range(64)]
    try:
        first = batch.heads(refs)
        opened = len(KeepAlive.opened)
        assert 1 <= opened <= WORKERS
        threads = {t.ident for t in threading.enumerate() if t.name.startswith("socle-registry")}
        # The plan's HEADs, the journal's GETs, the tag phase's HEADs: no new thread, and never
        # more than one connection per worker (a worker idle in the first batch may open its
        # own later; without reuse, these 6 more batches of 64 would open hundreds).
        for _ in range(3):
            assert batch.heads(refs) == first
            assert all(m is not None and m.data == BODY for m in batch.map(batch.get, refs))
        assert opened <= len(KeepAlive.opened) <= WORKERS
        assert {
            t.ident for t in threading.enumerate() if t.name.startswith("socle-registry")
        } == threads
        # A batch inside a batch runs in its worker instead of waiting for the busy pool.
        nested = batch.map(lambda ref: batch.heads([ref, ref]), refs)
        assert all(pair == [first[0], first[0]] for pair in nested)
    finally:
        batch.close()
        httpd.shutdown()
    assert not threads & {t.ident for t in threading.enumerate()}


def test_a_connection_the_registry_closed_while_idle_is_reopened_on_the_lean_path() -> None:
    KeepAlive.opened = []
    httpd, server = serve(KeepAlive)
    fell_back: list[Reference] = []

    def full(ref: Reference) -> Descriptor | None:
        fell_back.append(ref)
        return None

    batch = BulkHeads(manifest_url, "*/*", full)
    try:
        ref = Reference(server, "a/ok", "1")
        assert batch.head(ref) is not None
        for wire in batch._wires.values():  # what an idle timeout on the server side leaves
            assert wire._sock is not None
            wire._sock.shutdown(socket.SHUT_RDWR)
        assert batch.head(ref) is not None
        assert fell_back == [] and len(KeepAlive.opened) == 2
    finally:
        batch.close()
        httpd.shutdown()
