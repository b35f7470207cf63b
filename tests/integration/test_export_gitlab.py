"""The exported GitLab pipeline, run for real by gitlab-ci-local against the test registry.

gitlab-ci-local runs each job on its shell executor in its own copy of the
checkout (`--shell-isolation`, like a runner's build folders), passes the
dotenv reports down `needs:` and starts the jobs whose needs are met at once.
The result must equal what one `socle build` publishes: the same tags with
the same fingerprints, and a plan with nothing left to build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import Enterprise, LocalRegistry
from tests.integration.helpers import ENTERPRISE, ROOT, node, skopeo_inspect, socle

pytestmark = pytest.mark.integration

GITLAB_CI_LOCAL = ROOT / "tests" / "interop" / "gitlab-ci-local" / "node_modules" / ".bin"
FINGERPRINT = "io.github.socle.fingerprint"
# A timestamped line of gitlab-ci-local: `[20:36:11   11 ms] left-1-base1-36  starting shell (build)`
EVENT = re.compile(r"^\[(\d\d):(\d\d):(\d\d) [^\]]*\] (\S+) +(starting shell|finished in)")


def gitlab_ci_local() -> list[str]:
    script = GITLAB_CI_LOCAL / "gitlab-ci-local"
    if not script.exists():
        pytest.fail(f"{script} is missing: run `make interop`")
    if shutil.which("rsync") is None:  # how --shell-isolation copies each job's checkout
        pytest.fail("rsync is not installed (gitlab-ci-local needs it): apt-get install rsync")
    return [node(), str(script)]


@dataclass(frozen=True)
class Run:
    """One pipeline run: gitlab-ci-local's output, its wall time, when each job ran."""

    output: str
    seconds: float
    spans: dict[str, tuple[int, int]]  # job -> (started, finished), seconds of the day

    def passed(self) -> set[str]:
        return set(re.findall(r"^ PASS +\[[^\]]*\] (\S+)", self.output, re.M))

    def overlap(self, a: str, b: str) -> bool:
        return self.spans[a][0] < self.spans[b][1] and self.spans[b][0] < self.spans[a][1]


def spans(output: str) -> dict[str, tuple[int, int]]:
    seen: dict[str, list[int]] = {}
    for line in output.splitlines():
        found = EVENT.match(line)
        if found:
            hours, minutes, seconds, job, what = found.groups()
            at = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
            seen.setdefault(job, [at, at])[0 if what == "starting shell" else 1] = at
    first = min(s[0] for s in seen.values())  # a run across midnight stays ordered
    return {job: ((s[0] - first) % 86400, (s[1] - first) % 86400) for job, s in seen.items()}


def agent_env(tmp_path: Path, registry: str) -> dict[str, str]:
    """What each job's shell sees: socle of this checkout on PATH, caches of this test."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "socle").exists():
        pytest.fail(f"{bin_dir / 'socle'} is missing: run `make venv`")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SOCLE_REGISTRY": registry,
        "SOCLE_BUILDER": "buildah",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=socle", "-c", "user.email=socle@127.0.0.1", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def export(repo: Path, env: dict[str, str]) -> None:
    """`socle export gitlab` from the checkout's root into ci/, then commit it all."""
    result = subprocess.run(
        [sys.executable, "-m", "socle", "export", "gitlab", "-c", "catalog.yaml", "-o", "ci"],
        cwd=repo,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "catalog and its exported pipeline")


def run_pipeline(repo: Path, env: dict[str, str], *jobs: str) -> Run:
    command = [
        *gitlab_ci_local(),
        "--cwd",  # gitlab-ci-local takes a relative path only
        repo.name,
        "--file",
        "ci/.gitlab-ci.yml",
        "--shell-isolation",
        "--timestamps",
        "--no-color",
        *jobs,
    ]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=repo.parent,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return Run(output, seconds, spans(output))


