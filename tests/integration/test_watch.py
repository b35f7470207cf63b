"""Triggers, for real: a docker-registry that notifies socle's receiver, and polling.

The notifying registry is this module's own (its config names the receiver),
started with the same configuration `socle up --notify` writes; images are
pushed with skopeo, so the push events are the registry's genuine ones.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from socle.core.cascade import Pushed
from socle.oci.reference import Reference
from socle.process import run
from socle.registry.client import RegistryClient
from socle.stack import StackPaths, Webhook, render_registry_config
from socle.watch.notifications import DISTRIBUTION_EVENTS
from socle.watch.poller import Poller
from socle.watch.receiver import Receiver, read_secret
from tests.integration.images import write_busybox_layout

pytestmark = pytest.mark.integration

REGISTRY_BIN = "/usr/bin/docker-registry"
SECRET = "integration-secret-0f3a"


class Pushes:
    """The receiver's callback: records pushes, lets the test wait for them."""

    def __init__(self) -> None:
        self.seen: list[Pushed] = []
        self._changed = threading.Condition()

    def __call__(self, push: Pushed) -> None:
        with self._changed:
            self.seen.append(push)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 20) -> list[Pushed]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.seen) >= count, timeout)
            return list(self.seen)


class NotifyingRegistry:
    """A docker-registry on a free loopback port whose notifications go to `webhook`."""

    def __init__(self, root: Path, webhook: Webhook) -> None:
        self.host = f"127.0.0.1:{_free_port()}"
        paths = StackPaths(root)
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.registry_config.write_text(render_registry_config(paths, self.host, [webhook]))
        self.log_path = paths.log("registry")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(paths.registry_config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_until(self._answers, 20, f"registry did not start; see {self.log_path}")

    def _answers(self) -> bool:
        try:
            return httpx.get(f"http://{self.host}/v2/", timeout=1, trust_env=False).is_success
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(ready: Callable[[], bool], timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    pytest.fail(failure)


@pytest.fixture(scope="module")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("skopeo",):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run `make setup` (or .ci/run) first")
    if not Path(REGISTRY_BIN).exists():
        pytest.fail("docker-registry is not installed: run `make setup` (or .ci/run) first")
    layout = tmp_path_factory.mktemp("busybox") / "layout"
    write_busybox_layout(layout)
    return layout


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[Receiver, Pushes]]:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(f"{SECRET}\n")
    pushes = Pushes()
    with Receiver("127.0.0.1:0", read_secret(secret_file), pushes) as running:
        yield running, pushes


def _registry(root: Path, receiver: Receiver, secret: str) -> Iterator[NotifyingRegistry]:
    registry = NotifyingRegistry(root, Webhook(receiver.url, ("Authorization", f"Bearer {secret}")))
    yield registry
    registry.stop()


def skopeo_push(layout: Path, host: str, name: str, tmp_path: Path) -> str:
    """Push the layout with skopeo; the digest of the manifest as the registry stores it."""
    digest_file = tmp_path / "digest"
    run(
        [
            "skopeo", "copy", "--quiet", "--dest-tls-verify=false",
            "--digestfile", str(digest_file), f"oci:{layout}", f"docker://{host}/{name}",
        ]
    )  # fmt: skip
    return digest_file.read_text().strip()


def test_a_push_reaches_the_callback_from_the_notification_alone(
    receiver: tuple[Receiver, Pushes], busybox: Path, tmp_path: Path
) -> None:
    rx, pushes = receiver
    for registry in _registry(tmp_path / "registry", rx, SECRET):
        started = time.monotonic()
        digest = skopeo_push(busybox, registry.host, "test/busybox:1", tmp_path)
        seen = pushes.wait_for(1)
        print(f"\nnotified {time.monotonic() - started:.2f} s after the push started")
        time.sleep(1)  # blob pushes and HEADs must not show up afterwards

        assert pushes.seen == [Pushed("test/busybox", "1", digest, registry.host)]
        assert seen == pushes.seen

        # A retag is a push too (same manifest bytes under a new tag).
        with RegistryClient() as client:
            client.tag(Reference.parse(f"{registry.host}/test/busybox@{digest}"), "latest")
        assert pushes.wait_for(2)[1] == Pushed("test/busybox", "latest", digest, registry.host)


def test_a_registry_with_the_wrong_secret_is_refused(
    receiver: tuple[Receiver, Pushes],
    busybox: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rx, pushes = receiver
    caplog.set_level(logging.WARNING, logger="socle.watch")
    for registry in _registry(tmp_path / "registry", rx, "not-the-secret"):
        skopeo_push(busybox, registry.host, "test/busybox:1", tmp_path)

        _wait_until(
            lambda: any("bad secret" in r.getMessage() for r in caplog.records),
            20,
            f"the receiver never heard from the registry; see {registry.log_path}",
        )

    refused = httpx.post(
        rx.url,
        content=b'{"events": []}',
        headers={"Content-Type": DISTRIBUTION_EVENTS[0], "Authorization": "Bearer nope"},
        trust_env=False,
    )
    assert refused.status_code == 401
    assert pushes.seen == []


def test_the_poller_sees_a_retag_once(registry: object, busybox: Path) -> None:
    host = str(getattr(registry, "host"))  # noqa: B009 - the session fixture's LocalRegistry
    repo = Reference.parse(f"{host}/test/polled")
    pushes = Pushes()
    with RegistryClient() as client:
        first = client.push_layout(busybox, repo, annotations={"org.example.build": "1"})
        second = client.push_layout(busybox, repo, annotations={"org.example.build": "2"})
        client.tag(repo.with_digest(first.digest), "12")
        poller = Poller(client, [repo.with_tag("12")], interval=0.1)
        assert poller.poll_once() == [], "the first sight is the baseline"
        poller.start(pushes)
        try:
            client.tag(repo.with_digest(second.digest), "12")
            pushes.wait_for(1, timeout=10)
            time.sleep(0.5)  # several more rounds: still one push
        finally:
            poller.stop()

    assert pushes.seen == [Pushed("test/polled", "12", second.digest, host)]
