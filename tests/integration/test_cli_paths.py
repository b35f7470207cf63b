"""`socle build` and `socle watch` options a user reaches for, run for real and checked
from the outside: the output they print, the registry with skopeo, the exit code.

--dry-run, --events json, --notify, --only, --no-cascade, watch --poll, and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from socle.events import Status
from socle.process import run
from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import interruptible, skopeo_inspect, socle
from tests.integration.images import write_busybox_layout
from tests.integration.test_build import write_family

pytestmark = pytest.mark.integration

VARIANTS = ("base:1.36", "tool:1.0-base1.36", "tool:1.1-base1.36", "leaf:2-tool1.1-base1.36")
STATUSES = {s.value for s in Status}
# Elastic Common Schema names, as the legacy app's Tomcat logs: one EFK index reads both.
EVENT_FIELDS = {
    "@timestamp", "log.level", "message", "ecs.version", "log.logger", "event.action",
    "event.outcome", "socle.key", "socle.digest", "socle.seconds",
}  # fmt: skip
ALWAYS = {"@timestamp", "log.level", "ecs.version", "log.logger", "event.action"}


def family(tmp_path: Path, namespace: str, busybox: str, registry: LocalRegistry) -> Any:
    """The tiny family of test_build (4 variants) and the environment that points at `registry`."""
    catalog = write_family(tmp_path, namespace, busybox)
    env = {"SOCLE_REGISTRY": registry.host, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return catalog, env


def digests(catalog: Path, env: dict[str, str]) -> dict[str, str | None]:
    """Every tag of the catalog -> its digest in the registry (None when absent), by skopeo."""
    found: dict[str, str | None] = {}
    for ref in socle("tags", "-c", str(catalog), env=env).stdout.split():
        inspected = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--tls-verify=false",
                "--format",
                "{{.Digest}}",
                f"docker://{ref}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        found[ref] = inspected.stdout.strip() if inspected.returncode == 0 else None
    return found


def planned(catalog: Path, env: dict[str, str]) -> dict[str, list[str]]:
    """What `socle plan --json` would build now, with its reasons."""
    result = socle("plan", "-c", str(catalog), "--json", env=env)
    assert result.returncode == 0, result.stderr
    images = json.loads(result.stdout)["images"]
    return {f"{i['name']}:{i['variant']}": i["reasons"] for i in images if i["action"] == "build"}


def owners(catalog: Path, env: dict[str, str]) -> list[list[str]]:
    """Each variant's references, its exact one first (from `socle plan --json`)."""
    result = socle("plan", "-c", str(catalog), "--json", env=env)
    assert result.returncode == 0, result.stderr
    return [image["refs"] for image in json.loads(result.stdout)["images"]]


class Webhook:
    """A chat webhook on loopback that records what it is sent."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0/secret-path"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.stop()


def test_dry_run_shows_the_plan_and_changes_nothing(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    catalog, env = family(tmp_path, "dry", busybox, registry)
    result = socle("build", "-c", str(catalog), "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "4 to build, 0 current" in result.stdout
    assert result.stdout.count("never published") == 4
    assert "will not be signed" not in result.stderr, "a dry run signs nothing, so warns of nothing"
    assert set(digests(catalog, env).values()) == {None}
    listed = httpx.get(f"http://{registry.host}/v2/dry/tool/tags/list", trust_env=False)
    assert listed.status_code == 404, "not even a repository was created"


def test_events_json_is_one_object_per_line_and_notify_posts_the_summary(
    registry: LocalRegistry, busybox: str, tmp_path: Path, webhook: Webhook
) -> None:
    catalog, env = family(tmp_path, "events", busybox, registry)
    result = socle(
        "build", "-c", str(catalog), "--events", "json", "--notify", webhook.url, env=env
    )
    assert result.returncode == 0, result.stderr

    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON
    assert events, "no events"
    for event in events:
        assert set(event) <= EVENT_FIELDS and set(event) >= ALWAYS, event
        assert event["event.action"] in STATUSES
        assert event["@timestamp"].endswith("Z"), "UTC"
        assert datetime.fromisoformat(event["@timestamp"]).utcoffset() is not None
        outcome = {"built": "success", "tagged": "success", "failed": "failure"}.get(
            event["event.action"]
        )
        assert event.get("event.outcome") == outcome, event
    built = {e["socle.key"]: e for e in events if e["event.action"] == "built"}
    assert sorted(built) == sorted(VARIANTS)
    tags = digests(catalog, env)
    for key, event in built.items():
        name, exact = key.split(":")
        assert event["socle.digest"] == tags[f"{registry.host}/events/{name}:{exact}"]
        assert event["socle.seconds"] >= 0
    for key in VARIANTS:  # each goes through building, gates, pushing, built, tagged, in order
        order = [e["event.action"] for e in events if e.get("socle.key") == key]
        assert order[0] == "building" and "testing" in order and "pushing" in order
        assert order.index("built") < order.index("tagged"), order
    assert "built, 0 current" not in result.stdout, "no summary table in the JSON stream"

    [message] = webhook.bodies
    lines = message["text"].splitlines()
    assert lines[0] == f"socle {catalog}: 4 built, 0 failed, 0 blocked"
    assert lines[1].startswith("built: ") and sorted(lines[1][7:].split(", ")) == sorted(VARIANTS)


def test_only_and_no_cascade_choose_what_is_rebuilt(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    catalog, env = family(tmp_path, "only", busybox, registry)
    assert socle("build", "-c", str(catalog), env=env).returncode == 0
    before = digests(catalog, env)
    dockerfile = tmp_path / "tool" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo v2 > /v2\n")

    alone = socle("build", "-c", str(catalog), "--only", "tool:1.1", "--no-cascade", env=env)
    assert alone.returncode == 0, alone.stderr
    assert "1 built" in alone.stdout
    after = digests(catalog, env)
    changed = {ref for ref in after if after[ref] != before[ref]}
    ns = f"{registry.host}/only"
    # Only tool 1.1's exact tag: tool 1.0 still waits to be rebuilt, so the family's
    # floating tags (1.1, 1, latest...) hold until both are current (all or nothing).
    assert changed == {f"{ns}/tool:1.1-base1.36"}, changed
    assert planned(catalog, env) == {
        "tool:1.0-base1.36": ["Dockerfile changed"],
        "leaf:2-tool1.1-base1.36": [
            f"parent tool:1.1-base1.36 moved from {before[f'{ns}/tool:1.1-base1.36'][:19]}.. "
            f"to {after[f'{ns}/tool:1.1-base1.36'][:19]}.."  # type: ignore[index]
        ],
    }

    cascade = socle("build", "-c", str(catalog), "--only", "tool:1.1", env=env)
    assert cascade.returncode == 0, cascade.stderr
    assert "1 built" in cascade.stdout, "tool 1.1 is current; its child follows"
    assert list(planned(catalog, env)) == ["tool:1.0-base1.36"], "never selected, still due"
    held = digests(catalog, env)
    assert held[f"{ns}/tool:latest"] == before[f"{ns}/tool:latest"], "the family still waits"

    rest = socle("build", "-c", str(catalog), "--only", "tool:1.0", env=env)
    assert rest.returncode == 0, rest.stderr
    final = digests(catalog, env)
    assert final[f"{ns}/tool:latest"] == final[f"{ns}/tool:1.1-base1.36"], "now it moves"
    assert final[f"{ns}/tool:1.0"] == final[f"{ns}/tool:1.0-base1.36"]


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`socle ARGS` in its own process group, as a terminal runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "socle", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=interruptible,
    )


def wait_for_line(stream: IO[str], wanted: str, timeout: float) -> list[str]:
    """Lines read from `stream` until one contains `wanted` (fails after `timeout`)."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            seen.append(line)
            if wanted in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout):
        pytest.fail(f"no line with {wanted!r} within {timeout} s; got {seen}")
    return seen


