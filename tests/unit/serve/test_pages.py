"""The console's pages over a SQLite history with fake states (no registry)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from socle.history.store import HistoryStore, OutcomeRecord, StateView
from socle.serve.app import create_app
from socle.serve.console import Console
from socle.serve.settings import ConsoleSettings

DIGEST = "sha256:" + "a" * 64
BASE = "sha256:" + "b" * 64
NOW = datetime.now(UTC)


def state(
    key: str, status: str, *, parent: str | None = None, level: int = 0, **kw: object
) -> StateView:
    image = key.split(":")[0]
    values: dict[str, object] = {
        "key": key,
        "image": image,
        "repository": f"t/{image}",
        "parent": parent,
        "level": level,
        "tags": (key.split(":")[1], "latest"),
        "digest": DIGEST,
        "base_name": None,
        "base_digest": None,
        "created": NOW - timedelta(hours=3),
        "status": status,
        "reasons": (),
    }
    values.update(kw)
    return StateView(**values)  # type: ignore[arg-type]


STATES = [
    state("base:1", "current"),
    state(
        "tool:1.0-base1",
        "stale",
        parent="base:1",
        level=1,
        reasons=("Dockerfile changed",),
        base_name="r/t/base:1",
        base_digest=BASE,
    ),
    state("tool:1.1-base1", "vulnerable", parent="base:1", level=1, reasons=("vulnerable: CVE-1",)),
    state("leaf:2-tool1.1-base1", "missing", parent="tool:1.1-base1", level=2, digest=None),
]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("registry: 127.0.0.1:1\nnamespace: t\nimages: {}\n")
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}")
    console = Console(ConsoleSettings(catalog=catalog), store)
    store.replace_states(console.catalog_key, STATES)
    yield console
    store.close()


@pytest.fixture
def client(console: Console) -> Iterator[TestClient]:
    with TestClient(create_app(console, start=False)) as client:
        yield client


def record_run(store: HistoryStore, *, finish: bool = True) -> int:
    recorder = store.start_run(
        trigger="cli",
        catalog="c",
        registry="r",
        reasons=[{"key": "tool:1.0-base1", "reasons": ["Dockerfile changed"]}],
        planned=1,
    )
    recorder.record("started", "tool:1.0-base1", "building")
    recorder.record("built", "tool:1.0-base1", "pushed", DIGEST, 4.2)
    if finish:
        recorder.finish(
            [
                OutcomeRecord(
                    "tool:1.0-base1",
                    "built",
                    DIGEST,
                    4.2,
                    reasons=["Dockerfile changed"],
                    details={
                        "tests": [
                            {"name": "shell", "kind": "command", "outcome": "passed", "message": ""}
                        ],
                        "packages": 17,
                        "scan": {
                            "scanner": "debian",
                            "severities": {"high": 2, "low": 5},
                            "findings": [],
                            "allowlisted": [
                                {
                                    "cve": "CVE-2024-1",
                                    "package": "perl",
                                    "reason": "unused",
                                    "owner": "ops",
                                    "expires": "2099-01-01",
                                }
                            ],
                            "blocking": [],
                        },
                    },
                )
            ],
            status="succeeded",
            summary="1 built",
        )
    return recorder.run_id


def test_healthz_says_ok(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.text == "ok"


def test_the_overview_lists_every_variant_with_status_reasons_age_and_digest(
    client: TestClient,
) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    html = answer.text
    rows = re.findall(r'<tr data-key="([^"]+)" data-status="([^"]+)"', html)
    assert rows == [(s.key, s.status) for s in sorted(STATES, key=lambda s: (s.level, s.key))]
    assert "Dockerfile changed" in html
    assert 'href="/images/tool:1.0-base1"' in html
    assert "sha256:aaaaaaaaaaaa" in html
    assert "3 h" in html  # created three hours ago
    assert "<script>" not in html and "style=" not in html  # the CSP forbids both


def test_an_empty_overview_says_the_registry_was_not_read_yet(
    console: Console, client: TestClient
) -> None:
    console.store.replace_states(console.catalog_key, [])
    assert "has not read the registry" in client.get("/").text


def test_the_lineage_has_one_linked_node_per_variant_coloured_by_status(
    client: TestClient,
) -> None:
    svg = client.get("/lineage.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    nodes = re.findall(
        r'<a href="([^"]+)" class="node" data-key="([^"]+)" data-status="([^"]+)"', svg.text
    )
    assert sorted(k for _, k, _ in nodes) == sorted(s.key for s in STATES)
    assert all(href == f"/images/{key}" for href, key, _ in nodes)
    assert svg.text.count("<path ") == 3  # one edge per child
    assert 'fill="#c4320a"' in svg.text  # vulnerable's colour
    page = client.get("/lineage").text
    assert page.count('class="node"') == len(STATES)


def test_the_image_page_shows_tags_digest_base_reasons_gates_and_history(
    console: Console, client: TestClient
) -> None:
    run_id = record_run(console.store)
    html = client.get("/images/tool:1.0-base1").text
    assert DIGEST in html
    assert "t/tool:1.0-base1</code> (exact)" in html
    assert BASE in html and "r/t/base:1" in html
    assert 'href="/images/base:1"' in html  # the parent
    assert "Dockerfile changed" in html
    assert "shell" in html and "passed" in html
    assert "17 packages" in html
    assert "CVE-2024-1" in html and "2099-01-01" in html
    assert f'href="/runs/{run_id}"' in html
    assert "no public key to verify with" in html  # no --key: signatures unknown


def test_an_unknown_image_is_a_404_page(client: TestClient) -> None:
    answer = client.get("/images/nope:1")
    assert answer.status_code == 404
    assert "no image nope:1" in answer.text


def test_the_sbom_without_a_verify_key_is_a_404_saying_why(client: TestClient) -> None:
    answer = client.get("/images/base:1/sbom")
    assert answer.status_code == 404
    assert "no verify key" in answer.text
    missing = client.get("/images/leaf:2-tool1.1-base1/sbom")
    assert missing.status_code == 404 and "not published" in missing.text


def test_runs_show_trigger_reasons_durations_and_outcomes_paginated(
    console: Console, client: TestClient
) -> None:
    ids = [record_run(console.store) for _ in range(30)]
    first = client.get("/runs").text
    assert "30 runs recorded" in first and "page 1 of 2" in first
    assert f'href="/runs/{ids[-1]}"' in first and f'href="/runs/{ids[0]}"' not in first
    assert "Dockerfile changed" in first and "4.2 s" in first and "cli" in first
    second = client.get("/runs?page=2").text
    assert f'href="/runs/{ids[0]}"' in second


def test_a_run_page_shows_outcomes_and_log_tail(console: Console, client: TestClient) -> None:
    run_id = record_run(console.store)
    html = client.get(f"/runs/{run_id}").text
    assert "succeeded" in html and "1 built" in html
    assert "built tool:1.0-base1 pushed" in html  # the log tail
    assert "live.js" not in html  # a finished run is not live
    assert client.get("/runs/999").status_code == 404


def test_a_running_run_page_loads_the_live_script(console: Console, client: TestClient) -> None:
    run_id = record_run(console.store, finish=False)
    html = client.get(f"/runs/{run_id}").text
    assert "/static/live.js" in html
    assert f'data-events="/runs/{run_id}/events?after=' in html
    assert client.get("/static/live.js").status_code == 200


def parse_sse(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.split("\n\n"):
        name = data = ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if name:
            events.append((name, data))
    return events


def test_events_stream_what_is_recorded_then_end_when_the_run_finishes(
    console: Console, client: TestClient
) -> None:
    store = console.store
    recorder = store.start_run(trigger="cli", catalog="c", registry="r")
    recorder.record("started", "a:1", "first")

    def later() -> None:
        time.sleep(0.8)
        recorder.record("built", "a:1", "second", DIGEST, 1.0)
        time.sleep(0.5)
        recorder.finish([], status="succeeded", summary="1 built")

    writer = threading.Thread(target=later)
    writer.start()
    answer = client.get(f"/runs/{recorder.run_id}/events")
    writer.join()
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(answer.text)
    assert [name for name, _ in events] == ["progress", "progress", "end"]
    assert '"second"' in events[1][1] and '"succeeded"' in events[2][1]
    # Resuming after the first event sends only what followed.
    resumed = parse_sse(client.get(f"/runs/{recorder.run_id}/events?after=1").text)
    assert [name for name, _ in resumed] == ["progress", "end"]
    assert client.get("/runs/999/events").status_code == 404


def test_the_run_page_and_the_runs_list_show_why_and_who(
    console: Console, client: TestClient
) -> None:
    recorder = console.store.start_run(
        trigger="serve",
        catalog="c",
        registry="r",
        user="ana",
        reason="rebuild asked by ana in the console",
    )
    recorder.finish([], status="succeeded", summary="nothing to do")
    hook = console.store.start_run(
        trigger="webhook", catalog="c", registry="r", reason="push of 127.0.0.1:5000/t/base:1"
    )
    hook.finish([], status="succeeded", summary="nothing to do")
    page = client.get(f"/runs/{recorder.run_id}").text
    assert re.search(r'id="run-reason">rebuild asked by ana in the console<', page)
    assert re.search(r'id="run-user">ana<', page)
    listed = client.get("/runs").text
    rows = dict(re.findall(r'<tr data-run="(\d+)">(.*?)</tr>', listed, re.S))
    assert "rebuild asked by ana in the console" in rows[str(recorder.run_id)]
    assert "(ana)" in rows[str(recorder.run_id)]
    assert "push of 127.0.0.1:5000/t/base:1" in rows[str(hook.run_id)]


def shown(html: str) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', html)


def test_the_overview_filters_by_status_and_by_image_name(client: TestClient) -> None:
    stale = client.get("/?status=stale").text
    assert shown(stale) == ["tool:1.0-base1"]
    assert "1 of 4 shown" in stale
    assert shown(client.get("/?image=tool").text) == ["tool:1.0-base1", "tool:1.1-base1"]
    assert shown(client.get("/?image=TOOL&status=vulnerable").text) == ["tool:1.1-base1"]
    nothing = client.get("/?status=failed").text
    assert shown(nothing) == [] and "No variant is failed" in nothing
    everything = client.get("/").text
    assert len(shown(everything)) == 4
    # plain links and a GET form: no script on the page
    assert 'href="/?status=stale"' in everything and 'href="/?image=tool"' in everything
    assert '<form method="get" action="/"' in everything and "<script" not in everything
    # the counts of an image's filter link to that image's statuses
    assert 'href="/?status=vulnerable&amp;image=tool"' in client.get("/?image=tool").text


def test_a_read_only_console_offers_no_write_and_no_login(console: Console) -> None:
    record_run(console.store)
    with TestClient(create_app(console, start=False)) as client:
        for path in ("/", "/runs", "/images/tool:1.0-base1"):
            html = client.get(path).text
            assert "/actions/" not in html, path
            assert "to rebuild, promote or prune" not in html, path
            assert 'href="/auth/login"' not in html, path
