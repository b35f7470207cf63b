"""`socle build` end to end: real registry, real builders, checked with skopeo."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.integration.conftest import LocalRegistry, free_port
from tests.integration.helpers import skopeo_inspect, socle

pytestmark = pytest.mark.integration

FINGERPRINT = "io.github.socle.fingerprint"
BASE_DIGEST = "org.opencontainers.image.base.digest"
BASE_NAME = "org.opencontainers.image.base.name"


def uploads(registry: LocalRegistry) -> int:
    """Blob upload sessions the registry has served so far (its access log)."""
    return registry.log().count("POST /v2/") - registry.log().count("mount=")


def manifest_puts(registry: LocalRegistry) -> int:
    return registry.log().count('"PUT /v2/') and sum(
        1 for line in registry.log().splitlines() if "PUT /v2/" in line and "/manifests/" in line
    )


def write_family(
    root: Path, namespace: str, upstream: str, *, leaf_step: str = "RUN echo leaf > /leaf"
) -> Path:
    image, digest = upstream.split("@")
    (root / "tool").mkdir(parents=True)
    (root / "tool" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOUR\nRUN echo ${FLAVOUR} > /tool\n"
    )
    (root / "leaf").mkdir()
    (root / "leaf" / "Dockerfile").write_text(
        f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n{leaf_step}\n"
    )
    path = root / "catalog.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: {namespace}
            images:
              base:
                upstream: {image}
                versions:
                  "1.36": {{digest: "{digest}"}}
              tool:
                parents: [base]
                default_parent: base:1
                aliases: [latest]
                versions:
                  "1.0": {{args: {{FLAVOUR: old}}}}
                  "1.1": {{args: {{FLAVOUR: new}}}}
              leaf:
                parents: ["tool:1.1-base1.36"]
                versions: ["2"]
            """
        )
    )
    return path


