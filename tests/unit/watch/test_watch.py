from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socle.core.cascade import Pushed
from socle.errors import InputError, SocleError
from socle.oci.content import Descriptor
from socle.oci.media import OCI_INDEX, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.registry.errors import RegistryUnreachable
from socle.watch.notifications import DISTRIBUTION_EVENTS, BadNotification, parse_notification
from socle.watch.poller import Poller
from socle.watch.receiver import Receiver, authorized, parse_addr, read_secret

EVENTS = DISTRIBUTION_EVENTS[0]
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
SECRET = "s3cret-token"


def event(
    action: str, media_type: str, digest: str, tag: str | None = None, *, number: int = 0
) -> dict[str, Any]:
    """One distribution 2.8 event, shaped like the registry's own (fields trimmed).

    Its id is unique per action, digest, tag and `number`; a retry repeats it.
    """
    target: dict[str, Any] = {
        "mediaType": media_type,
        "size": 528,
        "digest": digest,
        "length": 528,
        "repository": "base/debian",
        "url": f"http://127.0.0.1:5000/v2/base/debian/manifests/{digest}",
    }
    if tag:
        target["tag"] = tag
    return {
        "id": f"{action}-{digest[-12:]}-{tag}-{number}",
        "timestamp": "2026-01-01T00:00:00Z",
        "action": action,
        "target": target,
        "request": {
            "id": "r1",
            "addr": "127.0.0.1:40000",
            "host": "127.0.0.1:5000",
            "method": "PUT",
            "useragent": "skopeo",
        },  # fmt: skip
        "actor": {},
        "source": {"addr": "host:5000", "instanceID": "i1"},
    }


def envelope(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def harbor(kind: str, *resources: dict[str, str]) -> bytes:
    """A Harbor 2.x webhook body (default payload format)."""
    return json.dumps(
        {
            "type": kind,
            "occur_at": 1767225600,
            "operator": "admin",
            "event_data": {
                "resources": list(resources),
                "repository": {
                    "date_created": 1767225600,
                    "name": "debian",
                    "namespace": "base",
                    "repo_full_name": "base/debian",
                    "repo_type": "private",
                },
            },
        }
    ).encode()


# -- parsing -------------------------------------------------------------------------


def test_only_manifest_pushes_count_in_distribution_events() -> None:
    body = envelope(
        event("push", "application/octet-stream", D3),  # a blob upload
        event("push", "application/vnd.oci.image.layer.v1.tar+gzip", D3),
        event("pull", OCI_MANIFEST, D1, "12"),
        event("mount", OCI_MANIFEST, D1),
        event("delete", OCI_MANIFEST, D1),
        event("push", OCI_MANIFEST, D1),  # a platform manifest, by digest
        event("push", OCI_INDEX, D2, "12"),
    )
    assert parse_notification(EVENTS, body) == [
        Pushed("base/debian", None, D1, "127.0.0.1:5000"),
        Pushed("base/debian", "12", D2, "127.0.0.1:5000"),
    ]


def test_distribution_3_and_parameters_in_the_content_type_are_fine() -> None:
    body = envelope(event("push", OCI_MANIFEST, D1, "12"))
    for content_type in (f"{EVENTS}; charset=utf-8", DISTRIBUTION_EVENTS[1]):
        assert [p.tag for p in parse_notification(content_type, body)] == ["12"]


def test_a_push_without_a_valid_digest_is_skipped() -> None:
    body = envelope(event("push", OCI_MANIFEST, "sha256:short", "12"))
    assert parse_notification(EVENTS, body) == []


def test_harbor_pushes_by_tag_and_by_digest() -> None:
    body = harbor(
        "PUSH_ARTIFACT",
        {"digest": D1, "tag": "12", "resource_url": "harbor.local:8443/base/debian:12"},
        {"digest": D2, "tag": D2, "resource_url": f"harbor.local:8443/base/debian@{D2}"},
    )
    assert parse_notification("application/json", body) == [
        Pushed("base/debian", "12", D1, "harbor.local:8443"),
        Pushed("base/debian", None, D2, "harbor.local:8443"),
    ]


def test_other_harbor_events_are_ignored() -> None:
    for kind in ("PULL_ARTIFACT", "DELETE_ARTIFACT", "SCANNING_COMPLETED"):
        body = harbor(kind, {"digest": D1, "tag": "12", "resource_url": "base/debian:12"})
        assert parse_notification("application/json", body) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (EVENTS, b"{not json"),
        (EVENTS, b"\xff\xfe"),
        (EVENTS, b"[1, 2]"),
        (EVENTS, b'{"events": {"action": "push"}}'),
        ("application/json", b'{"hello": "world"}'),
        ("application/json", b'{"type": "PUSH_ARTIFACT", "event_data": {}}'),
        ("application/json", b'{"type": "PUSH_ARTIFACT", "event_data": {"resources": [1]}}'),
    ],
)
def test_malformed_bodies_are_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(BadNotification):
        parse_notification(content_type, body)


