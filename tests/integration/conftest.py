"""Real components for integration tests: a private docker-registry per session.

Each test session starts its own CNCF distribution registry (Debian's
`docker-registry`) on a free 127.0.0.1 port with a throw-away storage folder,
so tests never touch a registry a user runs. Missing tools are a failure, not
a skip: the setup script installs them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from socle.bootstrap.mmdebstrap import BootstrapResult, bootstrap
from socle.bootstrap.spec import BootstrapSpec
from socle.process import run
from tests.integration.helpers import ENTERPRISE, failures, skopeo_inspect, socle
from tests.integration.images import BUSYBOX, write_busybox_layout

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run `make setup` (or .ci/run) first")
    return path


class LocalRegistry:
    """A running registry: its host:port, its storage and its log file."""

    def __init__(
        self, root: Path, *, htpasswd: Path | None = None, notify: tuple[str, str] | None = None
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = root / "registry.log"
        self.config = root / "config.yml"
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n  accesslog:\n    disabled: false\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
            + (
                f"auth:\n  htpasswd:\n    realm: socle-test\n    path: {htpasswd}\n"
                if htpasswd
                else ""
            )
            + (
                "notifications:\n  endpoints:\n    - name: socle\n"
                f"      url: {notify[0]}\n"
                f"      headers:\n        Authorization: [Bearer {notify[1]}]\n"
                "      timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
                if notify
                else ""
            )
        )
        self.start()

    def start(self) -> None:
        """Serve (again, after :meth:`stop`) on the same port from the same storage."""
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(self.config)], stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code in (200, 401):
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"registry did not start; see {self.log_path}")

    def log(self, since: int = 0) -> str:
        """The access log, from byte offset `since` (see `log_size`) to its end."""
        with self.log_path.open("rb") as file:
            file.seek(since)
            return file.read().decode(errors="replace")

    def log_size(self) -> int:
        """Where the log ends now: pass it to `log(since=)` to read only what follows."""
        return self.log_path.stat().st_size

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    if not Path(REGISTRY_BIN).exists():
        pytest.fail("docker-registry is not installed: run `make setup` (or .ci/run) first")
    reg = LocalRegistry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Docker daemon: the running one, or one socle starts (and stops) for this session."""
    from socle import stack

    paths = stack.StackPaths(tmp_path_factory.mktemp("stack"))
    stack.up(paths, registry_addr=f"127.0.0.1:{free_port()}", docker=True)
    yield
    stack.down(paths)


@pytest.fixture(scope="session")
def busybox(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny upstream image (static busybox) in the test registry: `repo@digest`."""
    if not BUSYBOX.exists():
        pytest.fail("/bin/busybox is missing: run `make setup`")
    layout = tmp_path_factory.mktemp("busybox") / "layout"
    write_busybox_layout(layout)
    ref = f"{registry.host}/upstream/busybox:1"
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"])
    digest = skopeo_inspect(ref)["Digest"]
    return f"{registry.host}/upstream/busybox@{digest}"


@dataclass(frozen=True)
class Bootstrapped:
    """The session's Debian bookworm minbase, bootstrapped once from the host's mirror."""

    result: BootstrapResult
    rootfs: Path
    members: list[tarfile.TarInfo]


BOOTSTRAP_LABELS = {"org.opencontainers.image.title": "debian", "org.example.team": "platform"}


@pytest.fixture(scope="session")
def debian_bookworm(tmp_path_factory: pytest.TempPathFactory) -> Bootstrapped:
    """Debian 12 minbase with -updates and -security: the one test OS image of the run."""
    require("mmdebstrap")
    root = tmp_path_factory.mktemp("bootstrap")
    result = bootstrap(
        BootstrapSpec("bookworm"), root / "layout", work_dir=root / "work", labels=BOOTSTRAP_LABELS
    )
    print(f"\nbootstrap of bookworm minbase: {result.duration:.1f} s")
    rootfs = root / "work" / "rootfs.tar"
    with tarfile.open(rootfs) as tar:
        members = tar.getmembers()
    return Bootstrapped(result, rootfs, members)


@pytest.fixture(scope="session")
def debian_upstream(registry: LocalRegistry, debian_bookworm: Bootstrapped) -> str:
    """That image pushed to the session registry: `host/base/debian@sha256:...`."""
    layout = debian_bookworm.result.layout
    ref = f"{registry.host}/base/debian:12"
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"])
    return f"{registry.host}/base/debian@{skopeo_inspect(ref)['Digest']}"


# The smallest bootstrap that can still run a program: Essential packages only (no apt).
ARM64_SPEC = BootstrapSpec("bookworm", variant="essential", architecture="arm64")


@pytest.fixture(scope="session")
def debian_arm64(tmp_path_factory: pytest.TempPathFactory) -> Bootstrapped:
    """Debian 12 `essential` for arm64, bootstrapped once per session under qemu emulation."""
    from socle.emulation import require_emulation
    from socle.errors import SocleError

    require("mmdebstrap")
    try:
        require_emulation("arm64")
    except SocleError as exc:
        pytest.fail(exc.diagnostics())
    root = tmp_path_factory.mktemp("bootstrap-arm64")
    result = bootstrap(ARM64_SPEC, root / "layout", work_dir=root / "work", labels=BOOTSTRAP_LABELS)
    print(f"\nbootstrap of bookworm essential for arm64: {result.duration:.1f} s")
    rootfs = root / "work" / "rootfs.tar"
    with tarfile.open(rootfs) as tar:
        members = tar.getmembers()
    return Bootstrapped(result, rootfs, members)


@dataclass(frozen=True)
class Enterprise:
    """The bundled example built once per session, signed, into a registry of its own.

    The most expensive fixture of the suite (an mmdebstrap bootstrap and four apt
    builds, about 3 minutes): the legacy app's smoke run and the GitLab pipeline's
    comparison share it. Tests must not change what it published.
    """

    catalog: Path  # a copy of examples/enterprise: tests may edit and restore it
    registry: LocalRegistry
    env: dict[str, str]  # SOCLE_REGISTRY, the builder, the key's passphrase, the cache
    key: Path  # the public key it is signed with
    events: str  # `socle build --events json`: one JSON line per event
    seconds: float  # that build's wall time


@pytest.fixture(scope="session")
def enterprise(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enterprise]:
    root = tmp_path_factory.mktemp("enterprise")
    made = LocalRegistry(root / "registry")  # not the session's: tests publish `my/...` there
    shutil.copytree(ENTERPRISE, root / "example")
    catalog = root / "example" / "catalog.yaml"
    env = {
        "SOCLE_REGISTRY": made.host,
        "SOCLE_BUILDER": "buildah",
        "SOCLE_PASSWORD": "enterprise example",
        "XDG_CACHE_HOME": str(root / "cache"),
    }
    try:
        assert socle("keygen", "--out", str(root / "ops"), env=env).returncode == 0
        started = time.monotonic()
        built = socle(
            "build", "-c", str(catalog), "--sign-key", str(root / "ops.key"), "--events", "json",
            env=env,
        )  # fmt: skip
        seconds = time.monotonic() - started
        assert built.returncode == 0, built.stderr[-4000:] + failures(built.stdout)
        print(f"\nenterprise example, one signed socle build: {seconds:.1f} s")
        yield Enterprise(catalog, made, env, root / "ops.pub", built.stdout, seconds)
    finally:
        made.stop()
