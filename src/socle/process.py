"""The one place where socle starts a subprocess.

Every external tool (buildah, docker, mmdebstrap, skopeo...) goes through
:func:`run`, so a failure always shows the command, its exit code and the
tail of its error output.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from socle.errors import SocleError

TAIL_LINES = 20


class CommandError(SocleError):
    """A subprocess exited non-zero (or could not be started)."""

    def __init__(
        self,
        cmd: Sequence[str],
        returncode: int,
        stdout: str,
        stderr: str,
        *,
        hint: str | None = None,
    ) -> None:
        self.cmd = tuple(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = tail_of(stderr or stdout)
        message = f"command failed with exit code {returncode}: {shlex.join(cmd)}"
        if tail:
            message += "\n" + tail
        super().__init__(message, hint=hint)


def tail_of(text: str, lines: int = TAIL_LINES) -> str:
    """The last `lines` non-empty lines of `text`, indented for display."""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  | {line}" for line in kept)


@dataclass(frozen=True)
class Completed:
    """What a finished command printed."""

    stdout: str
    stderr: str


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    check: bool = True,
    timeout: float | None = None,
    hint: str | None = None,
) -> Completed:
    """Run `cmd`, capture its output as text, raise :class:`CommandError` on failure.

    `env` is added to the current environment rather than replacing it.
    """
    full_env = {**os.environ, **env} if env else None
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=full_env,
            input=data,
            capture_output=True,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise CommandError(
            cmd, 127, "", str(exc), hint=hint or f"install {cmd[0]!r} (see the README's setup)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(cmd, -1, "", f"timed out after {timeout} s", hint=hint) from exc
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise CommandError(cmd, proc.returncode, out, err, hint=hint)
    return Completed(out, err)


def start_detached(cmd: Sequence[str], log: BinaryIO) -> subprocess.Popen[bytes]:
    """Start a daemon (not a command that finishes) in its own session, output to `log`.

    The one place socle uses Popen: the local stack's registry and dockerd.
    """
    try:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise CommandError(cmd, 127, "", str(exc), hint=f"install {cmd[0]!r} (see the README's setup)") from exc