def test_pushed_reads_like_a_reference() -> None:
    assert (
        str(Pushed("base/debian", "12", D1, "127.0.0.1:5000"))
        == f"127.0.0.1:5000/base/debian:12@{D1}"
    )
    assert str(Pushed("base/debian", None, D1)) == f"base/debian@{D1}"


# -- authentication --------------------------------------------------------------------


def test_the_secret_is_accepted_bearer_or_bare() -> None:
    assert authorized(f"Bearer {SECRET}", SECRET)
    assert authorized(f"bearer  {SECRET}", SECRET)
    assert authorized(SECRET, SECRET)  # Harbor's auth header, as configured
    assert not authorized(None, SECRET)
    assert not authorized("", SECRET)
    assert not authorized("Bearer wrong", SECRET)
    assert not authorized(f"Basic {SECRET}", SECRET)
    assert not authorized(f"Bearer {SECRET}x", SECRET)


def test_the_secret_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(f"{SECRET}\n")
    assert read_secret(path) == SECRET
    path.write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        read_secret(path)
    with pytest.raises(InputError, match="cannot read"):
        read_secret(tmp_path / "missing")


def test_listen_addresses_are_host_and_port() -> None:
    assert parse_addr("127.0.0.1:8765") == ("127.0.0.1", 8765)
    for bad in ("8765", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(InputError):
            parse_addr(bad)


# -- the receiver, over loopback HTTP ----------------------------------------------------


class Recorder:
    """A callback that records pushes and lets a test wait for them."""

    def __init__(self, delay: float = 0.0) -> None:
        self.pushes: list[Pushed] = []
        self.delay = delay
        self.overlaps = 0
        self._busy = False
        self._changed = threading.Condition()

    def __call__(self, push: Pushed) -> None:
        if self._busy:
            self.overlaps += 1
        self._busy = True
        time.sleep(self.delay)
        if push.tag == "boom":
            self._busy = False
            raise RuntimeError("the cascade failed")
        with self._changed:
            self.pushes.append(push)
            self._changed.notify_all()
        self._busy = False

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Pushed]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.pushes) >= count, timeout)
            return list(self.pushes)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def receiver(recorder: Recorder) -> Iterator[Receiver]:
    with Receiver("127.0.0.1:0", SECRET, recorder) as running:
        yield running