def timed_build(catalog: Path, registry: str, env: dict[str, str]) -> float:
    """One `socle build` of the whole catalog: the baseline the pipeline is measured against."""
    started = time.monotonic()
    result = socle("build", "-c", str(catalog), "--registry", registry, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return time.monotonic() - started


def published(catalog: Path, registry: str, env: dict[str, str]) -> dict[str, str | None]:
    """Every tag of the catalog in `registry` (repository:tag) -> the fingerprint it carries.

    Tags socle derives only: a signed build's signature tags are not the catalog's.
    """
    listed = socle("tags", "-c", str(catalog), "--registry", registry, env=env)
    assert listed.returncode == 0, listed.stderr
    refs = set(listed.stdout.split())
    found: dict[str, str | None] = {}
    for repository in sorted({ref.rsplit(":", 1)[0] for ref in refs}):
        tags = json.loads(
            subprocess.run(
                ["skopeo", "list-tags", "--tls-verify=false", f"docker://{repository}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["Tags"]
        for tag in tags:
            if f"{repository}:{tag}" not in refs:
                continue
            manifest = skopeo_inspect(f"{repository}:{tag}", raw=True)
            name = repository.removeprefix(f"{registry}/")
            found[f"{name}:{tag}"] = manifest.get("annotations", {}).get(FINGERPRINT)
    return found


def assert_follows_graph(run: Run, pipeline: dict[str, object]) -> None:
    """Each job started after the jobs it needs had finished, promote after every one."""
    jobs = {k: v for k, v in pipeline.items() if isinstance(v, dict) and "script" in v}
    assert run.passed() == set(jobs), run.output[-4000:]
    for name, job in jobs.items():
        for need in job.get("needs", []):
            assert run.spans[name][0] >= run.spans[need["job"]][1], (name, need, run.spans)
    builds = [end for job, (_, end) in run.spans.items() if job != "promote"]
    assert run.spans["promote"][0] >= max(builds), run.spans


def assert_nothing_to_build(catalog: Path, env: dict[str, str]) -> None:
    plan = socle("plan", "-c", str(catalog), "--json", env=env)
    assert plan.returncode == 0, plan.stderr
    images = json.loads(plan.stdout)["images"]
    assert images and [i["action"] for i in images] == ["skip"] * len(images)


@pytest.fixture
def empty_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A registry of its own: the session's may already hold the example's `my/...`."""
    made = LocalRegistry(tmp_path / "pipeline-registry")
    yield made
    made.stop()


@pytest.fixture
def second_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """An empty registry of its own, for the `socle build` the pipeline is compared with."""
    other = LocalRegistry(tmp_path / "baseline-registry")
    yield other
    other.stop()


def busybox_catalog(repo: Path, upstream: str, namespace: str) -> Path:
    """base -> left -> leaf, and base -> right: left and right can build at once."""
    image, digest = upstream.split("@")
    for name in ("left", "right", "leaf"):
        (repo / name).mkdir(parents=True)
        (repo / name / "Dockerfile").write_text(
            f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nARG FLAVOUR\nRUN sleep 3 && echo {name} > /{name}\n"
        )
    catalog = repo / "catalog.yaml"
    catalog.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: {namespace}
            images:
              base:
                upstream: {image}
                versions:
                  "1.36": {{digest: "{digest}"}}
              left:
                parents: [base]
                versions:
                  "1": {{args: {{FLAVOUR: "a$b"}}}}
              right:
                parents: [base]
                versions: ["1"]
              leaf:
                parents: [left]
                versions: ["2"]
            """
        )
    )
    return catalog


def test_busybox_catalog_published_by_gitlab_ci_local_equals_one_socle_build(
    registry: LocalRegistry, second_registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    catalog = busybox_catalog(repo, busybox, "glab")
    env = agent_env(tmp_path, registry.host)
    export(repo, env)
    pipeline = yaml.safe_load((repo / "ci" / ".gitlab-ci.yml").read_text())

    run = run_pipeline(repo, env)
    baseline = timed_build(catalog, second_registry.host, env)
    print(f"\nbusybox catalog: gitlab-ci-local {run.seconds:.1f} s, socle build {baseline:.1f} s")

    assert_follows_graph(run, pipeline)
    assert run.overlap("left-1-base1-36", "right-1-base1-36"), run.spans
    # Each child was built on the digest its parent's dotenv report passed down.
    for job in ("base-1-36", "left-1-base1-36"):
        report = repo / ".gitlab-ci-local" / "artifacts" / job / ".gitlab-ci-reports" / "dotenv"
        variable, digest = (report / "socle-digest.env").read_text().strip().split("=")
        key = {"base-1-36": "base:1.36", "left-1-base1-36": "left:1-base1.36"}[job]
        name, tag = key.split(":")
        assert variable == "SOCLE_DIGEST_" + job.upper().replace("-", "_")
        assert digest == skopeo_inspect(f"{registry.host}/glab/{name}:{tag}")["Digest"]
    assert_nothing_to_build(catalog, env)
    ours = published(catalog, registry.host, env)
    assert ours == published(catalog, second_registry.host, env)
    assert len(ours) == 8 and all(
        ours[f"glab/{t}"] for t in ("left:1-base1.36", "leaf:2-left1-base1")
    )

    # A second run finds everything current: every job succeeds and builds nothing.
    again = run_pipeline(repo, env)
    assert again.passed() == run.passed()
    assert ": built sha256:" not in again.output
    assert published(catalog, registry.host, env) == ours


def test_child_pipeline_form_generates_the_pipeline_and_runs_it_downstream(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    """The dynamic form, run for real: the plan job's artifact is triggered as a child."""
    repo = tmp_path / "repo"
    catalog = busybox_catalog(repo, busybox, "glchild")
    env = agent_env(tmp_path, registry.host)
    export(repo, env)
    exported = (repo / "ci" / ".gitlab-ci.yml").read_text()
    shutil.copy(repo / "ci" / "child" / ".gitlab-ci.yml", repo / "ci" / ".gitlab-ci.yml")
    git(repo, "commit", "-q", "-am", "run the child-pipeline form")

    run = run_pipeline(repo, env)
    generated = repo / ".gitlab-ci-local" / "artifacts" / "plan" / "socle-pipeline"
    assert (generated / ".gitlab-ci.yml").read_text() == exported
    assert {"plan", "build"} <= run.passed(), run.output[-4000:]
    downstream = set(re.findall(r"^ PASS .*\[build\] -> (\S+)", run.output, re.M))
    jobs = {k for k, v in yaml.safe_load(exported).items() if isinstance(v, dict) and "script" in v}
    assert downstream == jobs, run.output[-4000:]
    assert_nothing_to_build(catalog, env)


def test_enterprise_example_from_empty_registry_to_published_through_the_pipeline(
    empty_registry: LocalRegistry, enterprise: Enterprise, tmp_path: Path
) -> None:
    """mmdebstrap bootstrap and apt builds, from this host's apt sources, as `make demo`.

    The baseline is the session's one `socle build` of the example (conftest's `enterprise`).
    """
    registry = empty_registry
    repo = tmp_path / "repo"
    shutil.copytree(ENTERPRISE, repo)
    catalog = repo / "catalog.yaml"
    env = agent_env(tmp_path, registry.host)
    export(repo, env)
    pipeline = yaml.safe_load((repo / "ci" / ".gitlab-ci.yml").read_text())

    run = run_pipeline(repo, env)
    print(
        f"\nenterprise example: gitlab-ci-local {run.seconds:.1f} s, "
        f"socle build {enterprise.seconds:.1f} s (signed)"
    )

    assert_follows_graph(run, pipeline)
    assert run.overlap("java-17-debian12", "python-3-11-debian12"), run.spans
    assert_nothing_to_build(catalog, env)
    ours = published(catalog, registry.host, env)
    assert len(ours) == 14 and all(ours.values())
    assert ours == published(catalog, enterprise.registry.host, env)
