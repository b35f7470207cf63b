"""The local stack behind `socle up` / `socle down`: a registry and, on demand, dockerd.

socle starts only what is missing, records the pid of everything it starts
in its data folder, and stops only those processes, after checking in
/proc that each pid still runs the program socle started. Whatever already
answers (a registry on the address, a Docker daemon) is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from socle import process
from socle.builders.interface import SETUP_HINT
from socle.errors import InputError, SocleError
from socle.oci.reference import registry_host_problem
from socle.process import CommandError, run, tail_of

DEFAULT_REGISTRY_ADDR = "127.0.0.1:5000"
REGISTRY_BIN = "/usr/bin/docker-registry"
# Machine rule: no bridge network and no iptables rules; builds use the host network.
DOCKERD_FLAGS = ("--bridge=none", "--iptables=false")


@dataclass(frozen=True)
class Webhook:
    """A registry notification endpoint; `secret_header` is e.g. ("Authorization", "Bearer ...")."""

    url: str
    secret_header: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise InputError(f"webhook URL {self.url!r} must start with http:// or https://")


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps its data: registry storage and config, pid files, logs."""

    root: Path

    @classmethod
    def default(cls, root: Path | None = None) -> StackPaths:
        """`root` if given, else $XDG_DATA_HOME/socle, else ~/.local/share/socle."""
        if root is not None:
            return cls(root)
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg else Path.home() / ".local" / "share"
        return cls(base / "socle")

    @property
    def registry_storage(self) -> Path:
        """The registry's filesystem storage."""
        return self.root / "registry"

    @property
    def registry_config(self) -> Path:
        """socle's own registry configuration file."""
        return self.root / "registry.yml"

    def log(self, service: str) -> Path:
        """The log file of a service socle starts."""
        return self.root / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        """The file recording the pid of a service socle started."""
        return self.root / f"{service}.pid"


@dataclass(frozen=True)
class Service:
    """A program the stack may start: its name for the user, how to recognise it in /proc."""

    name: str  # as shown to the user and used for file names
    program: str  # basename of argv[0] in /proc/PID/cmdline
    stop_timeout: float


REGISTRY = Service("registry", "docker-registry", stop_timeout=10)
DOCKERD = Service("dockerd", "dockerd", stop_timeout=30)


