"""The smoke run: the pinned image under Docker Engine, exactly as its pod spec says.

The container gets no network but its own loopback (`--network none`). Its
probes are reached from inside its network namespace: `nsenter --net` into the
container's process, then an HTTP GET to 127.0.0.1 by this same Python (or
`docker exec` for a command probe). No bridge, no published port. The
container is always removed, pass or fail.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from socle.deploy.podrun import PodRun, Probe
from socle.process import CommandError, run

LOG_TAIL = 40
# Run inside the container's network namespace: exit 0 on a 2xx/3xx answer, as the kubelet.
_HTTP_GET = """
import sys, urllib.request, urllib.error
try:
    status = urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status
except urllib.error.HTTPError as exc:
    status = exc.code
except OSError as exc:
    sys.exit(f"no answer: {exc}")
print(status)
sys.exit(0 if 200 <= status < 400 else f"HTTP {status}")
"""


@dataclass(frozen=True)
class SmokeResult:
    """Whether every probe passed, which did not and why, and the container's last lines."""

    passed: bool
    detail: str
    log_tail: str
    seconds: float


def smoke(
    pod: PodRun,
    *,
    timeout: float,
    log_lines: int = LOG_TAIL,
    docker: str = "docker",
    clock: Callable[[], float] = time.monotonic,
) -> SmokeResult:
    """Run `pod`, wait for each probe in turn until `timeout` seconds, then remove it.

    The result keeps the last `log_lines` lines the container wrote.
    """
    started = clock()
    name = f"socle-smoke-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="socle-smoke-") as scratch:
        command = docker_command(pod, name, _write_files(pod, Path(scratch)), docker=docker)
        try:
            run(command, hint="is the Docker daemon running? (`socle stack up --docker`)")
            detail = _wait_for_probes(pod, name, started + timeout, docker, clock)
            tail = _log_tail(name, docker, log_lines)
        finally:
            run([docker, "rm", "--force", name], check=False)
    return SmokeResult(detail is None, detail or _passed(pod), tail, clock() - started)


def docker_command(
    pod: PodRun, name: str, mounts: dict[str, Path], *, docker: str = "docker"
) -> list[str]:
    """The `docker run` of `pod`: its flags, no network, each file bind-mounted read-only."""
    binds = [
        flag
        for target, source in sorted(mounts.items())
        for flag in ("--mount", f"type=bind,source={source},target={target},readonly")
    ]
    return [
        docker, "run", "--detach", "--name", name, "--network", "none",
        *pod.flags, *binds, pod.image, *pod.arguments,
    ]  # fmt: skip


def _write_files(pod: PodRun, scratch: Path) -> dict[str, Path]:
    """Each ConfigMap file in `scratch`, readable by the container's user."""
    scratch.chmod(0o755)
    mounts: dict[str, Path] = {}
    for index, (target, content) in enumerate(sorted(pod.files.items())):
        source = scratch / f"{index}-{Path(target).name}"
        source.write_text(content)
        source.chmod(0o644)
        mounts[target] = source
    return mounts


def _passed(pod: PodRun) -> str:
    if not pod.probes:
        return "the container started (the pod spec declares no probe)"
    return "passed: " + "; ".join(p.describe() for p in pod.probes)


def _wait_for_probes(
    pod: PodRun, name: str, deadline: float, docker: str, clock: Callable[[], float]
) -> str | None:
    """None when every probe passed, else why not (timeout, or the container exited)."""
    time.sleep(max((p.initial_delay for p in pod.probes), default=0.0))
    for probe in pod.probes:
        last = "not tried"
        while True:
            pid = _running_pid(name, docker)
            if pid is None:
                return f"the container exited before {probe.describe()} passed"
            last = _attempt(probe, name, pid, docker)
            if not last:
                break
            if clock() >= deadline:
                return f"{probe.describe()} did not pass in time: {last}"
            time.sleep(min(probe.period, 1.0))
    if _running_pid(name, docker) is None:
        return "the container exited"
    return None


def _running_pid(name: str, docker: str) -> int | None:
    state = run(
        [docker, "inspect", "--format", "{{.State.Running}} {{.State.Pid}}", name]
    ).stdout.split()
    return int(state[1]) if state and state[0] == "true" and int(state[1]) > 0 else None


def _attempt(probe: Probe, name: str, pid: int, docker: str) -> str:
    """'' when the probe passes, else what it said."""
    if probe.command:
        cmd = [docker, "exec", name, *probe.command]
    else:
        url = f"http://127.0.0.1:{probe.port}{probe.path}"
        cmd = [
            "nsenter",
            f"--net=/proc/{pid}/ns/net",
            sys.executable,
            "-c",
            _HTTP_GET,
            url,
            str(probe.timeout),
        ]
    try:
        run(cmd, timeout=probe.timeout + 10)
    except CommandError as exc:
        said = (exc.stderr or exc.stdout).strip().splitlines()
        return said[-1] if said else f"exit code {exc.returncode}"
    return ""


def _log_tail(name: str, docker: str, lines: int) -> str:
    """The container's last `lines` of stdout, then of stderr."""
    logs = run([docker, "logs", "--tail", str(lines), name], check=False)
    return (logs.stdout + logs.stderr).rstrip()
