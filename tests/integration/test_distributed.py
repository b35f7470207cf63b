"""The distributed run, as a CI engine's agents do it, proven on this machine.

Each job is `socle build --only KEY --no-cascade [--expect-parent DIGEST]
--digest-file F` on an agent of its own (its own data, cache, temporary and
image storage folders: another machine), the jobs of one graph level start at
once, the engine passes each child the digest its parent's job wrote, and
`socle promote` ends the run. The registry is the only shared state. The
result must be what one `socle build` publishes, and every job must be safe to
retry, to start too early, or to start on the wrong parent.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from socle.process import run
from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import socle
from tests.integration.images import write_busybox_layout

pytestmark = pytest.mark.integration

FINGERPRINT = "io.github.socle.fingerprint"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@dataclass
class Agent:
    """One CI agent: a machine of its own, sharing nothing with the others but the registry."""

    root: Path
    registry: str

    def env(self) -> dict[str, str]:
        storage = self.root / "storage.conf"
        if not storage.exists():
            self.root.mkdir(parents=True)
            storage.write_text(
                '[storage]\ndriver = "overlay"\n'
                f'graphroot = "{self.root / "images"}"\nrunroot = "{self.root / "run"}"\n'
            )
            (self.root / "tmp").mkdir()
        return {
            "SOCLE_REGISTRY": self.registry,
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "TMPDIR": str(self.root / "tmp"),
            "CONTAINERS_STORAGE_CONF": str(storage),
        }


@dataclass
class Result:
    """A finished job: its exit code, its output, the digest it left, and what it built."""

    key: str
    code: int
    stdout: str
    stderr: str
    digest: str | None
    seconds: float
    built: dict[str, float] = field(default_factory=dict)  # key -> the build's own seconds


@dataclass
class Engine:
    """What a CI engine does for socle: run one job per variant, pass digests down."""

    catalog: Path
    agents: list[Agent]
    digests: dict[str, str] = field(default_factory=dict)  # key -> digest its job wrote
    runs: int = 0

    def start(self, key: str, parent: str | None = None, *, expect: str | None = None) -> Job:
        """Start KEY's job on the next agent, expecting `expect` or its parent's digest."""
        agent = self.agents[self.runs % len(self.agents)]
        self.runs += 1
        digest_file = agent.root / f"digest-{self.runs}.txt"
        argv = ["build", "-c", str(self.catalog), "--only", key, "--no-cascade"]
        expected = expect or (self.digests.get(parent) if parent else None)
        if expected:
            argv += ["--expect-parent", expected]
        argv += ["--digest-file", str(digest_file), "--events", "json"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "socle", *argv],
            env={**os.environ, **agent.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Job(key, proc, digest_file, time.monotonic())

    def level(self, jobs: Sequence[tuple[str, str | None]]) -> list[Result]:
        """Start every (key, parent) job at once, wait for all; record the digests they wrote."""
        started = [self.start(key, parent) for key, parent in jobs]
        results = [job.wait() for job in started]
        for result in results:
            if result.code == 0 and result.digest:
                self.digests[result.key] = result.digest
        return results

    def promote(self) -> subprocess.CompletedProcess[str]:
        return socle("promote", "-c", str(self.catalog), env=self.agents[0].env())


@dataclass
class Job:
    key: str
    proc: subprocess.Popen[str]
    digest_file: Path
    started: float

    def wait(self) -> Result:
        stdout, stderr = self.proc.communicate(timeout=600)
        seconds = time.monotonic() - self.started
        digest = self.digest_file.read_text().strip() if self.digest_file.exists() else None
        events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        built = {e["socle.key"]: e["socle.seconds"] for e in events if e["event.action"] == "built"}
        return Result(self.key, self.proc.returncode, stdout, stderr, digest, seconds, built)


def write_catalog(root: Path, namespace: str, upstream: dict[str, str], families: str) -> Path:
    """`os` (two upstream versions) and the `families` YAML built on it."""
    versions = "\n".join(
        f'      "{version}": {{digest: "{digest.split("@")[1]}"}}'
        for version, digest in upstream.items()
    )
    image = next(iter(upstream.values())).split("@")[0]
    path = root / "catalog.yaml"
    path.write_text(
        "registry: 127.0.0.1:1\n"
        f"namespace: {namespace}\n"
        "images:\n"
        "  os:\n"
        f"    upstream: {image}\n"
        "    aliases: [latest]\n"
        "    versions:\n"
        f"{versions}\n" + textwrap.indent(textwrap.dedent(families), "  ")
    )
    return path


def context(root: Path, name: str, body: str) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "Dockerfile").write_text(f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n{body}\n")


def push_os(registry: LocalRegistry, root: Path, namespace: str) -> dict[str, str]:
    """Two upstream OS images (3.18 and 3.19, different content): version -> `repo@digest`."""
    found = {}
    for version in ("3.18", "3.19"):
        layout = root / f"os-{version}"
        write_busybox_layout(layout, extra={"etc/os-version": f"{version}\n".encode()})
        ref = f"{registry.host}/{namespace}-up/os:{version}"
        run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"])
        found[version] = f"{registry.host}/{namespace}-up/os@{inspect(ref)['Digest']}"
    return found


def inspect(ref: str) -> Any:
    return json.loads(run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"]).stdout)


def digest_of(ref: str) -> str | None:
    """The digest skopeo finds at `ref`, or None when the tag does not exist."""
    found = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def plan(catalog: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = socle("plan", "-c", str(catalog), "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {item["key"]: item for item in json.loads(result.stdout)["images"]}


def registry_tags(host: str, repositories: Sequence[str]) -> dict[str, dict[str, str]]:
    """Every tag of each repository and its digest, straight from the registry's API."""
    found: dict[str, dict[str, str]] = {}
    for repository in repositories:
        listed = httpx.get(f"http://{host}/v2/{repository}/tags/list").json()["tags"] or []
        found[repository] = {tag: digest_of(f"{host}/{repository}:{tag}") or "" for tag in listed}
    return found


