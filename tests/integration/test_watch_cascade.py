"""A real registry notifies `socle watch`, which cascades from the notification alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from socle.process import run
from tests.integration.conftest import LocalRegistry, free_port
from tests.integration.helpers import interruptible, skopeo_inspect, socle
from tests.integration.images import write_busybox_layout
from tests.integration.test_cascade import context

pytestmark = pytest.mark.integration


def test_a_push_notification_alone_rebuilds_the_children(tmp_path: Path) -> None:
    port, secret = free_port(), "s3cret-for-the-test"
    (tmp_path / "secret").write_text(secret + "\n")
    registry = LocalRegistry(tmp_path / "registry", notify=(f"http://127.0.0.1:{port}/", secret))
    watcher = None
    try:
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
            context(tmp_path, name, f"RUN echo {name} > /{name}")
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            f"registry: {registry.host}\nnamespace: w\nimages:\n"
            f"  os: {{upstream: {registry.host}/up/os, versions: {{'1': {{digest: '{digest}'}}}}}}\n"
            "  tool: {parents: [os], versions: ['1']}\n"
            "  leaf: {parents: [tool], versions: ['2']}\n"
        )
        env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
        assert socle("build", "-c", str(catalog), env=env).returncode == 0
        leaf_ref = f"{registry.host}/w/leaf:2-tool1-os1"
        before = skopeo_inspect(leaf_ref)["Digest"]

        events_file = tmp_path / "watch-events.jsonl"

        def leaf_built() -> bool:
            # Whole lines only: the watcher may be writing the last one.
            lines = events_file.read_text().split("\n")[:-1]
            events = [json.loads(line) for line in lines if line.startswith("{")]
            return any(
                e.get("event.action") == "built" and e.get("socle.key") == "leaf:2-tool1-os1"
                for e in events
            )

        events_out = events_file.open("w")
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socle",
                "watch",
                "-c",
                str(catalog),
                "--listen",
                f"127.0.0.1:{port}",
                "--secret-file",
                str(tmp_path / "secret"),
            ],
            env={**os.environ, **env},
            stdout=events_out,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=interruptible,
        )
        time.sleep(1.5)  # let it bind
        # Another team republishes `tool` out of band: only the registry's notification tells socle.
        write_busybox_layout(tmp_path / "tool-v2", extra={"etc/hotfix": b"1\n"})
        tool_ref = f"{registry.host}/w/tool:1-os1"
        run(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                f"oci:{tmp_path / 'tool-v2'}",
                f"docker://{tool_ref}",
            ]
        )
        new_tool = skopeo_inspect(tool_ref)["Digest"]

        # Wait until the leaf was rebuilt on the tool the registry holds. Notifications of the
        # first build, queued while nobody listened, may arrive too and rebuild the foreign tool
        # itself; builds are reproducible, so the leaf rebuilt on that restored tool has its
        # first digest again. Either way the leaf must be built and sit on the published tool.
        deadline = time.monotonic() + 120
        settled = False
        while time.monotonic() < deadline and not settled:
            time.sleep(1)
            leaf = skopeo_inspect(leaf_ref, raw=True)
            base = leaf.get("annotations", {}).get("org.opencontainers.image.base.digest")
            tool_now = skopeo_inspect(tool_ref)["Digest"]
            on_foreign = tool_now == new_tool
            moved = skopeo_inspect(leaf_ref)["Digest"] != before
            settled = base == tool_now and leaf_built() and (moved or not on_foreign)
        assert settled, "the notification did not cascade to the leaf"
    finally:
        if watcher is not None:
            watcher.send_signal(signal.SIGINT)
            _, err = watcher.communicate(timeout=30)
            events_out.close()
            assert "cascading to leaf:2-tool1-os1" in err, err
        registry.stop()
