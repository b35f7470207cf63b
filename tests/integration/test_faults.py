"""Registry faults with a real injector: toxiproxy between socle and a real registry.

Each test routes socle (the CLI, as a user runs it) through a toxiproxy proxy in
front of a real `docker-registry` and injects one fault: latency, connection
resets, lost answers, stalled connections, a bandwidth limit, the registry stopped
mid-push or lost inside the tag phase, credentials revoked mid-run. What the registry holds afterwards is read back
directly (no proxy) with skopeo, the independent client: every tag must point
to a manifest whose blobs are all there, and a family's floating tags must all
be of one generation. Then a rerun without the fault completes.

Mid-push means: after the registry's access log shows the first upload session
of the run, while a bandwidth limit keeps the layer's PUT on the wire.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import bcrypt
import httpx
import pytest

from socle.canonical import sha256_digest
from socle.oci.media import OCI_MANIFEST
from socle.oci.reference import Reference
from socle.process import run
from socle.registry.client import RegistryClient
from tests.integration.conftest import LocalRegistry, free_port
from tests.integration.helpers import skopeo_inspect, socle, tool
from tests.integration.images import write_busybox_layout

pytestmark = pytest.mark.integration

T = TypeVar("T")
LAYER_RATE = 1000  # KB/s: a busybox layer (1.1 MB gzipped) takes about 1 s to upload


# -- the injector ------------------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    """One toxiproxy proxy: socle talks to `host`, toxiproxy forwards to the registry."""

    api: str
    name: str
    host: str

    def add(self, kind: str, stream: str = "upstream", **attributes: int) -> str:
        """Add a toxic (`upstream`: socle to registry, `downstream`: the answers)."""
        name = f"{kind}-{stream}"
        toxic = {"name": name, "type": kind, "stream": stream, "attributes": attributes}
        httpx.post(f"{self.api}/proxies/{self.name}/toxics", json=toxic).raise_for_status()
        return name

    def remove(self, toxic: str) -> None:
        httpx.delete(f"{self.api}/proxies/{self.name}/toxics/{toxic}").raise_for_status()

    def enable(self, enabled: bool) -> None:
        """Disabled, the proxy drops its connections (data in flight too) and refuses new ones.

        Unlike adding a toxic, which lets through what an earlier toxic held.
        """
        spec = {"enabled": enabled}
        httpx.post(f"{self.api}/proxies/{self.name}", json=spec).raise_for_status()

    def toxics(self) -> list[str]:
        answer = httpx.get(f"{self.api}/proxies/{self.name}/toxics").raise_for_status()
        return [str(t["type"]) for t in answer.json()]


class Toxiproxy:
    """A toxiproxy server on a loopback port, driven through its HTTP API."""

    def __init__(self, root: Path) -> None:
        port = free_port()
        self.api = f"http://127.0.0.1:{port}"
        self._log = (root / "toxiproxy.log").open("wb")
        self.proc = subprocess.Popen(
            [tool("toxiproxy-server"), "-host", "127.0.0.1", "-port", str(port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, 10, "toxiproxy-server to listen")

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.api}/version", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def proxy(self, name: str, upstream: str) -> Proxy:
        spec = {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": True}
        created = httpx.post(f"{self.api}/proxies", json=spec).raise_for_status().json()
        return Proxy(self.api, name, str(created["listen"]))

    def delete(self, proxy: Proxy) -> None:
        httpx.delete(f"{self.api}/proxies/{proxy.name}").raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {seconds} s")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toxiproxy]:
    server = Toxiproxy(tmp_path_factory.mktemp("toxiproxy"))
    yield server
    server.stop()


@pytest.fixture
def proxy(
    toxiproxy: Toxiproxy, registry: LocalRegistry, request: pytest.FixtureRequest
) -> Iterator[Proxy]:
    """A proxy in front of the session's registry, for this test only."""
    made = toxiproxy.proxy(request.node.name[:60], registry.host)
    yield made
    toxiproxy.delete(made)


# -- a tiny catalog: one family re-published from upstream by digest --------------------


@dataclass(frozen=True)
class Upstreams:
    """Upstream busybox images in the session registry, each with its own layer."""

    repository: str  # host/repository
    digests: dict[str, str]  # upstream tag -> digest


