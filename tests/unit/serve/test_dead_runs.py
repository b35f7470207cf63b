"""A run whose process was killed: the console closes it and its live stream ends."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from socle.serve import pages
from socle.serve.console import Console
from tests.unit.history.test_dead_runs import killed_run
from tests.unit.serve.test_pages import console  # noqa: F401  (the fixture)


def test_the_live_stream_of_a_killed_run_ends_as_interrupted(
    console: Console,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id = killed_run(console.store.url)
    monkeypatch.setattr(pages, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(pages, "KEEPALIVE_SECONDS", 0.2)

    async def read() -> list[str]:
        return [chunk async for chunk in pages.Pages(console)._stream(run_id, 0)]

    chunks = asyncio.run(asyncio.wait_for(read(), timeout=15))  # forever without the check
    assert chunks[-1].startswith("event: end\n")
    end = json.loads(chunks[-1].split("data: ", 1)[1])
    assert end["status"] == "interrupted"
    assert "ended without finishing the run" in end["summary"]
    assert any('"building"' in c for c in chunks)  # what it recorded before it died


def test_the_refresh_loop_closes_killed_runs(console: Console) -> None:  # noqa: F811
    run_id = killed_run(console.store.url)
    console.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            run = console.store.run(run_id)
            if run is not None and run.status != "running":
                break
            time.sleep(0.1)
    finally:
        console.stop()
    assert run is not None and run.status == "interrupted"


def test_the_page_of_a_closed_run_is_no_longer_live(console: Console) -> None:  # noqa: F811
    from starlette.testclient import TestClient

    from socle.serve.app import create_app

    run_id = killed_run(console.store.url)
    console.store.mark_dead_runs()
    with TestClient(create_app(console, start=False)) as client:
        html = client.get(f"/runs/{run_id}").text
    assert "live.js" not in html
    assert "interrupted" in html and "ended without finishing the run" in html