def post(
    receiver: Receiver,
    body: bytes,
    *,
    content_type: str = EVENTS,
    auth: str | None = f"Bearer {SECRET}",
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if auth is not None:
        headers["Authorization"] = auth
    return httpx.post(receiver.url, content=body, headers=headers, trust_env=False)


def test_a_push_notification_reaches_the_callback(receiver: Receiver, recorder: Recorder) -> None:
    response = post(receiver, envelope(event("push", OCI_MANIFEST, D1, "12")))

    assert response.status_code == 200
    assert response.json() == {"accepted": 1}
    assert recorder.wait_for(1) == [Pushed("base/debian", "12", D1, "127.0.0.1:5000")]


def test_harbor_s_bare_auth_header_is_accepted(receiver: Receiver, recorder: Recorder) -> None:
    body = harbor(
        "PUSH_ARTIFACT", {"digest": D1, "tag": "12", "resource_url": "h.local/base/debian:12"}
    )

    response = post(receiver, body, content_type="application/json", auth=SECRET)

    assert response.status_code == 200
    assert recorder.wait_for(1) == [Pushed("base/debian", "12", D1, "h.local")]


@pytest.mark.parametrize("auth", [None, "Bearer nope", "nope"])
def test_a_bad_secret_is_refused(receiver: Receiver, recorder: Recorder, auth: str | None) -> None:
    response = post(receiver, envelope(event("push", OCI_MANIFEST, D1, "12")), auth=auth)

    assert response.status_code == 401
    time.sleep(0.1)
    assert recorder.pushes == []


def test_malformed_json_and_wrong_content_types_are_refused(receiver: Receiver) -> None:
    assert post(receiver, b"{oops").status_code == 400
    assert post(receiver, b"{}", content_type="text/plain").status_code == 415
    assert post(receiver, b"{}", content_type="application/xml").status_code == 415


def test_an_oversized_body_is_refused_before_it_is_read(receiver: Receiver) -> None:
    host, port = parse_addr(receiver.address)
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(
            f"POST / HTTP/1.1\r\nHost: {receiver.address}\r\n"
            f"Authorization: Bearer {SECRET}\r\nContent-Type: {EVENTS}\r\n"
            f"Content-Length: {2 << 20}\r\n\r\n".encode()
        )
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413 ")


def test_other_methods_and_health(receiver: Receiver) -> None:
    assert httpx.get(f"{receiver.url}healthz", trust_env=False).json() == {"status": "ok"}
    assert httpx.get(receiver.url, trust_env=False).status_code == 405


def test_identical_pushes_within_the_window_are_passed_on_once(recorder: Recorder) -> None:
    now = [100.0]
    with Receiver("127.0.0.1:0", SECRET, recorder, dedup_window=5, clock=lambda: now[0]) as rx:
        post(rx, envelope(event("push", OCI_MANIFEST, D1, "12")))
        post(rx, envelope(event("push", OCI_MANIFEST, D1, "12", number=1)))  # same push again
        post(rx, envelope(event("push", OCI_MANIFEST, D2, "12")))
        now[0] += 6
        post(rx, envelope(event("push", OCI_MANIFEST, D1, "12", number=2)))  # a new push of D1
        pushes = recorder.wait_for(3)
        time.sleep(0.1)

    assert [p.digest for p in recorder.pushes] == [D1, D2, D1]
    assert len(pushes) == 3


def test_a_registry_s_late_retry_is_passed_on_once(recorder: Recorder) -> None:
    """distribution retries the same events after its backoff (10 s as `socle up` configures)."""
    now = [100.0]
    with Receiver("127.0.0.1:0", SECRET, recorder, dedup_window=5, clock=lambda: now[0]) as rx:
        delivery = envelope(event("push", OCI_MANIFEST, D1, "12"), event("pull", OCI_MANIFEST, D2))
        assert post(rx, delivery).status_code == 200
        now[0] += 5 + 10 + 1  # the registry's timeout, its backoff, then the retry
        retry = post(rx, delivery)
        post(rx, envelope(event("push", OCI_MANIFEST, D3, "13")))
        recorder.wait_for(2)
        time.sleep(0.1)

    assert retry.status_code == 200, "a retry is answered like the first delivery"
    assert [p.digest for p in recorder.pushes] == [D1, D3]


def test_event_ids_are_remembered_up_to_a_count(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("socle.watch.receiver.RECENT_EVENTS", 2)
    now = [100.0]
    first = envelope(event("push", OCI_MANIFEST, D1, "12"))
    with Receiver("127.0.0.1:0", SECRET, recorder, dedup_window=1, clock=lambda: now[0]) as rx:
        for body in (first, envelope(event("push", OCI_MANIFEST, D2, "12"))):
            post(rx, body)
        post(rx, envelope(event("push", OCI_MANIFEST, D3, "12")))  # D1's id is forgotten
        now[0] += 2
        post(rx, first)
        recorder.wait_for(4)
        time.sleep(0.1)

    assert [p.digest for p in recorder.pushes] == [D1, D2, D3, D1]


def test_the_answer_does_not_wait_for_the_callback() -> None:
    release = threading.Event()
    handled: list[Pushed] = []

    def blocked(push: Pushed) -> None:
        release.wait(10)
        handled.append(push)

    with Receiver("127.0.0.1:0", SECRET, blocked) as rx:
        response = post(rx, envelope(event("push", OCI_MANIFEST, D1, "12")))
        assert response.status_code == 200
        assert handled == []
        release.set()
        deadline = time.monotonic() + 5
        while not handled and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(handled) == 1


def test_callbacks_run_one_at_a_time_and_survive_failures() -> None:
    slow = Recorder(delay=0.02)
    with Receiver("127.0.0.1:0", SECRET, slow) as rx:
        tags = [event("push", OCI_MANIFEST, f"sha256:{i:064x}", f"t{i}") for i in range(4)]
        post(rx, envelope(*tags))
        post(rx, envelope(event("push", OCI_MANIFEST, D1, "boom")))
        post(rx, envelope(event("push", OCI_MANIFEST, D2, "after")))
        pushes = slow.wait_for(5)

    assert [p.tag for p in pushes] == ["t0", "t1", "t2", "t3", "after"]
    assert slow.overlaps == 0


def test_stop_is_safe_twice_and_without_start(recorder: Recorder) -> None:
    idle = Receiver("127.0.0.1:0", SECRET, recorder)
    idle.stop()
    idle.stop()
    running = Receiver("127.0.0.1:0", SECRET, recorder)
    running.start()
    running.stop()
    running.stop()
    with pytest.raises(SocleError):
        running.start()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{running.url}healthz", trust_env=False, timeout=1)


def test_a_busy_address_is_a_clear_error(receiver: Receiver, recorder: Recorder) -> None:
    with pytest.raises(SocleError, match="cannot listen on"):
        Receiver(receiver.address, SECRET, recorder)


def test_an_empty_secret_is_refused(recorder: Recorder) -> None:
    with pytest.raises(InputError):
        Receiver("127.0.0.1:0", "", recorder)


# -- polling ---------------------------------------------------------------------------


class FakeHeads:
    """Answers HEADs from a dict of tag -> digest; an exception value is raised."""

    def __init__(self) -> None:
        self.digests: dict[str, str | Exception | None] = {}
        self.calls = 0

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        self.calls += 1
        found = self.digests.get(str(ref))
        if isinstance(found, Exception):
            raise found
        return Descriptor(OCI_MANIFEST, found, 1) if found else None


REF = Reference.parse("127.0.0.1:5000/base/debian:12")


def test_the_first_answer_is_a_baseline_and_a_change_is_a_push() -> None:
    heads = FakeHeads()
    heads.digests[str(REF)] = D1
    poller = Poller(heads, [REF, REF], interval=1)

    assert poller.poll_once() == []
    assert poller.poll_once() == []
    heads.digests[str(REF)] = D2
    assert poller.poll_once() == [Pushed("base/debian", "12", D2, "127.0.0.1:5000")]
    assert poller.poll_once() == []
    assert heads.calls == 4, "a reference listed twice is asked once"


def test_an_outage_is_not_a_change_and_a_new_tag_is() -> None:
    heads = FakeHeads()
    poller = Poller(heads, [REF], interval=1)
    assert poller.poll_once() == []  # no such tag yet: the baseline is "absent"
    heads.digests[str(REF)] = D1
    assert [p.digest for p in poller.poll_once()] == [D1]
    heads.digests[str(REF)] = RegistryUnreachable("http://127.0.0.1:5000/v2/", "refused")
    assert poller.poll_once() == []
    heads.digests[str(REF)] = D1
    assert poller.poll_once() == []
    heads.digests[str(REF)] = None  # deleted: nothing to rebuild from
    assert poller.poll_once() == []


def test_run_is_bounded_and_survives_a_failing_callback() -> None:
    heads = FakeHeads()
    heads.digests[str(REF)] = D1
    poller = Poller(heads, [REF], interval=0.01)
    seen: list[Pushed] = []

    def on_push(push: Pushed) -> None:
        seen.append(push)
        raise RuntimeError("cascade failed")

    poller.run(on_push, rounds=2)
    heads.digests[str(REF)] = D2
    poller.run(on_push, rounds=2)

    assert [p.digest for p in seen] == [D2]
    assert heads.calls == 4


def test_a_started_poller_stops_promptly() -> None:
    poller = Poller(FakeHeads(), [REF], interval=60)
    poller.start(lambda push: None)
    started = time.monotonic()
    poller.stop()
    assert time.monotonic() - started < 1


def test_only_tags_can_be_watched() -> None:
    with pytest.raises(InputError, match="a digest does not"):
        Poller(FakeHeads(), [REF.with_digest(D1)], interval=1)
    with pytest.raises(InputError, match="positive"):
        Poller(FakeHeads(), [REF], interval=0)
