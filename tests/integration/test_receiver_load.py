"""The webhook receiver under a burst: 1,000 notifications on loopback, bounded in time.

The receiver runs in a process of its own (so its memory is its own), started
the way `socle watch --listen` starts it; 16 client threads play a registry
that retries (every push is delivered three times, the same event each time)
mixed with bad senders: a wrong secret, an oversized body, malformed JSON.
Run with `-s` to see the figures.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from socle.watch.notifications import DISTRIBUTION_EVENTS
from socle.watch.receiver import MAX_BODY

pytestmark = pytest.mark.integration

SECRET = "load-test-secret-7d1c"
DISTINCT = 250  # pushes of distinct digests, each delivered 3 times: 750 requests
COPIES = 3
NOT_PUSHES = 50  # pulls and blob uploads only: accepted, no cascade
WRONG_SECRET, MALFORMED, OVERSIZED = 100, 50, 50
TOTAL = DISTINCT * COPIES + NOT_PUSHES + WRONG_SECRET + MALFORMED + OVERSIZED
SENDERS = 16
DEADLINE = 60.0  # seconds for the whole burst; each request has its own timeout too
# Shorter than the burst, so only the event's identity can tell a retry from a new push:
# a registry retries after its backoff (10 s in the config `socle up` writes), whatever
# the receiver's window for identical content.
WINDOW = 0.2
PEAK_TRACED_LIMIT = 32 << 20  # bytes the receiver process may allocate at its peak
RSS_GROWTH_LIMIT = 64 << 20

# The receiver's process: records each cascade (the callback), reports memory at the end.
RECEIVER = """
import json, sys, threading, time, tracemalloc
from socle.watch.receiver import Receiver

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no {field} in /proc/self/status")

cascades, changed = [], threading.Condition()
def on_push(push):
    with changed:
        cascades.append(str(push))
        changed.notify_all()

tracemalloc.start()
with Receiver("127.0.0.1:0", sys.argv[1], on_push, dedup_window=float(sys.argv[2])) as receiver:
    rss_before = rss("VmRSS")
    tracemalloc.reset_peak()
    print(receiver.url, flush=True)
    expected = int(sys.stdin.readline())
    with changed:
        changed.wait_for(lambda: len(cascades) >= expected, timeout=30)
    time.sleep(0.5)  # a duplicate cascade would show up here
    current, peak = tracemalloc.get_traced_memory()
    report = {"cascades": cascades, "traced_peak": peak, "traced_now": current,
              "rss_before": rss_before, "rss_peak": rss("VmHWM"), "rss_after": rss("VmRSS")}
