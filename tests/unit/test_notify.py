from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from socle.errors import InputError
from socle.events import Event, Status
from socle.notify import JsonLines, RunCollector, RunReport, WebhookNotifier, tee

NOON = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
URL = "https://127.0.0.1:9/hooks/T000/B000/secret-path"


# -- JSON lines ---------------------------------------------------------------------


def test_each_event_is_one_json_line() -> None:
    out = io.StringIO()
    observer = JsonLines(out, clock=lambda: NOON)

    observer(Event(Status.BUILDING, "debian-12", "base image changed"))
    observer(Event(Status.BUILT, "debian-12", digest="sha256:" + "a" * 64, seconds=31.5))
    observer(Event(Status.FAILED, None, "2 image(s) not published"))

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    common = {
        "@timestamp": "2026-01-02T12:00:00.000Z",
        "ecs.version": "8.11.0",
        "log.logger": "socle",
    }
    assert lines == [
        {
            **common,
            "log.level": "info",
            "message": "base image changed",
            "event.action": "building",
            "socle.key": "debian-12",
        },
        {
            **common,
            "log.level": "info",
            "event.action": "built",
            "event.outcome": "success",
            "socle.key": "debian-12",
            "socle.digest": "sha256:" + "a" * 64,
            "socle.seconds": 31.5,
        },
        {
            **common,
            "log.level": "error",
            "message": "2 image(s) not published",
            "event.action": "failed",
            "event.outcome": "failure",
        },
    ]
    assert list(lines[0])[:3] == ["@timestamp", "log.level", "message"], "ecs-logging's order"


def test_lines_from_parallel_builds_do_not_interleave() -> None:
    out = io.StringIO()
    observer = JsonLines(out)

    def emit(worker: int) -> None:
        for i in range(200):
            observer(Event(Status.PUSHING, f"image-{worker}", "x" * (i % 50)))

    threads = [threading.Thread(target=emit, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = out.getvalue().splitlines()
    assert len(lines) == 800
    assert all(json.loads(line)["event.action"] == "pushing" for line in lines)


def test_a_broken_stream_is_a_warning_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    out.close()
    observer = JsonLines(out)

    observer(Event(Status.BUILT, "a"))
    observer(Event(Status.BUILT, "b"))

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "JSON event log stopped" in warnings[0].getMessage()


def test_tee_passes_every_event_to_each_observer() -> None:
    first: list[Event] = []
    second: list[Event] = []
    both = tee(first.append, second.append)
    event = Event(Status.QUEUED, "a")

    both(event)

    assert first == second == [event]


# -- the run report ---------------------------------------------------------------------


@dataclass
class FakeOutcome:
    key: str
    status: Status


def test_the_report_of_outcomes_lists_built_failed_and_blocked() -> None:
    report = RunReport.of(
        [
            FakeOutcome("debian-12", Status.BUILT),
            FakeOutcome("java-17", Status.FAILED),
            FakeOutcome("app-17", Status.BLOCKED),
            FakeOutcome("python-3.12", Status.SKIPPED),
            FakeOutcome("node-20", Status.BUILT),
        ]
    )

    assert report == RunReport(("debian-12", "node-20"), ("java-17",), ("app-17",))
    assert not report.ok
    assert report.text() == (
        "socle: FAILED (2 built, 1 failed, 1 blocked)\n"
        "failed: java-17\n"
        "blocked: app-17\n"
        "built: debian-12, node-20"
    )


def test_a_quiet_run_and_a_good_run_read_well() -> None:
    assert RunReport().text() == "socle: nothing to build, every image is current"
    assert (
        RunReport(built=("a",)).text("nightly") == "nightly: 1 built, 0 failed, 0 blocked\nbuilt: a"
    )


def test_long_lists_are_cut_and_markup_is_escaped() -> None:
    names = tuple(f"img-{i}" for i in range(25))
    text = RunReport(built=names, failed=("<!channel>&",)).text()
    assert "img-19 and 5 more" in text
    assert "img-20" not in text
    assert "&lt;!channel&gt;&amp;" in text


def test_the_collector_keeps_each_image_s_last_final_status() -> None:
    collector = RunCollector()
    for event in (
        Event(Status.BUILDING, "a"),
        Event(Status.BUILT, "a"),
        Event(Status.TAGGED, "a", "12 latest"),
        Event(Status.FAILED, "b", "boom"),
        Event(Status.BLOCKED, "c", "not built: b failed"),
        Event(Status.FAILED, None, "run failed"),
    ):
        collector(event)

    assert collector.report() == RunReport(("a",), ("b",), ("c",))


# -- the webhook ----------------------------------------------------------------------


class Hook:
    """A MockTransport handler answering with the given statuses in turn."""

    def __init__(self, *statuses: int, error: bool = False) -> None:
        self.statuses = list(statuses)
        self.error = error
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error:
            raise httpx.ConnectTimeout("timed out", request=request)
        return httpx.Response(self.statuses.pop(0), text="no_service")


def notifier(hook: Hook, sleeps: list[float] | None = None) -> WebhookNotifier:
    client = httpx.Client(transport=httpx.MockTransport(hook))
    return WebhookNotifier(URL, client=client, sleep=(sleeps if sleeps is not None else []).append)


def test_the_summary_is_posted_as_slack_text() -> None:
    hook = Hook(200)
    sender = notifier(hook)
    sender(Event(Status.BUILT, "debian-12"))
    sender(Event(Status.FAILED, "java-17", "boom"))

    assert sender.finish() is True

    (request,) = hook.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "text": "socle: FAILED (1 built, 1 failed, 0 blocked)\nfailed: java-17\nbuilt: debian-12"
    }


def test_a_server_error_is_retried_once() -> None:
    hook, sleeps = Hook(503, 200), list[float]()
    assert notifier(hook, sleeps).notify(RunReport(built=("a",))) is True
    assert len(hook.requests) == 2
    assert sleeps == [2.0]


def test_a_dead_webhook_is_a_warning_never_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    hook = Hook(error=True)
    assert notifier(hook).notify(RunReport(built=("a",))) is False
    assert len(hook.requests) == 2
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    assert "https://127.0.0.1:9" in message and "ConnectTimeout" in message
    assert "secret-path" not in message, "a chat webhook's path is its secret"


def test_a_client_error_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    hook = Hook(404)
    assert notifier(hook).notify(RunReport()) is False
    assert len(hook.requests) == 1
    assert "HTTP 404 no_service" in caplog.text


def test_the_url_must_be_http() -> None:
    with pytest.raises(InputError):
        WebhookNotifier("ftp://127.0.0.1/hook")


@pytest.fixture
def chat_server() -> Iterator[tuple[str, list[bytes]]]:
    """A real loopback HTTP server standing in for a chat service."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_a_real_http_round_trip(chat_server: tuple[str, list[bytes]]) -> None:
    url, received = chat_server
    sender = WebhookNotifier(url, client=httpx.Client(trust_env=False, timeout=5))
    try:
        assert sender.notify(RunReport(built=("debian-12",))) is True
    finally:
        sender.close()
    assert [json.loads(body) for body in received] == [
        {"text": "socle: 1 built, 0 failed, 0 blocked\nbuilt: debian-12"}
    ]
