"""The enterprise example built once: the legacy app's smoke run and its logs as ECS
JSON lines, and `socle rebuild --verify` of its java image.

The session's one signed build of the example (conftest's `enterprise`, about
3 min) serves every test here. Its `--events json` output is socle's log
stream; the smoke run's container log is the legacy app's.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from socle.deploy import render
from socle.deploy import spec as specs
from socle.deploy.podrun import pod_run
from socle.deploy.smoke import smoke
from socle.validate import validate
from tests.integration.conftest import Enterprise
from tests.integration.helpers import skopeo_inspect, socle

pytestmark = pytest.mark.integration

APP = "legacy-app"


@pytest.fixture(scope="module")
def legacy(enterprise: Enterprise, docker_daemon: None) -> Enterprise:
    """The session's signed build of the example, and a Docker daemon for the smoke runs."""
    return enterprise


def test_the_legacy_app_passes_its_smoke_run(legacy: Enterprise) -> None:
    ran = socle(
        "deploy", "smoke", APP, "-c", str(legacy.catalog), "--key", str(legacy.key),
        "--timeout", "150", env=legacy.env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    probes = "startupProbe GET http://127.0.0.1:8080/legacy/hello"
    assert ran.stdout.startswith(f"{APP}: passed: {probes}"), ran.stdout
    assert "Secret legacy-db/password: 'socle-smoke-placeholder'" in ran.stderr
    assert '"log.logger":"org.example.logging.AccessLogValve"' in ran.stderr  # the probes' GETs
    leftovers = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", "name=socle-smoke-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert leftovers.stdout.strip() == ""


def test_the_legacy_app_logs_ecs_json_lines_to_stdout(legacy: Enterprise) -> None:
    records = [json.loads(line) for line in legacy_app_log(legacy).splitlines()]  # every line
    assert all({"@timestamp", "log.level", "log.logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r["log.logger"] == "org.example.logging.AccessLogValve"]
    assert any('"GET /legacy/hello HTTP/1.1" 200' in r["message"] for r in access), access
    assert any(r["message"].startswith("Server startup in") for r in records)
    # Tomcat under the read-only root: nothing it needs to write is missing.
    assert [r["message"] for r in records if r["log.level"] in ("error", "warn")] == []


def test_rebuild_verify_reproduces_the_java_image_and_refuses_a_changed_dockerfile(
    legacy: Enterprise,
) -> None:
    """The image with Debian's JDK, its cacerts keystore and the apt pins: rebuilt the same."""
    ref = f"{legacy.env['SOCLE_REGISTRY']}/my/java:17-debian12"
    args = ("rebuild", "--verify", "java:17-debian12", "-c", str(legacy.catalog))
    same = socle(*args, env=legacy.env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.startswith(f"{ref}: reproduced: the rebuild has the published config")
    assert skopeo_inspect(ref)["Digest"] in same.stdout

    dockerfile = legacy.catalog.parent / "java" / "Dockerfile"
    original = dockerfile.read_text()
    try:
        dockerfile.write_text(original.replace('CMD ["java", "-version"]', 'CMD ["java"]'))
        changed = socle(*args, env=legacy.env)
    finally:
        dockerfile.write_text(original)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "the catalog's dockerfile of java:17-debian12 differs" in changed.stderr
    assert "Traceback" not in changed.stderr


def legacy_app_log(legacy: Enterprise) -> str:
    """Everything the legacy app wrote in a smoke run of its rendered pod spec."""
    catalog, graph = validate(legacy.catalog, registry=legacy.env["SOCLE_REGISTRY"])
    spec = specs.load(catalog, graph, APP)
    tag = f"{catalog.registry}/{spec.repository}:{spec.tag}"
    ref = f"{catalog.registry}/{spec.repository}@{skopeo_inspect(tag)['Digest']}"
    result = smoke(pod_run(render.objects(spec, ref), APP), timeout=150, log_lines=100_000)
    assert result.passed, result.detail + "\n" + result.log_tail
    return result.log_tail + "\n"
