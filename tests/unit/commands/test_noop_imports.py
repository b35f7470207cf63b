"""A no-op `socle build` (everything current) loads none of the heavy stacks (bench/startup.py's HEAVY).

The no-op's 0.3 s target (issue 14) holds only while it plans, checks the tag
journal and records its run without httpx, rich, SQLAlchemy or the SBOM and
signing libraries: this runs the real CLI in a fresh process against a
loopback registry (the fake, served over HTTP) that a first run filled.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from socle.events import Status
from socle.history.store import HistoryStore
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from tests.conftest import CatalogWriter
from tests.unit.commands.test_startup import probe
from tests.unit.registry.registry_fakes import FakeRegistry
from tests.unit.registry.registry_images import tiny_image, write_layout
from tests.unit.test_executor import CATALOG, HOST, FakeBuilder, run

HEAVY = ("httpx", "cryptography", "cyclonedx", "rich", "sqlalchemy", "alembic", "nacl")
PROBE = probe(HEAVY)


def serving(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the registry answers

        def answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = httpx.Request(
                self.command,
                f"http://{self.headers['host']}{self.path}",
                headers=dict(self.headers.items()),
                content=self.rfile.read(length) if length else b"",
            )
            response = registry(request)
            body = response.content
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header(
                "Content-Length", response.headers.get("content-length", str(len(body)))
            )
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def registry_addr() -> Iterator[tuple[FakeRegistry, str]]:
    registry = FakeRegistry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), serving(registry))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield registry, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_no_op_build_imports_no_heavy_module(
    write_catalog: CatalogWriter, tmp_path: Path, registry_addr: tuple[FakeRegistry, str]
) -> None:
    registry, addr = registry_addr
    client = RegistryClient(transport=httpx.MockTransport(registry), sleep=lambda _: None)
    path = write_catalog("", contexts=("mid", "leaf", "other"))
    base = client.push_layout(
        write_layout(tmp_path / "up", tiny_image("base")), Reference(addr, "up/base")
    )
    path.write_text((CATALOG % base.digest).replace(HOST, addr))
    statuses, _ = run(path, client, FakeBuilder())  # the first run publishes everything
    assert Status.FAILED not in statuses.values()
    database = f"sqlite:///{tmp_path / 'history.db'}"
    HistoryStore.open(database).close()  # created and migrated: the no-op only writes to it
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "buildah").write_text("#!/bin/sh\nexit 0\n")
    (tools / "buildah").chmod(stat.S_IRWXU)
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "SOCLE_DB": database,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "build", "-c", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"0 built, {len(statuses)} current" in done.stdout
    assert "HEAVY=\n" in done.stderr, done.stderr
    with HistoryStore.open(database) as store:
        (recorded,) = store.runs()
        assert (recorded.trigger, recorded.status) == ("cli", "succeeded")