def ctrl_c(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGINT to the whole process group (what Ctrl-C does); the exit code and stderr."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("still running 60 s after Ctrl-C")
    return proc.returncode, err


def test_ctrl_c_during_a_build_exits_130_with_one_line_and_publishes_nothing_half(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    catalog = write_family(tmp_path, "sigint", busybox, leaf_step="RUN sleep 30")
    env = {"SOCLE_REGISTRY": registry.host, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = start(["build", "-c", str(catalog), "--events", "json"], env)
    assert proc.stdout is not None
    wait_for_line(proc.stdout, '"leaf:2-tool1.1-base1.36"', timeout=120)  # the leaf is building
    interrupted = time.monotonic()
    code, err = ctrl_c(proc)
    print(f"\nsocle build exited {code} {time.monotonic() - interrupted:.1f} s after Ctrl-C")

    assert code == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err
    tags = digests(catalog, env)
    for exact, *floating in owners(catalog, env):
        if tags[exact] is None:
            assert all(tags[ref] is None for ref in floating), f"{exact} has tags but no image"
            continue
        # An image with its exact tag passed its gates; a floating tag is old, or where it is.
        assert all(tags[ref] in (None, tags[exact]) for ref in floating), exact
        if "/base:" not in exact:
            annotations = skopeo_inspect(exact, raw=True)["annotations"]
            assert "io.github.socle.sbom" in annotations, f"{exact} is tagged before its gates"

    (tmp_path / "leaf" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo leaf > /leaf\n"
    )
    rerun = socle("build", "-c", str(catalog), env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert planned(catalog, env) == {}
    final = digests(catalog, env)
    for exact, *floating in owners(catalog, env):
        assert final[exact] is not None and all(final[r] == final[exact] for r in floating)


def test_watch_poll_cascades_a_pushed_parent_and_ctrl_c_exits_130(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    catalog, env = family(tmp_path, "poll", busybox, registry)
    assert socle("build", "-c", str(catalog), env=env).returncode == 0
    ns = f"{registry.host}/poll"
    leaf_ref, tool_ref = f"{ns}/leaf:2-tool1.1-base1.36", f"{ns}/tool:1.1-base1.36"
    before = skopeo_inspect(leaf_ref)["Digest"]

    watcher = start(["watch", "-c", str(catalog), "--poll", "1"], env)
    assert watcher.stderr is not None
    wait_for_line(watcher.stderr, "socle watch: polling 5 tags every 1 s", timeout=30)
    time.sleep(1.5)  # one round: the baseline
    # Another team republishes tool 1.1 out of band: only polling tells socle.
    write_busybox_layout(tmp_path / "tool-v2", extra={"etc/hotfix": b"1\n"})
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'tool-v2'}",
         f"docker://{tool_ref}"])  # fmt: skip
    new_tool = skopeo_inspect(tool_ref)["Digest"]

    deadline, rebuilt = time.monotonic() + 120, False
    while time.monotonic() < deadline and not rebuilt:
        time.sleep(1)
        leaf = skopeo_inspect(leaf_ref, raw=True)
        base = leaf.get("annotations", {}).get("org.opencontainers.image.base.digest")
        rebuilt = base == new_tool and skopeo_inspect(leaf_ref)["Digest"] != before
    code, err = ctrl_c(watcher)

    assert rebuilt, f"polling did not cascade to the leaf:\n{err}"
    assert f"push of {tool_ref.split('/', 1)[0]}/poll/tool:1.1-base1.36" in err
    assert "cascading to leaf:2-tool1.1-base1.36" in err
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err
