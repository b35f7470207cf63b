"""Loading the tracker data: files, file:// URLs, and http(s) URLs through the disk cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from socle.scan import ScanError
from socle.scan.tracker import default_cache_dir, load_tracker

URL = "http://127.0.0.1:9/tracker/data/json"
DATA = {"perl": {"CVE-2023-31484": {"releases": {"bookworm": {"status": "open"}}}}}
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


class Server:
    """A scripted tracker: each request gets the next answer; requests are recorded."""

    def __init__(self, *answers: Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=DATA, headers={"ETag": '"v1"'})


def not_modified(request: httpx.Request) -> httpx.Response:
    return httpx.Response(304)


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def broken(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"<html>maintenance</html>")


def test_a_path_is_read_and_dated_by_its_mtime(tmp_path: Path) -> None:
    path = tmp_path / "tracker.json"
    path.write_text(json.dumps(DATA))
    snapshot = load_tracker(str(path))
    assert snapshot.data == DATA
    assert snapshot.fetched == datetime.fromtimestamp(path.stat().st_mtime, UTC)


def test_a_missing_file_says_how_to_give_the_data(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="cannot read the tracker data") as caught:
        load_tracker(str(tmp_path / "missing.json"))
    assert caught.value.hint and "--db" in caught.value.hint


def test_a_file_that_is_not_tracker_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("[1, 2]")
    with pytest.raises(ScanError, match="not tracker data"):
        load_tracker(path.as_uri())


def test_a_url_is_fetched_once_then_served_from_the_cache(tmp_path: Path) -> None:
    server = Server(ok)
    first = load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: T0)
    again = load_tracker(
        URL, cache_dir=tmp_path, client=server.client(), now=lambda: T0 + timedelta(hours=1)
    )
    assert first.data == again.data == DATA
    assert first.fetched == again.fetched == T0
    assert len(server.requests) == 1
    assert list((tmp_path / "debian-tracker").glob("*.json"))


def test_an_old_cache_is_revalidated_with_its_etag(tmp_path: Path) -> None:
    server = Server(ok, not_modified)
    load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: T0)
    later = T0 + timedelta(days=1)
    snapshot = load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: later)
    assert server.requests[1].headers["If-None-Match"] == '"v1"'
    assert snapshot.fetched == later
    assert snapshot.data == DATA and snapshot.warnings == ()


def test_a_stale_cache_is_used_with_a_warning_when_the_url_fails(tmp_path: Path) -> None:
    server = Server(ok, unreachable)
    load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: T0)
    later = T0 + timedelta(days=3)
    snapshot = load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: later)
    assert snapshot.data == DATA
    assert snapshot.fetched == T0
    assert len(snapshot.warnings) == 1
    assert "could not refresh" in snapshot.warnings[0]
    assert "2024-03-01 12:00 UTC" in snapshot.warnings[0]


def test_a_broken_download_is_not_cached_and_the_old_data_stays(tmp_path: Path) -> None:
    server = Server(ok, broken)
    load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: T0)
    later = T0 + timedelta(days=1)
    snapshot = load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: later)
    assert snapshot.data == DATA and len(snapshot.warnings) == 1
    assert [p.name for p in (tmp_path / "debian-tracker").iterdir() if ".tmp" in p.name] == []


def test_no_cache_and_no_answer_is_an_error(tmp_path: Path) -> None:
    server = Server(unreachable)
    with pytest.raises(ScanError, match="cannot fetch the tracker data"):
        load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: T0)


def test_an_http_error_without_cache_names_the_status(tmp_path: Path) -> None:
    server = Server(lambda request: httpx.Response(503))
    with pytest.raises(ScanError, match="HTTP 503"):
        load_tracker(URL, cache_dir=tmp_path, client=server.client(), now=lambda: T0)


def test_the_cache_lives_under_xdg_cache_home(tmp_path: Path) -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "socle"
    assert default_cache_dir({}).name == "socle"