def writes(registry: LocalRegistry) -> list[str]:
    """Every request of the registry's access log that changes something."""
    verbs = ('"PUT ', '"POST ', '"PATCH ', '"DELETE ')
    return [line for line in registry.log().splitlines() if any(v in line for v in verbs)]


def last_lines(stderr: str) -> list[str]:
    """The error a job ended with: its message and its hint (no traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert not any("Traceback" in line for line in lines), stderr
    return lines[-2:]


FAMILIES = """\
tool:
  parents: [os]
  default_parent: os:3.19
  versions:
    "1.0": {args: {FLAVOUR: old}}
    "1.1": {args: {FLAVOUR: new}}
other:
  parents: [os]
  default_parent: os:3.19
  aliases: [latest]
  versions: ["9"]
app:
  parents: ["tool:1.1-os3.18", "tool:1.1-os3.19"]
  versions: ["3"]
"""


@pytest.fixture
def catalog(registry: LocalRegistry, tmp_path: Path) -> Path:
    """Four families on three levels, every level at least two variants wide."""
    upstream = push_os(registry, tmp_path, "dist")
    context(tmp_path, "tool", "ARG FLAVOUR\nRUN echo ${FLAVOUR} > /tool")
    context(tmp_path, "other", "RUN echo other > /other")
    context(tmp_path, "app", "RUN echo app > /app")
    return write_catalog(tmp_path, "dist", upstream, FAMILIES)


def test_levels_of_concurrent_agents_then_promote_publish_what_one_build_does(
    registry: LocalRegistry, catalog: Path, tmp_path: Path
) -> None:
    agents = [Agent(tmp_path / f"agent{i}", registry.host) for i in range(6)]
    engine = Engine(catalog, agents)
    items = plan(catalog, agents[0].env())
    levels: dict[int, list[tuple[str, str | None]]] = {}
    for key, item in items.items():  # what any engine reads: key, parents, level
        levels.setdefault(item["level"], []).append((key, (item["parents"] or [None])[0]))
    assert [len(levels[n]) for n in sorted(levels)] == [2, 6, 2]

    # Too early: the app's parent is not published yet.
    early = engine.start("app:3-tool1.1-os3.19").wait()
    assert early.code == 1 and early.digest is None
    assert last_lines(early.stderr) == [
        "app:3-tool1.1-os3.19: its parent tool:1.1-os3.19 is not published yet",
        "hint: the job that builds tool:1.1-os3.19 must succeed first",
    ]

    roots = engine.level(levels[0])
    assert [r.code for r in roots] == [0, 0], [r.stderr for r in roots]
    for result in roots:
        ref = f"{registry.host}/dist/{result.key}"
        assert result.digest == digest_of(ref), "the digest file holds the published digest"

    # A retry after success: nothing built, the same digest, not one write to the registry.
    before = writes(registry)
    retry = engine.start("os:3.18").wait()
    assert retry.code == 0, retry.stderr
    assert retry.built == {} and retry.digest == engine.digests["os:3.18"]
    assert writes(registry) == before, "a retried job wrote to the registry"

    # The wrong parent: a job handed another digest than its parent's refuses to build.
    wrong = engine.start("tool:1.0-os3.18", expect=engine.digests["os:3.19"]).wait()
    assert wrong.code == 1 and wrong.digest is None
    assert last_lines(wrong.stderr) == [
        f"tool:1.0-os3.18: its parent os:3.18 is published as {engine.digests['os:3.18']}, "
        f"not {engine.digests['os:3.19']} as the pipeline expects",
        "hint: os:3.18 was rebuilt since this pipeline started: "
        "run the pipeline again from that parent",
    ]

    # Level 1 without tool:1.0-os3.19: promote moves os and other, and nothing of tool or app.
    held = "tool:1.0-os3.19"
    first = engine.level([job for job in levels[1] if job[0] != held])
    assert all(r.code == 0 for r in first), [r.stderr for r in first if r.code]
    assert {k for r in first for k in r.built} == {k for k, _ in levels[1]} - {held}
    for result in first:
        assert result.built.keys() == {result.key}, "a job builds exactly its variant"
    assert digest_of(f"{registry.host}/dist/os:3") is None, "no job moved a floating tag"
    refused = engine.promote()
    assert refused.returncode == 1
    blocked = [line for line in refused.stderr.splitlines() if ": not promoted, " in line]
    assert [line.split(":")[1].strip() for line in blocked] == ["tool", "app"], refused.stderr
    assert refused.stderr.splitlines()[-1] == "2 family(ies) not promoted", refused.stderr
    assert f"{held} (" in blocked[0]
    ns = f"{registry.host}/dist"
    assert digest_of(f"{ns}/os:latest") == engine.digests["os:3.19"]
    assert digest_of(f"{ns}/other:latest") == engine.digests["other:9-os3.19"]
    for tag in ("1", "1.1", "1-os3", "1.1-os3", "1-os3.18", "1-os3.19"):
        assert digest_of(f"{ns}/tool:{tag}") is None, f"tool:{tag} moved in a held family"
    assert digest_of(f"{ns}/tool:1.1-os3.19") == engine.digests["tool:1.1-os3.19"]

    (late,) = engine.level([(held, "os:3.19")])
    assert late.code == 0, late.stderr
    final = engine.level(levels[2])
    assert all(r.code == 0 for r in final), [r.stderr for r in final]
    done = engine.promote()
    assert done.returncode == 0, done.stderr

    # The same catalog in one `socle build`, into a second registry.
    reference = LocalRegistry(tmp_path / "reference")
    try:
        alone = Agent(tmp_path / "alone", reference.host)
        single = socle("build", "-c", str(catalog), env=alone.env())
        assert single.returncode == 0, single.stderr
        compare(plan(catalog, agents[0].env()), plan(catalog, alone.env()), registry, reference)
    finally:
        reference.stop()
    print(f"\njob wall times: {job_times(roots + first + [late] + final)}")


def compare(
    distributed: dict[str, dict[str, Any]],
    single: dict[str, dict[str, Any]],
    registry: LocalRegistry,
    reference: LocalRegistry,
) -> None:
    """The same variants, fingerprints, tags and images, built apart or on one machine.

    socle's builds are reproducible (one SOURCE_DATE_EPOCH per day, the layers a
    build adds normalised, the parent's layers its very blobs), so every image a
    pipeline's jobs built is the image one `socle build` made: the same layers and
    the same config but for the name of the registry, which differs here because
    the two runs published to two registries (and so do the digests).
    """
    assert distributed.keys() == single.keys()
    for key, item in distributed.items():
        assert item["action"] == single[key]["action"] == "skip", key
        assert item["fingerprint"] == single[key]["fingerprint"], key
    repositories = sorted({f"dist/{item['name']}" for item in distributed.values()})
    ours = registry_tags(registry.host, repositories)
    theirs = registry_tags(reference.host, repositories)
    for repository in repositories:
        assert ours[repository].keys() == theirs[repository].keys(), repository
    names = {reference.host: registry.host} | {
        single[key]["published_digest"]: item["published_digest"]
        for key, item in distributed.items()
    }

    def ours(text: str) -> str:
        for theirs, mine in names.items():
            text = text.replace(theirs, mine)
        return text

    for key, item in distributed.items():
        if item["parents"] == []:
            assert item["published_digest"] == single[key]["published_digest"], key
            continue
        mine, other = (annotations(r.host, key) for r in (registry, reference))
        assert mine[FINGERPRINT] == other[FINGERPRINT] == item["fingerprint"], key
        assert mine[BASE_DIGEST] == distributed[item["parent"]]["published_digest"], key
        assert other[BASE_DIGEST] == single[item["parent"]]["published_digest"], key
        # Byte for byte but for the registry's name (the two runs used two registries), and
        # so the parents' digests.
        assert mine == {k: ours(v) for k, v in other.items()}, key
        assert config(registry.host, key) == ours(config(reference.host, key)), key
        assert layers(registry.host, key) == layers(reference.host, key), key
        for host in (registry.host, reference.host):  # built on its parent's very layers
            assert layers(host, item["parent"]) == layers(host, key)[:-1], key


def config(host: str, key: str) -> str:
    name, tag = key.split(":")
    ref = f"docker://{host}/dist/{name}:{tag}"
    return run(["skopeo", "inspect", "--config", "--raw", "--tls-verify=false", ref]).stdout


def raw_manifest(host: str, key: str) -> Any:
    name, tag = key.split(":")
    ref = f"docker://{host}/dist/{name}:{tag}"
    return json.loads(run(["skopeo", "inspect", "--raw", "--tls-verify=false", ref]).stdout)


def annotations(host: str, key: str) -> dict[str, str]:
    """socle's annotations on variant `key`'s manifest, the registry's host spelled HOST."""
    found = raw_manifest(host, key)["annotations"]
    return {k: v.replace(host, "HOST") for k, v in found.items()}


