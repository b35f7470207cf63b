"""Helpers for integration tests: run the real CLI, inspect with the independent client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from socle.process import run


def socle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socle", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=900,
    )


def skopeo_inspect(ref: str, *, raw: bool = False) -> Any:
    cmd = (
        ["skopeo", "inspect", "--tls-verify=false"]
        + (["--raw"] if raw else [])
        + [f"docker://{ref}"]
    )
    return json.loads(run(cmd).stdout)