print(json.dumps(report), flush=True)
"""


@dataclass(frozen=True)
class Request:
    kind: str  # push, not-push, wrong-secret, malformed, oversized
    body: bytes
    digest: str | None = None


def push_event(index: int, digest: str, action: str = "push", media: str | None = None) -> Any:
    """A distribution 2.8 event (fields trimmed); its id is what a retry repeats."""
    return {
        "id": f"ev-{index:08d}",
        "timestamp": "2026-12-01T00:00:00Z",
        "action": action,
        "target": {
            "mediaType": media or "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": 528,
            "repository": "load/app",
            "tag": f"t{index}",
        },
        "request": {"host": "127.0.0.1:5000", "method": "PUT"},
    }


def burst() -> list[Request]:
    """Every request of the burst, shuffled (fixed seed: the same burst every run)."""
    requests: list[Request] = []
    for i in range(DISTINCT):
        digest = f"sha256:{i:064x}"
        body = json.dumps({"events": [push_event(i, digest)]}).encode()
        requests += [Request("push", body, digest)] * COPIES
    for i in range(NOT_PUSHES):
        digest = f"sha256:{DISTINCT + i:064x}"
        events = [
            push_event(10_000 + i, digest, action="pull"),
            push_event(20_000 + i, digest, media="application/vnd.oci.image.layer.v1.tar+gzip"),
        ]
        requests.append(Request("not-push", json.dumps({"events": events}).encode()))
    for i in range(WRONG_SECRET):
        digest = f"sha256:{0xE0000 + i:064x}"  # must never cascade
        body = json.dumps({"events": [push_event(30_000 + i, digest)]}).encode()
        requests.append(Request("wrong-secret", body, digest))
    requests += [Request("malformed", b'{"events": [{"action": "push",')] * MALFORMED
    requests += [Request("oversized", b"")] * OVERSIZED
    random.Random(9).shuffle(requests)
    assert len(requests) == TOTAL == 1000
    return requests


class Sender:
    """One registry-like client per thread: keep-alive, retries a 503 as registries do."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.local = threading.local()
        self.busy_retries = 0

    def client(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(trust_env=False, timeout=10)
        return self.local.client  # type: ignore[no-any-return]

    def send(self, request: Request) -> int:
        if request.kind == "oversized":
            return self.oversized()
        secret = "not-the-secret" if request.kind == "wrong-secret" else SECRET
        headers = {"Content-Type": DISTRIBUTION_EVENTS[0], "Authorization": f"Bearer {secret}"}
        for _ in range(50):
            status = self.client().post(self.url, content=request.body, headers=headers)
            if status.status_code != 503:
                return status.status_code
            self.busy_retries += 1
            time.sleep(0.05)
        return 503

    def oversized(self) -> int:
        """Headers announcing a body over the limit: the answer must come before the body."""
        host, port = httpx.URL(self.url).host, httpx.URL(self.url).port
        assert port is not None
        with socket.create_connection((host, port), timeout=10) as conn:
            conn.sendall(
                f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {SECRET}\r\nContent-Type: {DISTRIBUTION_EVENTS[0]}\r\n"
                f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
            )
            return int(conn.recv(4096).split(b" ", 2)[1])


@pytest.fixture
def receiver_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, SECRET, str(WINDOW)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        pytest.fail(f"the receiver did not start: {proc.communicate()[1]}")
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_burst_of_1000_notifications_cascades_once_per_pushed_digest(
    receiver_process: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = receiver_process
    requests = burst()
    sender = Sender(url)
    started = time.monotonic()
    with ThreadPoolExecutor(SENDERS) as pool:
        statuses = list(pool.map(sender.send, requests, timeout=DEADLINE))
    seconds = time.monotonic() - started
    out, err = proc.communicate(f"{DISTINCT}\n", timeout=60)
    report = json.loads(out.strip().splitlines()[-1])

    answers = Counter((r.kind, s) for r, s in zip(requests, statuses, strict=True))
    assert answers == {
        ("push", 200): DISTINCT * COPIES,
        ("not-push", 200): NOT_PUSHES,
        ("wrong-secret", 401): WRONG_SECRET,
        ("malformed", 400): MALFORMED,
        ("oversized", 413): OVERSIZED,
    }, err
    cascades = Counter(c.rsplit("@", 1)[1] for c in report["cascades"])
    pushed = {r.digest for r in requests if r.kind == "push"}
    assert cascades == dict.fromkeys(pushed, 1), "one cascade per pushed digest, none lost"

    peak, growth = report["traced_peak"], report["rss_peak"] - report["rss_before"]
    print(
        f"\nreceiver burst: {TOTAL} requests from {SENDERS} clients in {seconds:.2f} s "
        f"({TOTAL / seconds:.0f} requests/s, {sender.busy_retries} retries after 503); "
        f"{len(report['cascades'])} cascades; traced peak {peak / 2**20:.1f} MiB, "
        f"still traced {report['traced_now'] / 2**20:.1f} MiB, "
        f"RSS {report['rss_before'] / 2**20:.1f} -> peak {report['rss_peak'] / 2**20:.1f} "
        f"-> {report['rss_after'] / 2**20:.1f} MiB"
    )
    assert seconds < DEADLINE
    assert peak < PEAK_TRACED_LIMIT, f"traced peak {peak} bytes"
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth} bytes"