def render_registry_config(paths: StackPaths, addr: str, notify: Sequence[Webhook] = ()) -> str:
    """socle's registry configuration (distribution 2.8 YAML): local storage, deletes on."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": "registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(paths.registry_storage)},
            "delete": {"enabled": True},
        },
        "http": {"addr": addr, "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if notify:
        config["notifications"] = {"endpoints": [_endpoint(i, w) for i, w in enumerate(notify)]}
    return yaml.safe_dump(config, sort_keys=False)


def _endpoint(index: int, webhook: Webhook) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"name": f"socle-{index + 1}", "url": webhook.url}
    if webhook.secret_header is not None:
        name, value = webhook.secret_header
        endpoint["headers"] = {name: [value]}
    return {**endpoint, "timeout": "5s", "threshold": 5, "backoff": "10s"}


def up(
    paths: StackPaths,
    *,
    registry_addr: str = DEFAULT_REGISTRY_ADDR,
    docker: bool,
    notify: Sequence[Webhook] = (),
) -> list[str]:
    """Start what is missing of the stack; return one line per service for the user."""
    lines = [_up_registry(paths, registry_addr, notify)]
    if docker:
        lines.append(_up_dockerd(paths))
    return lines


def down(paths: StackPaths) -> list[str]:
    """Stop the processes socle started (and only those); safe to call again."""
    return [_stop(paths, service) for service in (DOCKERD, REGISTRY)]


def status(paths: StackPaths) -> list[str]:
    """One line per service: running or not, and whether socle started it."""
    addr = configured_addr(paths) or DEFAULT_REGISTRY_ADDR
    return [
        _describe(REGISTRY, registry_answers(addr), recorded_pid(paths, REGISTRY), f" on {addr}"),
        _describe(DOCKERD, docker_answers(), recorded_pid(paths, DOCKERD), ""),
    ]


def _describe(service: Service, answers: bool, pid: int | None, where: str) -> str:
    if not answers:
        return f"{service.name}: not running"
    owner = f"pid {pid}, started by socle" if pid else "not started by socle"
    return f"{service.name}: running{where} ({owner})"


def registry_answers(addr: str) -> bool:
    """Whether a registry answers `GET /v2/` on `addr` (401 counts: it is a registry)."""
    import httpx  # 0.1 s to import: only the commands that start or probe the stack pay it

    try:
        # trust_env=False: a proxy from the environment must not see loopback traffic.
        response = httpx.get(f"http://{addr}/v2/", timeout=1, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code in (200, 401)


def docker_answers() -> bool:
    """Whether `docker info` reaches a daemon."""
    if shutil.which("docker") is None:
        return False
    try:
        run(["docker", "info"], timeout=20)
    except CommandError:
        return False
    return True


def configured_addr(paths: StackPaths) -> str | None:
    """The address in socle's registry config, if socle ever wrote one."""
    try:
        config = yaml.safe_load(paths.registry_config.read_text())
        return str(config["http"]["addr"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def _up_registry(paths: StackPaths, addr: str, notify: Sequence[Webhook]) -> str:
    _check_addr(addr)
    if registry_answers(addr):
        return f"registry: already running on {addr}"
    binary = _require(REGISTRY_BIN if Path(REGISTRY_BIN).exists() else "docker-registry")
    pid = recorded_pid(paths, REGISTRY)
    if pid is not None:
        raise SocleError(
            f"the registry socle started (pid {pid}) does not answer on {addr}",
            hint="run `socle down` first, or use the address it was started with",
        )
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Webhook secrets may be in the config: readable by its owner only.
    _write_private(paths.registry_config, render_registry_config(paths, addr, notify))
    cmd = [binary, "serve", str(paths.registry_config)]
    _start(paths, REGISTRY, cmd, ready=lambda: registry_answers(addr), timeout=20)
    return f"registry: started on {addr} (data: {paths.registry_storage})"


def _up_dockerd(paths: StackPaths) -> str:
    _require("docker")
    if docker_answers():
        return "dockerd: already running"
    binary = _require("dockerd", extra_path="/usr/sbin:/sbin")
    if os.geteuid() != 0:
        raise SocleError(
            "dockerd is not running and starting it needs root",
            hint=f"start it as root: dockerd {' '.join(DOCKERD_FLAGS)}",
        )
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _start(paths, DOCKERD, [binary, *DOCKERD_FLAGS], ready=docker_answers, timeout=60)
    return f"dockerd: started (log: {paths.log(DOCKERD.name)})"


def _check_addr(addr: str) -> None:
    problem = registry_host_problem(addr)
    if problem and "://" in addr:
        raise InputError(f"registry address {addr!r} {problem}")
    host, _, port = addr.rpartition(":")
    if problem or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"registry address {addr!r} is not HOST:PORT", hint="e.g. 127.0.0.1:5000")


def _require(program: str, *, extra_path: str = "") -> str:
    search = os.pathsep.join(p for p in (os.environ.get("PATH", ""), extra_path) if p)
    found = shutil.which(program, path=search)
    if found is None:
        raise SocleError(f"{Path(program).name} is not installed", hint=SETUP_HINT)
    return found


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def _start(
    paths: StackPaths,
    service: Service,
    cmd: list[str],
    *,
    ready: Callable[[], bool],
    timeout: float,
) -> None:
    """Start `cmd` detached, record its pid, wait until `ready()`; clean up if it never is."""
    log = paths.log(service.name)
    with log.open("ab") as out:
        out.write(f"--- socle up {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(cmd)}\n".encode())
        out.flush()
        proc = process.start_detached(cmd, out)
    paths.pid_file(service.name).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    _stop(paths, service)
    raise SocleError(
        f"{service.name} did not start\n{tail_of(log.read_text(errors='replace'))}",
        hint=f"see {log}",
    )


def recorded_pid(paths: StackPaths, service: Service) -> int | None:
    """The pid socle recorded for `service`, if that process still runs that program."""
    try:
        pid = int(paths.pid_file(service.name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _runs(pid, service, paths) else None


def _runs(pid: int, service: Service, paths: StackPaths) -> bool:
    """Whether `pid` runs the program socle started for `service` (pids get reused)."""
    if not _alive(pid):
        return False
    try:
        argv = [os.fsdecode(a) for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return False
    if Path(argv[0]).name != service.program:
        return False
    # Another docker-registry (a test's, a user's) is not ours: ours serves our config.
    return service is not REGISTRY or str(paths.registry_config) in argv


def _alive(pid: int) -> bool:
    """Whether `pid` exists and has not exited (a zombie has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    if state != "Z":
        return True
    # If this very process started the daemon (tests do), collect its exit status.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return False


def _stop(paths: StackPaths, service: Service) -> str:
    pid_file = paths.pid_file(service.name)
    if not pid_file.exists():
        return f"{service.name}: nothing to stop"
    pid = recorded_pid(paths, service)
    if pid is None:
        pid_file.unlink()
        return f"{service.name}: already stopped (stale pid file removed)"
    _terminate(pid, service)
    pid_file.unlink()
    return f"{service.name}: stopped (pid {pid})"


def _terminate(pid: int, service: Service) -> None:
    for sig, wait in ((signal.SIGTERM, service.stop_timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)
    raise SocleError(f"{service.name} (pid {pid}) did not stop", hint=f"kill {pid} by hand")
