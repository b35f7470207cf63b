"""The smoke run under the real Docker Engine: busybox httpd behind a restricted pod spec."""

from __future__ import annotations

from typing import Any

import pytest

from socle.deploy.podrun import pod_run
from socle.deploy.smoke import smoke
from socle.process import run

pytestmark = pytest.mark.integration

SERVE = 'echo "$GREETING" > /run/app/ok && exec busybox httpd -f -v -p 8080 -h /www'


def objects(image: str, script: str, probe_path: str = "/health") -> list[dict[str, Any]]:
    """A Deployment of busybox httpd as `render` writes one, and its ConfigMap."""
    container = {
        "name": "web",
        "image": image,
        "command": ["/bin/sh", "-c", script],
        "env": [
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "web", "key": "greeting"}},
            }
        ],
        "ports": [{"name": "http", "containerPort": 8080}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
        "volumeMounts": [
            {"name": "run", "mountPath": "/run/app"},
            {"name": "site", "mountPath": "/www", "readOnly": True},
        ],
        "readinessProbe": {"httpGet": {"path": probe_path, "port": "http"}, "periodSeconds": 1},
        "livenessProbe": {"exec": {"command": ["cat", "/run/app/ok"]}},
    }
    pod = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [
            {"name": "run", "emptyDir": {}},
            {"name": "site", "configMap": {"name": "web"}},
        ],
    }
    return [
        {
            "kind": "ConfigMap",
            "metadata": {"name": "web"},
            "data": {"greeting": "hello", "health": "ok\n"},
        },
        {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": pod}}},
    ]


def leftovers() -> str:
    return run(["docker", "ps", "--all", "--quiet", "--filter", "name=socle-smoke-"]).stdout.strip()


def test_the_restricted_pod_passes_its_probes_through_its_own_loopback(
    docker_daemon: None, busybox: str
) -> None:
    result = smoke(pod_run(objects(busybox, SERVE), "web"), timeout=30)
    assert result.passed, result.detail + "\n" + result.log_tail
    assert "readinessProbe GET http://127.0.0.1:8080/health" in result.detail
    assert "livenessProbe exec cat /run/app/ok" in result.detail
    assert leftovers() == ""


def test_a_probe_path_that_answers_404_fails_with_the_log_tail(
    docker_daemon: None, busybox: str
) -> None:
    result = smoke(pod_run(objects(busybox, SERVE, probe_path="/missing"), "web"), timeout=5)
    assert not result.passed
    assert (
        "readinessProbe GET http://127.0.0.1:8080/missing did not pass in time: HTTP 404"
        in result.detail
    )
    assert "response:404" in result.log_tail  # httpd -v logs each answer
    assert leftovers() == ""


def test_a_write_to_the_read_only_root_fails_with_the_log_tail(
    docker_daemon: None, busybox: str
) -> None:
    result = smoke(pod_run(objects(busybox, "echo x > /written && " + SERVE), "web"), timeout=20)
    assert not result.passed
    assert "the container exited" in result.detail
    assert "Read-only file system" in result.log_tail
    assert leftovers() == ""


def test_the_user_limits_and_capabilities_are_the_pod_specs(
    docker_daemon: None, busybox: str
) -> None:
    """The running process's own view: uid/gid, no capabilities, NoNewPrivs, the memory cgroup."""
    script = (
        "id -u; id -g; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status;"
        " cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; echo ready > /run/app/ok; exec sleep 30"
    )
    pod = pod_run(objects(busybox, script), "web")
    pod = type(pod)(pod.image, pod.flags, pod.arguments, pod.files, pod.probes[1:])
    result = smoke(pod, timeout=20)
    assert result.passed, result.detail + "\n" + result.log_tail
    lines = result.log_tail.splitlines()
    assert lines[:2] == ["10001", "10001"]
    assert "CapEff:\t0000000000000000" in lines
    assert "NoNewPrivs:\t1" in lines
    assert str(64 * 2**20) in lines
