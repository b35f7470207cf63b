"""/hooks/registry: authenticated push notifications queue the children's rebuild, once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from socle.core.cascade import Pushed
from socle.history.store import HistoryStore
from socle.serve.app import create_app
from socle.serve.console import Console
from socle.serve.hooks import Hooks
from socle.serve.runner import RunRequest
from socle.serve.settings import ConsoleSettings
from socle.watch.notifications import Delivery

REGISTRY = "127.0.0.1:5999"
SECRET = "hook-secret-for-tests"
EVENTS = "application/vnd.docker.distribution.events.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DIGEST = "sha256:" + "c" * 64
TOOL, LEAF = "tool:1-os1", "leaf:2-tool1-os1"


def write_catalog(root: Path) -> Path:
    for name in ("tool", "leaf", "side"):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN true\n")
    catalog = root / "catalog.yaml"
    catalog.write_text(
        f"registry: {REGISTRY}\nnamespace: w\nimages:\n"
        f"  os: {{upstream: {REGISTRY}/up/os, versions: {{'1': {{digest: 'sha256:{'a' * 64}'}}}}}}\n"
        "  tool: {parents: [os], versions: ['1']}\n"
        "  side: {parents: [os], versions: ['3']}\n"
        "  leaf: {parents: [tool], versions: ['2']}\n"
    )
    return catalog


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    settings = ConsoleSettings(catalog=write_catalog(tmp_path), hook_secret=SECRET, max_body=4096)
    yield Console(settings, store)  # the runner is not started: requests stay pending
    store.close()


def client_of(console: Console) -> TestClient:
    return TestClient(create_app(console, start=False))


def envelope(*pushes: tuple[str, str, str], host: str = REGISTRY) -> bytes:
    """A distribution notification: (event id, repository, tag) per manifest push."""
    events = [
        {
            "id": event,
            "action": "push",
            "target": {"mediaType": MANIFEST, "repository": repo, "tag": tag, "digest": DIGEST},
            "request": {"host": host},
        }
        for event, repo, tag in pushes
    ]
    return json.dumps({"events": events}).encode()


def post(
    client: TestClient,
    body: bytes,
    *,
    secret: str | None = SECRET,
    content_type: str = EVENTS,
) -> tuple[int, dict[str, object]]:
    headers = {"content-type": content_type}
    if secret is not None:
        headers["authorization"] = f"Bearer {secret}"
    answer = client.post("/hooks/registry", content=body, headers=headers)
    return answer.status_code, answer.json()


def test_a_push_of_a_parent_queues_its_childrens_rebuild(console: Console) -> None:
    with client_of(console) as client:
        status, body = post(client, envelope(("e1", "w/tool", "1-os1")))
    assert status == 202
    assert body["queued"] == [LEAF]
    assert console.runner.pending == [
        RunRequest(
            action="build",
            trigger="webhook",
            only=frozenset({LEAF}),
            reason=f"push of {REGISTRY}/w/tool:1-os1",
        )
    ]


def test_a_push_with_two_children_queues_both_in_one_request(console: Console) -> None:
    with client_of(console) as client:
        status, body = post(client, envelope(("e1", "w/os", "1")))
    assert status == 202 and body["queued"] == ["side:3-os1", TOOL]
    (request,) = console.runner.pending
    assert request.only == {"side:3-os1", TOOL}


def test_redelivered_events_and_repeated_pushes_make_one_request(console: Console) -> None:
    with client_of(console) as client:
        assert post(client, envelope(("e1", "w/tool", "1-os1")))[0] == 202
        # The registry retries the same event (or a second endpoint delivers it): dropped.
        for _ in range(5):
            status, body = post(client, envelope(("e1", "w/tool", "1-os1")))
            assert (status, body["new"]) == (200, 0)
        # The same push announced again under a new event id, while the first waits.
        assert post(client, envelope(("e2", "w/tool", "1-os1")))[0] == 200
    assert len(console.runner.pending) == 1


def test_a_delivery_arriving_while_the_first_is_handled_queues_nothing(console: Console) -> None:
    """The registry delivers one event to every endpoint at once: one cascade, not one each."""
    hooks = Hooks(console)
    push = Pushed("w/tool", "1-os1", DIGEST, REGISTRY)
    loading, release = threading.Event(), threading.Event()
    load = console.load

    def slow_load():  # type: ignore[no-untyped-def]
        loading.set()
        assert release.wait(5)
        return load()

    console.load = slow_load  # type: ignore[method-assign]
    first: list[int] = []
    worker = threading.Thread(
        target=lambda: first.append(hooks.handle([Delivery(push, "e1")]).status)
    )
    worker.start()
    assert loading.wait(5)
    # The same event from a second endpoint, and the same push under another id, meanwhile.
    assert hooks.handle([Delivery(push, "e1")]).body["new"] == 0
    assert hooks.handle([Delivery(push, "e2")]).body["new"] == 0
    release.set()
    worker.join(5)
    assert first == [202]
    assert len(console.runner.pending) == 1


def test_new_pushes_while_one_waits_join_the_waiting_run(console: Console) -> None:
    clock = [0.0]
    hooks = Hooks(console, window=5.0, clock=lambda: clock[0])
    push = Pushed("w/tool", "1-os1", DIGEST, REGISTRY)
    assert hooks.handle([Delivery(push, "e1")]).status == 202
    clock[0] = 60.0  # past the window: the same push is handled again...
    assert hooks.handle([Delivery(push, "e9")]).status == 202
    other = Pushed("w/os", "1", DIGEST, REGISTRY)
    assert hooks.handle([Delivery(other, "e10")]).status == 202
    # ...but the runner coalesces it with the waiting request: still one run.
    (request,) = console.runner.pending
    assert request.only == {LEAF, TOOL, "side:3-os1"}
    assert console.runner.coalesced == 2
    assert request.reason == (f"push of {REGISTRY}/w/tool:1-os1; push of {REGISTRY}/w/os:1")
    # A retry of the first event comes much later: still recognised.
    clock[0] = 3600.0
    assert hooks.handle([Delivery(push, "e1")]).body["new"] == 0


def test_pushes_nothing_is_built_on_are_accepted_and_ignored(console: Console) -> None:
    with client_of(console) as client:
        assert post(client, envelope(("e1", "w/leaf", "2-tool1-os1")))[0] == 200
        assert post(client, envelope(("e2", "elsewhere/x", "1")))[0] == 200
        assert post(client, envelope(("e3", "w/tool", "1-os1"), host="127.0.0.1:1"))[0] == 200
        assert post(client, json.dumps({"events": []}).encode())[0] == 200
    assert console.runner.pending == []


def test_without_a_secret_the_endpoint_is_off(console: Console) -> None:
    console.settings = replace(console.settings, hook_secret=None)
    with client_of(console) as client:
        status, body = post(client, envelope(("e1", "w/tool", "1-os1")))
    assert status == 404
    assert "--hook-secret-file" in str(body["error"])
    assert console.runner.pending == []


@pytest.mark.parametrize("secret", [None, "wrong", SECRET + "x", ""])
def test_a_wrong_or_missing_secret_is_401(console: Console, secret: str | None) -> None:
    with client_of(console) as client:
        status, body = post(client, envelope(("e1", "w/tool", "1-os1")), secret=secret)
    assert (status, body) == (401, {"error": "bad or missing secret"})
    assert console.runner.pending == []


def test_the_bare_secret_is_accepted_as_harbor_sends_it(console: Console) -> None:
    with client_of(console) as client:
        answer = client.post(
            "/hooks/registry",
            content=envelope(("e1", "w/tool", "1-os1")),
            headers={"content-type": EVENTS, "authorization": SECRET},
        )
    assert answer.status_code == 202


def test_malformed_bodies_are_400_and_queue_nothing(console: Console) -> None:
    with client_of(console) as client:
        for body in (b"{not json", b"[1, 2]", b'{"events": 3}', b"\xff\xfe"):
            status, answer = post(client, body)
            assert status == 400, body
            assert answer["error"]
        assert post(client, b"{}", content_type="text/plain")[0] == 415
    assert console.runner.pending == []


def test_a_body_beyond_max_body_is_413(console: Console) -> None:
    big = envelope(*[(f"e{i}", "w/tool", "1-os1") for i in range(100)])
    assert len(big) > console.settings.max_body
    with client_of(console) as client:
        declared = client.post(
            "/hooks/registry",
            content=big,
            headers={"content-type": EVENTS, "authorization": f"Bearer {SECRET}"},
        )
        assert declared.status_code == 413
        assert "too large" in declared.text

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            for start in range(0, len(big), 1000):
                yield big[start : start + 1000]

        streamed = client.post(
            "/hooks/registry",
            content=chunks(),
            headers={"content-type": EVENTS, "authorization": f"Bearer {SECRET}"},
        )
        assert streamed.status_code == 413
    assert console.runner.pending == []


def test_a_broken_catalog_is_503_and_the_retry_is_handled(console: Console) -> None:
    catalog = console.settings.catalog
    good = catalog.read_text()
    catalog.write_text("images: [\n")
    with client_of(console) as client:
        status, body = post(client, envelope(("e1", "w/tool", "1-os1")))
        assert status == 503 and "catalog" in str(body["error"])
        catalog.write_text(good)
        assert post(client, envelope(("e1", "w/tool", "1-os1")))[0] == 202  # the retry
    assert len(console.runner.pending) == 1


def test_get_is_not_allowed(console: Console) -> None:
    with client_of(console) as client:
        assert client.get("/hooks/registry").status_code == 405