@pytest.fixture(scope="module")
def upstreams(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Upstreams:
    root = tmp_path_factory.mktemp("upstreams")
    repository = f"{registry.host}/faults-up/os"
    digests = {}
    for tag in ("1.0", "1.1", "1.2", "2.0", "2.1"):
        write_busybox_layout(root / tag, extra={"etc/release": tag.encode()})
        target = f"docker://{repository}:{tag}"
        run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{root / tag}", target])
        digests[tag] = str(skopeo_inspect(f"{repository}:{tag}")["Digest"])
    return Upstreams(repository, digests)


def write_catalog(root: Path, namespace: str, upstream: str, versions: dict[str, str]) -> Path:
    """One family, `os` (plus `latest`), re-published from `upstream` (version -> digest,
    or "" for a version pinned by `socle pins update`)."""
    lines = "".join(
        f'      "{version}": {{digest: "{digest}"}}\n' if digest else f'      "{version}": {{}}\n'
        for version, digest in versions.items()
    )
    root.mkdir(parents=True, exist_ok=True)
    path = root / "catalog.yaml"
    path.write_text(
        f"registry: 127.0.0.1:1\nnamespace: {namespace}\nimages:\n"
        f"  os:\n    upstream: {upstream}\n    aliases: [latest]\n    versions:\n{lines}"
    )
    return path


def generation(upstreams: Upstreams, number: int) -> dict[str, str]:
    """Versions 1.0 and 1.1 of `os`, pinned to the digests of generation `number`."""
    return {"1.0": upstreams.digests[f"{number}.0"], "1.1": upstreams.digests[f"{number}.1"]}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """socle's environment apart from the registry: its own cache, lock folder, no logins."""
    (tmp_path / "docker").mkdir()
    return {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "DOCKER_CONFIG": str(tmp_path / "docker"),
    }


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`socle ARGS` in the background, so a fault can land while it runs."""
    return subprocess.Popen(
        [sys.executable, "-m", "socle", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def upload_started(registry: LocalRegistry, namespace: str) -> Callable[[], bool]:
    """True once the registry has opened a new upload session for `namespace/os`."""
    marker = f'POST /v2/{namespace}/os/blobs/uploads/ HTTP/1.1" 202'
    before = registry.log().count(marker)
    return lambda: registry.log().count(marker) > before


def cut_uploads(registry: LocalRegistry, namespace: str) -> list[tuple[int, int]]:
    """(bytes received, bytes announced) of every upload PUT the registry saw cut off."""
    return [
        (int(m[2]), int(m[1]))
        for line in registry.log().splitlines()
        if "client disconnected during blob PUT" in line and f"vars.name={namespace}/os" in line
        if (m := re.search(r"contentLength=(\d+) copied=(\d+)", line)) is not None
    ]


def upload_sessions(registry: LocalRegistry, namespace: str) -> list[str]:
    """The upload session of every upload PUT the registry saw, answered or not."""
    pattern = re.compile(rf'"PUT /v2/{re.escape(namespace)}/os/blobs/uploads/([\w-]+)\?')
    return [m[1] for m in pattern.finditer(registry.log())]


# -- what the registry holds, read directly with skopeo -----------------------------------


def skopeo(command: str, *args: str, creds: str | None = None) -> str:
    """skopeo COMMAND against the plain-http registry, with `user:password` if given."""
    tls = "--src-tls-verify=false" if command == "copy" else "--tls-verify=false"
    login = [("--src-creds" if command == "copy" else "--creds"), creds] if creds else []
    return run(["skopeo", command, tls, *login, *args]).stdout


def published(
    registry: LocalRegistry, namespace: str, work: Path, *, creds: str | None = None
) -> dict[str, str]:
    """Every tag of `namespace/os` and its digest; each manifest must be whole.

    skopeo copies every distinct manifest with all its blobs (checking their
    digests), so a tag pointing to a manifest with a missing blob fails here.
    """
    repository = f"{registry.host}/{namespace}/os"
    listing = httpx.get(f"http://{registry.host}/v2/{namespace}/os/tags/list")
    if listing.status_code == 404:  # no manifest at all yet: distribution knows no such name
        return {}
    listed = json.loads(skopeo("list-tags", f"docker://{repository}", creds=creds))
    tags = {
        tag: str(
            json.loads(skopeo("inspect", f"docker://{repository}:{tag}", creds=creds))["Digest"]
        )
        for tag in listed["Tags"]
    }
    work.mkdir(parents=True)
    for digest in set(tags.values()):
        folder = work / digest.removeprefix("sha256:")
        skopeo("copy", f"docker://{repository}@{digest}", f"dir:{folder}", creds=creds)
    return tags


def assert_one_generation(tags: dict[str, str], versions: dict[str, str]) -> None:
    """The family's tags are those of `versions` exactly: floating tags with their owner."""
    owner = versions["1.1"]  # the highest version holds `1` and `latest`
    assert tags == {"1.0": versions["1.0"], "1.1": owner, "1": owner, "latest": owner}


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


# -- the faults -------------------------------------------------------------------------


def test_latency_slows_pins_a_push_and_a_tag_move_but_each_completes(
    proxy: Proxy,
    registry: LocalRegistry,
    upstreams: Upstreams,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    env["SOCLE_REGISTRY"] = proxy.host
    upstream = f"{proxy.host}/faults-up/os"  # through the proxy too: pins and copies
    catalog = write_catalog(tmp_path, "lat", upstream, {"1.0": "", "1.1": ""})
    assert socle("pins", "update", "-c", str(catalog), env=env).returncode == 0
    first = socle("build", "-c", str(catalog), env=env)
    assert first.returncode == 0, first.stderr
    versions = {v: upstreams.digests[v] for v in ("1.0", "1.1")}
    assert_one_generation(published(registry, "lat", tmp_path / "check1"), versions)

    proxy.add("latency", "downstream", latency=300)
    started = time.monotonic()
    assert httpx.get(f"http://{proxy.host}/v2/").status_code == 200
    assert time.monotonic() - started >= 0.3  # the toxic is on the path
    # A new version takes `1` and `latest`: pins, a push, then a tag move, all slowed.
    catalog = write_catalog(tmp_path, "lat", upstream, {"1.0": "", "1.1": "", "1.2": ""})
    pinned = socle("pins", "update", "-c", str(catalog), env=env)
    assert pinned.returncode == 0, pinned.stderr
    assert "1 pin(s) changed" in pinned.stdout
    started = time.monotonic()
    second = socle("build", "-c", str(catalog), env=env)
    assert second.returncode == 0, second.stderr
    assert "1 built, 2 current, 0 failed" in second.stdout
    tags = published(registry, "lat", tmp_path / "check2")
    assert tags["1"] == tags["latest"] == tags["1.2"] == upstreams.digests["1.2"]
    assert proxy.toxics() == ["latency"]


def test_a_connection_reset_mid_upload_is_retried_with_a_new_session(
    proxy: Proxy,
    registry: LocalRegistry,
    upstreams: Upstreams,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    env["SOCLE_REGISTRY"] = proxy.host
    versions = generation(upstreams, 1)
    catalog = write_catalog(tmp_path, "rst", upstreams.repository, versions)
    proxy.add("bandwidth", rate=LAYER_RATE)
    started = upload_started(registry, "rst")
    build = start("build", "-c", str(catalog), env=env)
    wait_for(started, 30, "the first upload")
    time.sleep(0.3)  # the layer's PUT is on the wire
    reset = proxy.add("reset_peer", timeout=0)  # every connection reset, new ones too
    time.sleep(0.3)
    proxy.remove(reset)
    result = finish(build)

    assert result.returncode == 0, result.stderr
    no_traceback(result)
    assert "2 built, 0 current, 0 failed" in result.stdout
    cut = cut_uploads(registry, "rst")
    assert cut and all(0 < got < size for got, size in cut)  # it did land mid-body
    sessions = upload_sessions(registry, "rst")
    assert len(sessions) == len(set(sessions))  # no session was sent a second PUT
    assert_one_generation(published(registry, "rst", tmp_path / "check"), versions)


def test_stalled_connections_fail_the_run_with_one_message_then_a_rerun_completes(
    proxy: Proxy,
    registry: LocalRegistry,
    upstreams: Upstreams,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    env["SOCLE_REGISTRY"] = proxy.host
    old = generation(upstreams, 1)
    first = socle(
        "build", "-c", str(write_catalog(tmp_path, "stall", upstreams.repository, old)), env=env
    )
    assert first.returncode == 0, first.stderr
    new = generation(upstreams, 2)
    catalog = write_catalog(tmp_path, "stall", upstreams.repository, new)
    proxy.add("bandwidth", rate=LAYER_RATE)
    started = upload_started(registry, "stall")
    build = start("build", "-c", str(catalog), env=env)
    wait_for(started, 30, "the first upload")
    time.sleep(0.3)
    # No byte gets through and each connection is closed after 200 ms, until removed.
    stall = proxy.add("timeout", timeout=200)
    result = finish(build)
    proxy.remove(stall)

    assert result.returncode == 1, result.stdout + result.stderr
    no_traceback(result)
    assert f"cannot reach the registry at http://{proxy.host}/v2/stall/os/" in result.stderr
    assert "2 image(s) not published: os:1.0 (failed), os:1.1 (failed)" in result.stderr
    # Nothing half-published: the old generation, whole, under every tag.
    assert_one_generation(published(registry, "stall", tmp_path / "after-fault"), old)

    rerun = socle("build", "-c", str(catalog), env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert "2 built, 0 current, 0 failed" in rerun.stdout
    assert_one_generation(published(registry, "stall", tmp_path / "after-rerun"), new)


def test_a_bandwidth_limit_is_in_the_time_socle_reports(
    proxy: Proxy,
    registry: LocalRegistry,
    upstreams: Upstreams,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    env["SOCLE_REGISTRY"] = proxy.host
    version = {"1.0": upstreams.digests["1.0"]}
    catalog = write_catalog(tmp_path, "bw", upstreams.repository, version)
    manifest = json.loads(skopeo("inspect", "--raw", f"docker://{upstreams.repository}:1.0"))
    uploaded = sum(int(d["size"]) for d in [manifest["config"], *manifest["layers"]])
    rate = 400  # KB/s, toxiproxy's KB being 1000 bytes
    proxy.add("bandwidth", rate=rate)
    result = socle("build", "-c", str(catalog), "--events", "json", env=env)

    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    seconds = next(e["socle.seconds"] for e in events if e["event.action"] == "built")
    floor = uploaded / (rate * 1000)
    print(f"{uploaded} bytes at {rate} KB/s: socle reports {seconds:.2f} s (floor {floor:.2f} s)")
    assert floor <= seconds < floor + 5
    assert published(registry, "bw", tmp_path / "check") == {
        "1.0": version["1.0"],
        "1": version["1.0"],
        "latest": version["1.0"],
    }


def test_a_registry_stopped_mid_push_is_one_message_and_a_restart_lets_a_rerun_complete(
    toxiproxy: Toxiproxy, upstreams: Upstreams, env: dict[str, str], tmp_path: Path
) -> None:
    own = LocalRegistry(tmp_path / "own")
    proxy = toxiproxy.proxy("stopped", own.host)
    try:
        env["SOCLE_REGISTRY"] = proxy.host
        versions = generation(upstreams, 1)
        catalog = write_catalog(tmp_path, "stop", upstreams.repository, versions)
        proxy.add("bandwidth", rate=LAYER_RATE)
        started = upload_started(own, "stop")
        build = start("build", "-c", str(catalog), env=env)
        wait_for(started, 30, "the first upload")
        time.sleep(0.3)
        own.stop()
        result = finish(build)
        own.start()  # same port, same storage

        assert result.returncode == 1, result.stdout + result.stderr
        no_traceback(result)
        assert f"cannot reach the registry at http://{proxy.host}/v2/stop/os/" in result.stderr
        # Whatever got in is whole; no floating tag exists without the whole family.
        tags = published(own, "stop", tmp_path / "after-stop")
        assert not {"1", "latest"} & tags.keys()

        # The rerun, with the registry restarted under it once more, within socle's retries.
        started = upload_started(own, "stop")
        build = start("build", "-c", str(catalog), env=env)
        wait_for(started, 30, "the first upload of the rerun")
        time.sleep(0.3)
        own.stop()
        own.start()
        rerun = finish(build)
        assert rerun.returncode == 0, rerun.stderr
        assert "0 failed" in rerun.stdout
        assert_one_generation(published(own, "stop", tmp_path / "after-rerun"), versions)
    finally:
        toxiproxy.delete(proxy)
        own.stop()


def login(env: dict[str, str], host: str, user: str, password: str) -> None:
    """What `docker login` leaves in DOCKER_CONFIG/config.json."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = Path(env["DOCKER_CONFIG"]) / "config.json"
    config.write_text(json.dumps({"auths": {host: {"auth": auth}}}))


def htpasswd(path: Path, user: str, password: str) -> None:
    path.write_bytes(f"{user}:".encode() + bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)))


def test_credentials_revoked_mid_run_are_one_line_with_the_fix_and_nothing_half_published(
    toxiproxy: Toxiproxy, upstreams: Upstreams, env: dict[str, str], tmp_path: Path
) -> None:
    users = tmp_path / "htpasswd"
    htpasswd(users, "ops", "first")
    own = LocalRegistry(tmp_path / "guarded", htpasswd=users)
    proxy = toxiproxy.proxy("guarded", own.host)
    try:
        env["SOCLE_REGISTRY"] = proxy.host
        login(env, proxy.host, "ops", "first")
        old = generation(upstreams, 1)
        first = socle(
            "build", "-c", str(write_catalog(tmp_path, "auth", upstreams.repository, old)), env=env
        )
        assert first.returncode == 0, first.stderr

        new = generation(upstreams, 2)
        catalog = write_catalog(tmp_path, "auth", upstreams.repository, new)
        proxy.add("bandwidth", rate=LAYER_RATE)
        started = upload_started(own, "auth")
        build = start("build", "-c", str(catalog), env=env)
        wait_for(started, 30, "the first upload")
        htpasswd(users, "ops", "second")  # the password is rotated under the running build
        result = finish(build)

        assert result.returncode == 1, result.stdout + result.stderr
        no_traceback(result)
        refused = (
            f"authentication to {proxy.host} failed:"
            " the registry refused the configured credentials"
        )
        assert refused in result.stderr
        assert f"docker login {proxy.host}" in result.stderr
        after = published(own, "auth", tmp_path / "after-fault", creds="ops:second")
        assert_one_generation(after, old)

        # Between two commands: signing with the revoked password is one line, no signature.
        env["SOCLE_PASSWORD"] = "faults"
        assert socle("keygen", "--out", str(tmp_path / "ops"), env=env).returncode == 0
        exact = f"{proxy.host}/auth/os:1.1"
        signed = socle("sign", "--key", str(tmp_path / "ops.key"), exact, env=env)
        assert signed.returncode == 1, signed.stdout + signed.stderr
        no_traceback(signed)
        assert signed.stderr.splitlines() == [refused, f"hint: run `docker login {proxy.host}`"]
        assert published(own, "auth", tmp_path / "after-sign", creds="ops:second").keys() == {
            "1.0",
            "1.1",
            "1",
            "latest",  # no sha256-....sig tag
        }

        login(env, proxy.host, "ops", "second")  # the fix the message names
        rerun = socle("build", "-c", str(catalog), env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert "2 built, 0 current, 0 failed" in rerun.stdout
        assert_one_generation(
            published(own, "auth", tmp_path / "after-rerun", creds="ops:second"), new
        )
    finally:
        toxiproxy.delete(proxy)
        own.stop()


def test_a_registry_lost_inside_the_tag_phase_leaves_a_record_the_rerun_completes(
    proxy: Proxy,
    registry: LocalRegistry,
    upstreams: Upstreams,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    env["SOCLE_REGISTRY"] = proxy.host
    # Versions 1.0 and 2.0 each own floating tags (`1`; `2` and `latest`), so the family's
    # moves come in two groups with a `tagged` event between them: the fault lands there.
    digests = upstreams.digests
    old = {"1.0": digests["1.0"], "2.0": digests["1.1"]}
    new = {"1.0": digests["2.0"], "2.0": digests["2.1"]}
    first = socle(
        "build", "-c", str(write_catalog(tmp_path, "tagph", upstreams.repository, old)), env=env
    )
    assert first.returncode == 0, first.stderr
    catalog = write_catalog(tmp_path, "tagph", upstreams.repository, new)
    # Every request waits 500 ms on its way to the registry, so the registry can be gone,
    # as soon as socle says a variant's tags moved, before the next move arrives. (Added
    # now: a toxic takes tens of ms to add, longer than socle's whole tag phase.)
    proxy.add("latency", "upstream", latency=500)
    build = start("build", "-c", str(catalog), "--events", "json", env=env)
    assert build.stdout is not None
    events = (json.loads(line) for line in build.stdout)
    moved = next(e for e in events if e["event.action"] == "tagged")
    proxy.enable(False)  # not a toxic: adding one would flush the next move through
    result = finish(build)
    env["SOCLE_REGISTRY"] = registry.host  # re-enabled, the proxy may listen elsewhere

    assert result.returncode == 1, result.stdout + result.stderr
    no_traceback(result)
    assert f"cannot reach the registry at http://{proxy.host}/v2/tagph/" in result.stderr
    tags = published(registry, "tagph", tmp_path / "after-fault")
    assert {tags["1.0"], tags["2.0"]} == {new["1.0"], new["2.0"]}  # exact tags: accepted images
    # Half-moved, and each variant whole: the one socle announced moved, the other did not.
    owners = {"os:1.0": ("1",), "os:2.0": ("2", "latest")}
    done = moved["socle.key"]
    version = done.removeprefix("os:")
    assert all(tags[t] == new[version] for t in owners[done]), tags
    (other,) = set(owners) - {done}
    assert all(tags[t] == old[other.removeprefix("os:")] for t in owners[other]), tags
    plan = socle("plan", "-c", str(catalog), env=env)
    assert "tagph/os: an interrupted run left its floating tags half-moved" in plan.stdout

    rerun = socle("build", "-c", str(catalog), env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert "0 built, 2 current, 0 failed" in rerun.stdout
    after = published(registry, "tagph", tmp_path / "after-rerun")
    assert after == {
        "1.0": new["1.0"],
        "1": new["1.0"],
        "2.0": new["2.0"],
        "2": new["2.0"],
        "latest": new["2.0"],
    }


def lossy(proxy: Proxy, operation: Callable[[], T], seconds: float = 0.35) -> T:
    """`operation()` while every answer is lost (its connection reset) for `seconds`.

    socle's backoff starts at 0.2 s, so the first two attempts are lost: the
    registry did the work and the client never heard.
    """
    toxic = proxy.add("reset_peer", "downstream", timeout=0)
    timer = threading.Timer(seconds, proxy.remove, [toxic])
    timer.start()
    try:
        return operation()
    finally:
        timer.join()


def completed(registry: LocalRegistry, method: str, path: str) -> int:
    """Requests `METHOD PATH...` the registry answered with a 2xx (its access log)."""
    pattern = re.compile(rf'"{method} {re.escape(path)}\S* HTTP/1\.1" 2\d\d ')
    return sum(1 for line in registry.log().splitlines() if pattern.search(line))


def test_lost_answers_are_repeated_where_safe_and_a_stored_upload_is_not_sent_again(
    proxy: Proxy, registry: LocalRegistry, tmp_path: Path
) -> None:
    repo = Reference(proxy.host, "lost/os")
    layer = os.urandom(300_000)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    uploads = "/v2/lost/os/blobs/uploads/"
    with RegistryClient() as client, ThreadPoolExecutor(1) as pool:
        # The layer's PUT completes at the registry, and its answer is lost on the way back.
        bandwidth = proxy.add("bandwidth", rate=300)  # the PUT lasts about 1 s
        started = upload_started(registry, "lost")
        upload = pool.submit(client.upload_blob, repo, sha256_digest(layer), layer)
        wait_for(started, 10, "the upload session")
        time.sleep(0.2)  # the session's answer is back; the layer is on the wire
        lost = proxy.add("reset_peer", "downstream", timeout=0)
        wait_for(lambda: completed(registry, "PUT", uploads) == 1, 10, "the layer stored")
        proxy.remove(lost)
        upload.result(timeout=30)  # ...but found by a HEAD once the answer was lost
        proxy.remove(bandwidth)
        assert completed(registry, "PUT", uploads) == 1  # not sent again...
        assert completed(registry, "HEAD", f"/v2/lost/os/blobs/{sha256_digest(layer)}") >= 1
        client.upload_blob(repo, sha256_digest(config), config)

        # Manifest PUTs by digest and by tag are repeated: the same bytes, the same result.
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256_digest(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha256_digest(layer),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        digest = sha256_digest(manifest)
        lossy(proxy, lambda: client.put_manifest(repo.with_digest(digest), manifest, OCI_MANIFEST))
        lossy(proxy, lambda: client.tag(repo.with_digest(digest), "1"))
    assert completed(registry, "PUT", f"/v2/lost/os/manifests/{digest}") >= 2
    assert completed(registry, "PUT", "/v2/lost/os/manifests/1") >= 2

    with RegistryClient() as reader:  # nothing cached: every read goes to the registry
        found = lossy(proxy, lambda: reader.head_manifest(repo.with_tag("1")))
        assert found is not None and found.digest == digest
        assert lossy(proxy, lambda: reader.get_manifest(repo.with_digest(digest))).data == manifest
        assert lossy(proxy, lambda: reader.get_blob(repo, sha256_digest(layer))) == layer
    assert completed(registry, "GET", f"/v2/lost/os/blobs/{sha256_digest(layer)}") >= 2
    assert skopeo("inspect", f"docker://{registry.host}/lost/os:1")
