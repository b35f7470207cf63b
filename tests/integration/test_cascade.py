"""The cascade: exactly the affected subtree, all or nothing, resumable, one run at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from socle.process import run
from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import skopeo_inspect, socle
from tests.integration.images import write_busybox_layout

pytestmark = pytest.mark.integration


def push_upstream(registry: LocalRegistry, layout: Path, ref: str) -> str:
    run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}",
            f"docker://{registry.host}/{ref}",
        ]
    )
    return str(skopeo_inspect(f"{registry.host}/{ref}")["Digest"])


def context(root: Path, name: str, body: str) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "Dockerfile").write_text(f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n{body}\n")


def two_families(root: Path, registry: LocalRegistry, namespace: str) -> Path:
    """os-a -> mid -> leaf, and os-b -> other; os-a's upstream tag is pinned in pins file."""
    for name in ("mid", "leaf", "other", "mid2"):
        context(root, name, f"RUN echo {name} > /{name}")
    catalog = root / "catalog.yaml"
    catalog.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: {namespace}
            images:
              os-a:
                upstream: {registry.host}/{namespace}-up/os-a
                versions: ["1"]
              os-b:
                upstream: {registry.host}/{namespace}-up/os-b
                versions: ["1"]
              mid:
                parents: [os-a]
                versions: ["1.0", "2.0"]
              leaf:
                parents: ["mid:2.0-os-a1"]
                versions: ["3"]
              other:
                parents: [os-b]
                versions: ["9"]
            """
        )
    )
    return catalog


def pinned_families(
    registry: LocalRegistry, root: Path, namespace: str, env: dict[str, str]
) -> Path:
    """Both upstream OS images pushed, the catalog written and its pins resolved."""
    write_busybox_layout(root / "v1")
    push_upstream(registry, root / "v1", f"{namespace}-up/os-a:1")
    push_upstream(registry, root / "v1", f"{namespace}-up/os-b:1")
    catalog = two_families(root, registry, namespace)
    pinned = socle("pins", "update", "-c", str(catalog), env=env)
    assert pinned.returncode == 0, pinned.stderr
    assert "2 pin(s) changed" in pinned.stdout
    return catalog


def built(result: subprocess.CompletedProcess[str]) -> set[str]:
    """Variant keys the run reports as built (plain progress lines on stderr)."""
    return {
        line.split(": built ")[0]
        for line in result.stderr.splitlines()
        if ": built sha256:" in line
    }


@pytest.fixture
def env(registry: LocalRegistry, tmp_path: Path) -> dict[str, str]:
    return {
        "SOCLE_REGISTRY": registry.host,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }


def test_upstream_move_rebuilds_exactly_its_subtree(
    registry: LocalRegistry, tmp_path: Path, env: dict[str, str]
) -> None:
    catalog = pinned_families(registry, tmp_path, "casc", env)
    first = socle("build", "-c", str(catalog), env=env)
    assert first.returncode == 0, first.stderr
    assert len(built(first)) == 6

    # The upstream tag of os-a moves (a new layer, like a package upgrade).
    newer = tmp_path / "v2"
    write_busybox_layout(newer, extra={"etc/upgraded": b"perl 5.36.0-7+deb12u2\n"})
    push_upstream(registry, newer, "casc-up/os-a:1")
    assert socle("plan", "-c", str(catalog), "--json", env=env).stdout.count('"build"') == 0
    pins_file = catalog.with_suffix(".pins.yaml")
    before = pins_file.read_text()
    update = socle("pins", "update", "-c", str(catalog), env=env)
    assert "os-a:1: " in update.stdout and "1 pin(s) changed" in update.stdout
    diff = set(pins_file.read_text().splitlines()) ^ set(before.splitlines())
    assert len(diff) == 2 and all(line.startswith("os-a:1: sha256:") for line in diff)

    why = socle("why", "-c", str(catalog), "leaf", env=env)
    assert why.stdout.splitlines() == [
        "leaf:3-mid2.0-os-a1: rebuild",
        "  - parent mid:2.0-os-a1 is rebuilt",
    ]
    second = socle("build", "-c", str(catalog), env=env)
    assert second.returncode == 0, second.stderr
    assert built(second) == {"os-a:1", "mid:1.0-os-a1", "mid:2.0-os-a1", "leaf:3-mid2.0-os-a1"}
    assert socle("why", "-c", str(catalog), "other", env=env).stdout.startswith(
        "other:9-os-b1: current"
    )


def test_failed_child_keeps_its_family_floating_tags_and_siblings_publish(
    registry: LocalRegistry, tmp_path: Path, env: dict[str, str]
) -> None:
    catalog = pinned_families(registry, tmp_path, "fail", env)
    assert socle("build", "-c", str(catalog), env=env).returncode == 0
    ns = f"{registry.host}/fail"
    old = {
        tag: skopeo_inspect(f"{ns}/mid:{tag}")["Digest"]
        for tag in ("2-os-a1", "2.0-os-a1", "1-os-a1", "1.0-os-a1")
    }
    old_other = skopeo_inspect(f"{ns}/other:9-os-b1")["Digest"]

    context(
        tmp_path,
        "mid",
        'ARG BROKEN\nRUN test "$(cat /etc/version 2>/dev/null)" = 2 || test -z "$BROKEN"',
    )
    (tmp_path / "catalog.yaml").write_text(
        (tmp_path / "catalog.yaml")
        .read_text()
        .replace(
            'versions: ["1.0", "2.0"]',
            'versions:\n      "1.0": {}\n      "2.0": {args: {BROKEN: "yes"}}',
        )
    )
    context(tmp_path, "other", "RUN echo changed > /other")
    result = socle("build", "-c", str(catalog), env=env)
    assert result.returncode == 1
    assert (
        "mid:2.0-os-a1 (failed)" in result.stderr
        and "leaf:3-mid2.0-os-a1 (blocked)" in result.stderr
    )
    assert built(result) >= {"mid:1.0-os-a1", "other:9-os-b1"}
    # The failed variant's tags and its whole family's floating tags did not move...
    now = {tag: skopeo_inspect(f"{ns}/mid:{tag}")["Digest"] for tag in old}
    assert (now["2-os-a1"], now["2.0-os-a1"]) == (old["2-os-a1"], old["2.0-os-a1"])
    # ... not even the sibling version that built fine: its exact tag moved, its floating tag did not.
    assert now["1-os-a1"] == old["1-os-a1"]
    assert now["1.0-os-a1"] != old["1.0-os-a1"]
    # An unrelated family finished and moved.
    assert skopeo_inspect(f"{ns}/other:9-os-b1")["Digest"] != old_other


def test_kill_9_mid_cascade_then_rerun_completes_without_redoing(
    registry: LocalRegistry, tmp_path: Path, env: dict[str, str]
) -> None:
    catalog = pinned_families(registry, tmp_path, "kill", env)
    for name in ("mid", "leaf", "other"):
        context(tmp_path, name, f"RUN sleep 1 && echo {name} > /{name}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "socle", "build", "-c", str(catalog), "-j", "1"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if ": built sha256:" in line and "mid:" in line:
            break
    # One run at a time: a second run is refused, naming the holder.
    busy = socle("build", "-c", str(catalog), env=env)
    assert busy.returncode == 1
    assert "another socle run holds" in busy.stderr and f"pid {proc.pid}" in busy.stderr
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    # Consistent: finished variants have their exact tag; no floating tag moved before the end.
    plan = json.loads(socle("plan", "-c", str(catalog), "--json", env=env).stdout)
    finished = {f"{i['name']}:{i['variant']}" for i in plan["images"] if i["action"] == "skip"}
    for image in plan["images"]:
        for ref in image["refs"][1:]:
            found = subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
                capture_output=True,
                check=False,
            )
            assert found.returncode != 0, f"floating tag {ref} moved before the run finished"
    assert finished and len(finished) < len(plan["images"])

    rerun = socle("build", "-c", str(catalog), env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert built(rerun) == {f"{i['name']}:{i['variant']}" for i in plan["images"]} - finished
    for ref in socle("tags", "-c", str(catalog), env=env).stdout.split():
        assert skopeo_inspect(ref)["Digest"].startswith("sha256:")