def layers(host: str, key: str) -> list[str]:
    return [layer["digest"] for layer in raw_manifest(host, key)["layers"]]


def job_times(results: Sequence[Result]) -> str:
    return ", ".join(f"{r.key} {r.seconds:.1f} s" for r in results)


class Upstream(http.server.ThreadingHTTPServer):
    """What a RUN step downloads: answers 503 while `failing`, so a build fails for real."""

    failing = False


class Download(http.server.BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        code = 503 if self.server.failing else 200
        self.send_response(code)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"v2\n")

    def log_message(self, *_: object) -> None: ...


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream(("127.0.0.1", 0), Download)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_one_variant_job_holds_its_family_until_promote(
    registry: LocalRegistry, tmp_path: Path, upstream: Upstream
) -> None:
    catalog = write_catalog(
        tmp_path,
        "hold",
        push_os(registry, tmp_path, "hold"),
        "other:\n  parents: [os]\n  default_parent: os:3.19\n  aliases: [latest]\n"
        '  versions: ["9"]\n',
    )
    context(tmp_path, "other", "RUN echo other > /other")
    engine = Engine(catalog, [Agent(tmp_path / f"agent{i}", registry.host) for i in range(2)])
    env = engine.agents[0].env()
    assert socle("build", "-c", str(catalog), env=env).returncode == 0
    ns = f"{registry.host}/hold/other"
    tags = ("9", "9-os3", "latest", "9-os3.18", "9-os3.19")
    old = {tag: digest_of(f"{ns}:{tag}") for tag in tags}
    assert old["9"] == old["latest"] == old["9-os3"] == old["9-os3.19"] != old["9-os3.18"]

    # Both variants of `other` go stale; its new Dockerfile downloads from `upstream`.
    port = upstream.server_address[1]
    context(tmp_path, "other", f"RUN /bin/busybox wget -q -O /other http://127.0.0.1:{port}/")
    items = plan(catalog, env)
    assert [k for k, i in items.items() if i["action"] == "build"] == [
        "other:9-os3.18",
        "other:9-os3.19",
    ]
    engine.digests.update({k: i["published_digest"] for k, i in items.items()})

    (first,) = engine.level([("other:9-os3.19", "os:3.19")])
    assert first.code == 0 and first.built.keys() == {"other:9-os3.19"}, first.stderr
    now = {tag: digest_of(f"{ns}:{tag}") for tag in tags}
    assert now == {**old, "9-os3.19": first.digest}, "only the exact tag moved"

    upstream.failing = True
    (failed,) = engine.level([("other:9-os3.18", "os:3.18")])
    assert failed.code == 1 and failed.digest is None
    assert "other:9-os3.18 (failed)" in failed.stderr, failed.stderr
    for why in ("failed", "missing"):
        refused = engine.promote()
        assert refused.returncode == 1
        assert "other: not promoted, 1 variant(s) not current: other:9-os3.18 (" in (
            refused.stderr
        ), f"{why}: {refused.stderr}"
        assert {tag: digest_of(f"{ns}:{tag}") for tag in tags} == now, "promote moved a tag"

    upstream.failing = False
    (second,) = engine.level([("other:9-os3.18", "os:3.18")])
    assert second.code == 0, second.stderr
    assert {tag: digest_of(f"{ns}:{tag}") for tag in tags} == {
        **now,
        "9-os3.18": second.digest,
    }, "a job left the floating tags to promote"
    promoted = engine.promote()
    assert promoted.returncode == 0, promoted.stderr
    new = first.digest
    assert {tag: digest_of(f"{ns}:{tag}") for tag in tags} == {
        "9": new,
        "9-os3": new,
        "latest": new,
        "9-os3.19": new,
        "9-os3.18": second.digest,
    }
    assert all(i["action"] == "skip" for i in plan(catalog, env).values())
