"""A real registry notifies a real `socle serve`, which rebuilds the pushed image's children once.

The registry is configured with three notification endpoints that all point at
the console: every event arrives three times with the same id, as a
registry's retries would. The console must record one webhook run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from socle.history.store import HistoryStore, RunView
from socle.process import run
from tests.integration.conftest import LocalRegistry, free_port
from tests.integration.helpers import interruptible, skopeo_inspect, socle
from tests.integration.images import write_busybox_layout

pytestmark = pytest.mark.integration

DELIVERIES = 3  # endpoints, so deliveries of each event
LEAF = "leaf:2-tool1-os1"
BASE_DIGEST = "org.opencontainers.image.base.digest"


def notify_console(registry: LocalRegistry, url: str, secret: str) -> None:
    """Restart `registry` (same port, same storage) notifying `url` from DELIVERIES endpoints."""
    registry.stop()
    endpoints = "".join(
        f"    - name: console-{n}\n"
        f"      url: {url}\n"
        f"      headers:\n        Authorization: [Bearer {secret}]\n"
        "      timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
        for n in range(DELIVERIES)
    )
    config = registry.config.read_text()
    assert "notifications:" not in config
    registry.config.write_text(config + "notifications:\n  endpoints:\n" + endpoints)
    registry.start()


def push_layout(layout: Path, ref: str) -> str:
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"])
    return str(skopeo_inspect(ref)["Digest"])


def webhook_runs(db: str) -> list[RunView]:
    with HistoryStore.open(db) as store:
        return [r for r in store.runs(limit=100) if r.trigger == "webhook"]


def test_a_pushed_parent_rebuilds_its_child_once_whatever_the_duplicates(tmp_path: Path) -> None:
    secret = "console-hook-secret"
    (tmp_path / "secret").write_text(secret + "\n")
    registry = LocalRegistry(tmp_path / "registry")
    console = None
    err = ""
    db = f"sqlite:///{tmp_path / 'history.db'}"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
    try:
        write_busybox_layout(tmp_path / "os")
        digest = push_layout(tmp_path / "os", f"{registry.host}/up/os:1")
        for name in ("tool", "leaf"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "Dockerfile").write_text(
                f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {name} > /{name}\n"
            )
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            f"registry: {registry.host}\nnamespace: hk\nimages:\n"
            f"  os: {{upstream: {registry.host}/up/os, versions: {{'1': {{digest: '{digest}'}}}}}}\n"
            "  tool: {parents: [os], versions: ['1']}\n"
            "  leaf: {parents: [tool], versions: ['2']}\n"
        )
        first = socle("build", "-c", str(catalog), "--db", db, env=env)
        assert first.returncode == 0, first.stderr
        leaf_ref = f"{registry.host}/hk/{LEAF}"
        leaf_before = skopeo_inspect(leaf_ref)["Digest"]

        port = free_port()
        notify_console(registry, f"http://127.0.0.1:{port}/hooks/registry", secret)
        console = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socle",
                "serve",
                "-c",
                str(catalog),
                "--listen",
                f"127.0.0.1:{port}",
                "--db",
                db,
                "--hook-secret-file",
                str(tmp_path / "secret"),
            ],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=interruptible,
        )
        deadline = time.monotonic() + 30
        while True:
            assert console.poll() is None, console.communicate()[1]
            assert time.monotonic() < deadline, "socle serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        # The wrong secret is refused by the console itself.
        refused = httpx.post(
            f"http://127.0.0.1:{port}/hooks/registry",
            content=b"{}",
            headers={"authorization": "Bearer wrong", "content-type": "application/json"},
        )
        assert refused.status_code == 401
        assert webhook_runs(db) == []

        # Another team republishes `tool`: only the registry's notifications tell the console.
        write_busybox_layout(tmp_path / "tool-v2", extra={"etc/hotfix": b"1\n"})
        new_tool = push_layout(tmp_path / "tool-v2", f"{registry.host}/hk/tool:1-os1")

        deadline = time.monotonic() + 180
        while not any(r.finished_at for r in webhook_runs(db)):
            assert console.poll() is None, console.communicate()[1]
            assert time.monotonic() < deadline, "no webhook run finished"
            time.sleep(1)
        time.sleep(6)  # every duplicate delivery, and the leaf's own push, have arrived since
        runs = webhook_runs(db)
        assert len(runs) == 1, [(r.id, r.status, r.summary) for r in runs]
        (webhook,) = runs
        assert webhook.status == "succeeded", webhook.summary
        with HistoryStore.open(db) as store:
            full = store.run(webhook.id)
        assert full is not None
        assert {o.key: o.status for o in full.outcomes}[LEAF] == "built"
        leaf = skopeo_inspect(leaf_ref, raw=True)
        assert leaf["annotations"][BASE_DIGEST] == new_tool
        assert skopeo_inspect(leaf_ref)["Digest"] != leaf_before
    finally:
        if console is not None and console.poll() is None:
            console.send_signal(signal.SIGINT)
            _, err = console.communicate(timeout=30)
            print(err)
        registry.stop()
    hooks = [line for line in err.splitlines() if "POST /hooks/registry" in line]
    assert len([line for line in hooks if " 202 " in line]) == 1, hooks
    # Each manifest push (the tool's, then the rebuilt leaf's) came DELIVERIES times.
    assert len([line for line in hooks if " 200 " in line or " 202 " in line]) >= DELIVERIES, hooks
