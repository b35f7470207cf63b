"""`socle up` / `socle down` for real: a registry socle starts, finds, and stops."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from socle import stack
from socle.errors import SocleError
from socle.stack import StackPaths, Webhook

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(addr: str) -> bool:
    try:
        return httpx.get(f"http://{addr}/v2/", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def paths(tmp_path: Path) -> Iterator[StackPaths]:
    paths = StackPaths(tmp_path / "socle")
    yield paths
    stack.down(paths)  # whatever a failing test left running


def test_up_is_idempotent_and_down_stops_what_it_started(paths: StackPaths) -> None:
    addr = f"127.0.0.1:{free_port()}"
    assert stack.up(paths, registry_addr=addr, docker=False) == [
        f"registry: started on {addr} (data: {paths.root / 'registry'})"
    ]
    assert answers(addr)
    assert stack.up(paths, registry_addr=addr, docker=False) == [
        f"registry: already running on {addr}"
    ]
    pid = stack.recorded_pid(paths, stack.REGISTRY)
    assert stack.status(paths)[0] == f"registry: running on {addr} (pid {pid}, started by socle)"

    assert stack.down(paths) == ["dockerd: nothing to stop", f"registry: stopped (pid {pid})"]
    assert not answers(addr)
    assert stack.status(paths)[0] == "registry: not running"
    assert stack.down(paths) == ["dockerd: nothing to stop", "registry: nothing to stop"]


def test_a_registry_socle_did_not_start_is_left_alone(paths: StackPaths, registry: Any) -> None:
    assert stack.up(paths, registry_addr=registry.host, docker=False) == [
        f"registry: already running on {registry.host}"
    ]
    stack.down(paths)
    assert answers(registry.host)


def test_a_registry_that_cannot_start_shows_its_log(paths: StackPaths) -> None:
    with socket.socket() as busy:  # something that is not a registry holds the port
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        addr = f"127.0.0.1:{busy.getsockname()[1]}"
        with pytest.raises(SocleError, match="registry did not start") as caught:
            stack.up(paths, registry_addr=addr, docker=False)
    assert "address already in use" in caught.value.message
    assert not paths.pid_file("registry").exists()


class Recorder(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def push_tiny_image(addr: str, repo: str) -> None:
    """Push an (empty-layered) OCI image with the plain distribution API."""
    with httpx.Client(base_url=f"http://{addr}") as client:
        config = b"{}"
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        upload = client.post(f"/v2/{repo}/blobs/uploads/")
        # The Location keeps upload state in its query: add the digest, do not replace it.
        location = httpx.URL(upload.headers["Location"])
        client.put(
            location.copy_merge_params({"digest": digest}), content=config
        ).raise_for_status()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest, "size": len(config)},
            "layers": [],
        }  # fmt: skip
        client.put(
            f"/v2/{repo}/manifests/1",
            content=json.dumps(manifest),
            headers={"Content-Type": OCI_MANIFEST},
        ).raise_for_status()


def test_webhooks_receive_push_events_with_the_secret_header(
    paths: StackPaths, webhook_server: ThreadingHTTPServer
) -> None:
    addr = f"127.0.0.1:{free_port()}"
    url = f"http://127.0.0.1:{webhook_server.server_address[1]}/events"
    hook = Webhook(url, ("Authorization", "Bearer s3cret"))
    stack.up(paths, registry_addr=addr, docker=False, notify=[hook])
    push_tiny_image(addr, "test/hooked")
    for _ in range(100):
        pushes = [
            (headers, event)
            for headers, body in Recorder.received
            for event in body["events"]
            if event["action"] == "push" and event["target"]["mediaType"] == OCI_MANIFEST
        ]
        if pushes:
            break
        time.sleep(0.1)
    assert pushes, "no push event arrived within 10 s"
    headers, event = pushes[0]
    assert headers["Authorization"] == "Bearer s3cret"
    assert event["target"]["repository"] == "test/hooked"
    assert event["target"]["tag"] == "1"