@pytest.mark.parametrize("builder", ["buildah", "docker"])
def test_family_is_published_with_every_tag_then_rebuilds_exactly_what_changed(
    builder: str,
    registry: LocalRegistry,
    busybox: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if builder == "docker":
        request.getfixturevalue("docker_daemon")
    catalog = write_family(tmp_path, f"fam-{builder}", busybox)
    env = {"SOCLE_REGISTRY": registry.host, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = socle("build", "-c", str(catalog), "--builder", builder, "-j", "2", env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "4 built, 0 current, 0 failed, 0 blocked" in first.stdout

    # Every tag the convention derives exists, and all tags of a variant share one digest.
    refs = socle("tags", "-c", str(catalog), env=env).stdout.split()
    # base 2 tags, tool:1.0 3, tool:1.1 7 (with `1` and `latest`), leaf 6 (one per tool:1.1 tag)
    assert len(refs) == 18
    digests = {ref: skopeo_inspect(ref)["Digest"] for ref in refs}
    ns = f"{registry.host}/fam-{builder}"
    assert (
        digests[f"{ns}/tool:latest"]
        == digests[f"{ns}/tool:1"]
        == digests[f"{ns}/tool:1.1-base1.36"]
    )
    assert (
        digests[f"{ns}/tool:1.1"]
        == digests[f"{ns}/tool:1-base1"]
        == digests[f"{ns}/tool:1.1-base1.36"]
    )
    assert digests[f"{ns}/tool:1.0"] != digests[f"{ns}/tool:1.1"]
    assert digests[f"{ns}/base:1.36"] == busybox.split("@")[1]  # re-published byte for byte

    # The records the planner reads back are on the manifest.
    leaf = skopeo_inspect(f"{ns}/leaf:2-tool1.1-base1.36", raw=True)["annotations"]
    assert leaf[BASE_DIGEST] == digests[f"{ns}/tool:1.1-base1.36"]
    assert leaf[BASE_NAME] == f"{ns}/tool:1.1-base1.36"
    assert leaf[FINGERPRINT].startswith("sha256:")
    assert leaf["org.opencontainers.image.version"] == "2"
    assert leaf["org.opencontainers.image.created"].endswith("Z")
    labels = skopeo_inspect(f"{ns}/leaf:2-tool1.1")["Labels"]
    assert labels[FINGERPRINT] == leaf[FINGERPRINT]

    # A second run builds nothing and uploads nothing.
    before_uploads, before_puts = uploads(registry), manifest_puts(registry)
    second = socle("build", "-c", str(catalog), "--builder", builder, env=env)
    assert second.returncode == 0, second.stderr
    assert "0 built, 4 current" in second.stdout
    assert (uploads(registry), manifest_puts(registry)) == (before_uploads, before_puts)

    # Touching the leaf's Dockerfile rebuilds exactly the leaf.
    dockerfile = tmp_path / "leaf" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo touched > /touched\n")
    plan = json.loads(socle("plan", "-c", str(catalog), "--json", env=env).stdout)
    assert {i["variant"]: i["reasons"] for i in plan["images"] if i["action"] == "build"} == {
        "2-tool1.1-base1.36": ["Dockerfile changed"]
    }
    third = socle("build", "-c", str(catalog), "--builder", builder, env=env)
    assert "1 built, 3 current" in third.stdout, third.stderr
    after = {ref: skopeo_inspect(ref)["Digest"] for ref in refs}
    changed = {ref for ref in refs if after[ref] != digests[ref]}
    assert changed == {ref for ref in refs if "/leaf:" in ref}
    assert len(changed) == 6


def test_failing_run_step_shows_the_log_and_publishes_nothing_of_it(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    catalog = write_family(tmp_path, "failing", busybox, leaf_step="RUN cat /no-such-file")
    env = {"SOCLE_REGISTRY": registry.host, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = socle("build", "-c", str(catalog), env=env)
    assert result.returncode == 1
    # The builder's local name is unique to the run: socle-build/<run token>/leaf:<tag>.
    assert re.search(
        r"build of socle-build/[0-9a-f]{8}/leaf:2-tool1\.1-base1\.36 failed at step", result.stderr
    ), result.stderr
    assert "/no-such-file" in result.stderr  # the failing command's own words
    assert "1 image(s) not published: leaf:2-tool1.1-base1.36 (failed)" in result.stderr
    assert "Traceback" not in result.stderr
    tags = httpx.get(f"http://{registry.host}/v2/failing/leaf/tags/list").json()
    assert not tags.get("tags")  # no exact tag, no alias
    siblings = httpx.get(f"http://{registry.host}/v2/failing/tool/tags/list").json()["tags"]
    assert "latest" in siblings and "1.0-base1.36" in siblings


def test_unreachable_registry_is_one_clear_message(busybox: str, tmp_path: Path) -> None:
    catalog = write_family(tmp_path, "nowhere", busybox)
    result = socle("build", "-c", str(catalog), env={"SOCLE_REGISTRY": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 1
    assert "cannot reach" in result.stderr.lower() or "unreachable" in result.stderr.lower()
    assert "socle up" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_credentials_are_refused_with_a_hint(busybox: str, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_bytes(b"ops:" + bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=5)) + b"\n")
    guarded = LocalRegistry(tmp_path / "guarded", htpasswd=htpasswd)
    try:
        config = tmp_path / "docker"
        config.mkdir()
        (config / "config.json").write_text(
            json.dumps({"auths": {guarded.host: {"auth": "b3BzOndyb25n"}}})  # ops:wrong
        )
        catalog = write_family(tmp_path / "cat", "guarded", busybox)
        result = socle(
            "plan",
            "-c",
            str(catalog),
            env={"SOCLE_REGISTRY": guarded.host, "DOCKER_CONFIG": str(config)},
        )
        assert result.returncode == 1
        assert "docker login" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        guarded.stop()


def test_missing_dockerfile_is_bad_input(
    busybox: str, tmp_path: Path, registry: LocalRegistry
) -> None:
    catalog = write_family(tmp_path, "missing", busybox)
    (tmp_path / "leaf" / "Dockerfile").unlink()
    result = socle("build", "-c", str(catalog), env={"SOCLE_REGISTRY": registry.host})
    assert result.returncode == 2
    assert (
        f"{catalog}:" in result.stderr
        and "Dockerfile leaf/Dockerfile of leaf:2 does not exist" in result.stderr
    )


def test_mirror_that_does_not_answer_fails_fast_and_publishes_nothing(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "registry: 127.0.0.1:1\nnamespace: mirror\nimages:\n"
        "  debian:\n    bootstrap: {suite: bookworm, mirror: 'http://127.0.0.1:9/debian'}\n"
        "    versions: ['12']\n"
    )
    result = socle("build", "-c", str(catalog), env={"SOCLE_REGISTRY": registry.host})
    assert result.returncode == 1
    assert "127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    assert httpx.head(f"http://{registry.host}/v2/mirror/debian/manifests/12").status_code == 404
