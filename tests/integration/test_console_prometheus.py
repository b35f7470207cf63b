"""A real Prometheus scrapes a real console and answers queries consistent with the history.

The history holds a real `socle build` (a busybox family published to a
registry of this test's own); the overview's row of the built image is written
from what the registry holds. Prometheus (Debian's package, started here with
its own config and storage, on loopback) scrapes the console every second.
"""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from socle.history.store import HistoryStore, StateView
from socle.process import run
from socle.serve.app import create_app
from socle.serve.console import Console
from socle.serve.metrics import BUILD_BUCKETS
from socle.serve.settings import ConsoleSettings
from tests.integration.conftest import LocalRegistry, free_port
from tests.integration.helpers import skopeo_inspect, socle
from tests.integration.images import write_busybox_layout

pytestmark = pytest.mark.integration

PROMETHEUS = Path("/usr/bin/prometheus")


def build_family(tmp_path: Path, registry: LocalRegistry, db: str) -> Path:
    """A real build: busybox `os` (upstream) and `tool` and `leaf` on it, recorded in `db`."""
    write_busybox_layout(tmp_path / "os")
    os_ref = f"{registry.host}/up/os:1"
    run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"oci:{tmp_path / 'os'}",
            f"docker://{os_ref}",
        ]
    )
    digest = skopeo_inspect(os_ref)["Digest"]
    for name in ("tool", "leaf"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(
            f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {name} > /{name}\n"
        )
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        f"registry: {registry.host}\nnamespace: prom\nimages:\n"
        f"  os: {{upstream: {registry.host}/up/os, versions: {{'1': {{digest: '{digest}'}}}}}}\n"
        "  tool: {parents: [os], versions: ['1']}\n"
        "  leaf: {parents: [tool], versions: ['2']}\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
    for _ in range(2):  # the second run finds everything current: a recorded run, no build
        done = socle("build", "-c", str(catalog), "--db", db, env=env)
        assert done.returncode == 0, done.stderr
    return catalog


class Served:
    """The console's app under uvicorn on a loopback port, in a thread."""

    def __init__(self, console: Console) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(console, start=False),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the console did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def prometheus_bin() -> str:
    if not PROMETHEUS.exists():
        pytest.fail("prometheus is not installed: apt-get install prometheus (make setup)")
    return str(PROMETHEUS)


def start_prometheus(binary: str, root: Path, target: str) -> tuple[subprocess.Popen[bytes], str]:
    config = root / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: socle\n"
        "    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def query(api: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{api}/api/v1/query", params={"query": promql}, timeout=5)
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for(api: str, promql: str, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if found := query(api, promql):
                return found
        except httpx.TransportError:
            pass  # Prometheus still starting
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never had {promql}")


def scalar(result: list[dict[str, Any]]) -> float:
    (sample,) = result
    return float(sample["value"][1])


def test_prometheus_scrapes_the_consoles_history(tmp_path: Path, prometheus_bin: str) -> None:
    history = f"sqlite:///{tmp_path / 'history.db'}"
    registry = LocalRegistry(tmp_path / "registry")
    try:
        catalog = build_family(tmp_path, registry, history)
        tool_ref = f"{registry.host}/prom/tool:1-os1"
        inspected = skopeo_inspect(tool_ref)
    finally:
        registry.stop()
    created = datetime.fromisoformat(inspected["Created"].replace("Z", "+00:00"))
    store = HistoryStore.open(history)
    console = Console(ConsoleSettings(catalog=catalog, registry=registry.host), store)
    # The overview's row for the built tool, from what the registry held.
    store.replace_states(
        console.catalog_key,
        [
            StateView(
                "tool:1-os1",
                "tool",
                "prom/tool",
                "os:1",
                1,
                ("1-os1",),
                inspected["Digest"],
                f"{registry.host}/prom/os:1",
                None,
                created,
                "current",
                (),
                vulnerabilities={"high": 1},
                signed="no",
            )
        ],
    )
    runs = store.runs()
    assert [r.trigger for r in runs] == ["cli", "cli"]
    durations = store.durations()
    assert {key for key, _, _ in durations} == {"os:1", "tool:1-os1", "leaf:2-tool1-os1"}
    last = store.last_finished()
    assert last is not None and last.finished_at is not None

    served = Served(console)
    prometheus, api = start_prometheus(prometheus_bin, tmp_path, f"127.0.0.1:{served.port}")
    try:
        assert scalar(wait_for(api, 'up{job="socle"} == 1')) == 1
        built = wait_for(api, 'socle_builds_total{result="built"}')
        assert scalar(built) == 3  # os (mirrored), tool, leaf
        counts = store.outcome_counts()
        assert counts["built"] == 3 and len(counts) > 1  # the second run built nothing
        assert {
            s["metric"]["result"]: float(s["value"][1]) for s in query(api, "socle_builds_total")
        } == counts
        # The age grows with time: Prometheus's value lies between created and now.
        age_result = wait_for(api, 'socle_image_age_seconds{variant="tool:1-os1"}')
        assert age_result[0]["metric"]["image"] == "tool"
        age = scalar(age_result)
        now = time.time()
        assert now - created.timestamp() - 15 <= age <= now - created.timestamp() + 1
        buckets = {
            s["metric"]["le"]: float(s["value"][1])
            for s in wait_for(api, "socle_build_duration_seconds_bucket")
        }
        for bound in BUILD_BUCKETS:
            expected = sum(1 for _, _, seconds in durations if seconds <= bound)
            assert buckets[f"{bound:.1f}"] == expected, (bound, buckets)
        assert buckets["+Inf"] == len(durations)
        total = scalar(query(api, "socle_build_duration_seconds_sum"))
        assert total == pytest.approx(sum(s for _, _, s in durations), rel=1e-6)
        assert scalar(query(api, "socle_last_run_timestamp_seconds")) == pytest.approx(
            last.finished_at.timestamp(), abs=1e-3
        )
        info = query(api, "socle_image_info")
        assert [s["metric"]["digest"] for s in info] == [inspected["Digest"]]
        assert scalar(query(api, 'socle_image_vulnerabilities{severity="high"}')) == 1
        assert scalar(query(api, "socle_image_signed")) == 0
        assert scalar(query(api, "socle_runs_queued")) == 0

        # A run recorded now shows in the next scrapes: the collector reads the history.
        recorder = store.start_run(trigger="cli", catalog=console.catalog_key, registry="r")
        recorder.finish([], status="succeeded", summary="")
        newer = store.last_finished()
        assert newer is not None and newer.finished_at is not None
        wait_for(
            api, f"socle_last_run_timestamp_seconds >= {newer.finished_at.timestamp() - 0.001}"
        )
    finally:
        prometheus.terminate()
        prometheus.wait(20)
        served.stop()
        store.close()
