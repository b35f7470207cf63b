"""Every pod-spec field becomes a Docker flag, is cluster-only, or is refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from socle.deploy.podrun import SECRET_PLACEHOLDER, PodRun, Probe, pod_run
from socle.deploy.smoke import docker_command
from socle.errors import InputError

IMAGE = "127.0.0.1:5000/my/web@sha256:" + "a" * 64


def deployment(**container: Any) -> list[dict[str, Any]]:
    """A restricted Deployment and its ConfigMap, with `container` fields added."""
    spec = {
        "name": "web",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        **container,
    }
    pod = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 100,
            "runAsGroup": 101,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "serviceAccountName": "web",
        "automountServiceAccountToken": False,
        "containers": [spec],
        "volumes": [
            {"name": "work", "emptyDir": {}},
            {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "config", "configMap": {"name": "web-config"}},
        ],
    }
    return [
        {"kind": "Service", "metadata": {"name": "web"}},
        {
            "kind": "ConfigMap",
            "metadata": {"name": "web-config"},
            "data": {"app.properties": "a=1\n", "MODE": "fast"},
        },
        {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": pod}}},
    ]


def pairs(run: PodRun) -> list[tuple[str, str]]:
    """The flags that take a value, as (flag, value)."""
    flags = list(run.flags)
    single = {"--read-only"}
    out: list[tuple[str, str]] = []
    while flags:
        flag = flags.pop(0)
        out.append((flag, "" if flag in single else flags.pop(0)))
    return out


def test_the_security_context_becomes_user_read_only_caps_and_no_new_privileges() -> None:
    flags = pairs(pod_run(deployment(), "web"))
    assert ("--user", "100:101") in flags
    assert ("--read-only", "") in flags
    assert ("--cap-drop", "ALL") in flags
    assert ("--security-opt", "no-new-privileges") in flags
    assert not any(flag == "--security-opt" and "seccomp" in value for flag, value in flags)


def test_a_container_context_overrides_the_pods() -> None:
    objects = deployment(securityContext={"runAsUser": 2000, "readOnlyRootFilesystem": True})
    flags = pairs(pod_run(objects, "web"))
    assert ("--user", "2000:101") in flags
    assert ("--cap-drop", "ALL") not in flags  # the container's context replaced it


def test_each_emptydir_mount_is_a_tmpfs_with_its_size() -> None:
    mounts = [
        {"name": "work", "mountPath": "/var/lib/app/work"},
        {"name": "cache", "mountPath": "/cache"},
    ]
    flags = pairs(pod_run(deployment(volumeMounts=mounts), "web"))
    assert ("--tmpfs", "/var/lib/app/work:rw,nosuid,nodev,uid=100,mode=0777") in flags
    assert ("--tmpfs", f"/cache:rw,nosuid,nodev,uid=100,mode=0777,size={64 * 2**20}") in flags


def test_fs_group_owns_the_tmpfs_and_joins_the_groups() -> None:
    objects = deployment(volumeMounts=[{"name": "work", "mountPath": "/w"}])
    objects[2]["spec"]["template"]["spec"]["securityContext"]["fsGroup"] = 3000
    flags = pairs(pod_run(objects, "web"))
    assert ("--group-add", "3000") in flags
    assert ("--tmpfs", "/w:rw,nosuid,nodev,uid=100,gid=3000,mode=2775") in flags


def test_configmap_files_are_mounted_at_their_paths_and_env_comes_from_keys() -> None:
    run = pod_run(
        deployment(
            volumeMounts=[{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
            envFrom=[{"configMapRef": {"name": "web-config"}}],
            env=[
                {"name": "MODE", "value": "slow"},
                {
                    "name": "PROPS",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "web-config", "key": "app.properties"}
                    },
                },
            ],
        ),
        "web",
    )
    assert run.files == {"/etc/app/app.properties": "a=1\n", "/etc/app/MODE": "fast"}
    env = [value for flag, value in pairs(run) if flag == "--env"]
    assert env == ["app.properties=a=1\n", "MODE=slow", "PROPS=a=1\n"]


def test_a_subpath_mount_is_one_file() -> None:
    mounts = [{"name": "config", "mountPath": "/etc/app.properties", "subPath": "app.properties"}]
    assert pod_run(deployment(volumeMounts=mounts), "web").files == {"/etc/app.properties": "a=1\n"}


def test_a_secret_takes_the_given_value_or_a_listed_placeholder() -> None:
    env = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    given = pod_run(deployment(env=env), "web", {"db/password": "s3cret"})
    assert ("--env", "PASSWORD=s3cret") in pairs(given) and given.placeholders == ()
    missing = pod_run(deployment(env=env), "web")
    assert ("--env", f"PASSWORD={SECRET_PLACEHOLDER}") in pairs(missing)
    assert missing.placeholders == ("db/password",)


def test_limits_become_memory_and_cpus() -> None:
    resources = {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    flags = pairs(pod_run(deployment(resources=resources), "web"))
    assert ("--memory", str(2**30)) in flags
    assert ("--cpus", "0.5") in flags


def test_command_replaces_the_entrypoint_and_args_the_cmd() -> None:
    run = pod_run(deployment(command=["/bin/sh", "-c"], args=["exec httpd"]), "web")
    assert ("--entrypoint", "/bin/sh") in pairs(run)
    assert run.arguments == ("-c", "exec httpd")
    assert pod_run(deployment(args=["--port", "1"]), "web").arguments == ("--port", "1")


def test_probes_in_startup_readiness_liveness_order_with_named_ports() -> None:
    run = pod_run(
        deployment(
            livenessProbe={"exec": {"command": ["cat", "/ok"]}, "periodSeconds": 20},
            readinessProbe={"httpGet": {"path": "/health", "port": "http"}, "timeoutSeconds": 3},
            startupProbe={
                "httpGet": {"port": 8080},
                "initialDelaySeconds": 5,
                "failureThreshold": 24,
            },
        ),
        "web",
    )
    assert run.probes == (
        Probe("startupProbe", port=8080, path="/", initial_delay=5.0),
        Probe("readinessProbe", port=8080, path="/health", timeout=3.0),
        Probe("livenessProbe", command=("cat", "/ok"), period=20.0),
    )


def test_the_docker_command_has_no_network_and_read_only_binds() -> None:
    run = pod_run(deployment(args=["serve"]), "web")
    command = docker_command(run, "socle-smoke-x", {"/etc/app/a": "/tmp/s/0-a"})  # type: ignore[dict-item]
    assert command[:6] == ["docker", "run", "--detach", "--name", "socle-smoke-x", "--network"]
    assert command[6] == "none"
    assert "type=bind,source=/tmp/s/0-a,target=/etc/app/a,readonly" in command
    assert command[-2:] == [IMAGE, "serve"]


REFUSED = [
    ("a second container", lambda p, c: p["containers"].append(copy.deepcopy(c)), "one container"),
    (
        "an init container",
        lambda p, c: p.update(initContainers=[c]),
        "initContainers cannot be reproduced",
    ),
    ("hostNetwork", lambda p, c: p.update(hostNetwork=True), "hostNetwork cannot be reproduced"),
    (
        "a sysctl",
        lambda p, c: p["securityContext"].update(sysctls=[]),
        "sysctls cannot be reproduced",
    ),
    ("privileged", lambda p, c: c["securityContext"].update(privileged=True), "privileged"),
    (
        "a Localhost seccomp profile",
        lambda p, c: p["securityContext"].update(seccompProfile={"type": "Localhost"}),
        "seccompProfile Localhost",
    ),
    (
        "a secret volume",
        lambda p, c: (
            p["volumes"].append({"name": "s", "secret": {}}),
            c.update(volumeMounts=[{"name": "s", "mountPath": "/s"}]),
        ),
        "volume s (secret)",
    ),
    (
        "a mount of no volume",
        lambda p, c: c.update(volumeMounts=[{"name": "nope", "mountPath": "/n"}]),
        "names no volume",
    ),
    (
        "a mount propagation",
        lambda p, c: c.update(
            volumeMounts=[{"name": "work", "mountPath": "/w", "mountPropagation": "None"}]
        ),
        "mountPropagation cannot",
    ),
    (
        "an env from a field",
        lambda p, c: c.update(env=[{"name": "N", "valueFrom": {"fieldRef": {}}}]),
        "fieldRef",
    ),
    (
        "envFrom a secret",
        lambda p, c: c.update(envFrom=[{"secretRef": {"name": "s"}}]),
        "envFrom ['secretRef']",
    ),
    (
        "a missing ConfigMap",
        lambda p, c: c.update(envFrom=[{"configMapRef": {"name": "other"}}]),
        "ConfigMap 'other'",
    ),
    (
        "a tcpSocket probe",
        lambda p, c: c.update(readinessProbe={"tcpSocket": {"port": 8080}}),
        "tcpSocket cannot",
    ),
    (
        "an HTTPS probe",
        lambda p, c: c.update(readinessProbe={"httpGet": {"port": 8080, "scheme": "HTTPS"}}),
        "HTTP only",
    ),
    (
        "a probe header",
        lambda p, c: c.update(readinessProbe={"httpGet": {"port": 8080, "httpHeaders": []}}),
        "httpHeaders",
    ),
    (
        "a probe on an undeclared port",
        lambda p, c: c.update(readinessProbe={"httpGet": {"port": "admin"}}),
        "'admin' is no declared",
    ),
    ("a lifecycle hook", lambda p, c: c.update(lifecycle={}), "lifecycle cannot"),
    (
        "a GPU limit",
        lambda p, c: c.update(resources={"limits": {"nvidia.com/gpu": 1}}),
        "nvidia.com/gpu",
    ),
    (
        "a memory quantity in millis",
        lambda p, c: c.update(resources={"limits": {"memory": "5m"}}),
        "memory quantity '5m'",
    ),
    (
        "runAsNonRoot with no user",
        lambda p, c: p["securityContext"].pop("runAsUser"),
        "runAsNonRoot needs",
    ),
]


@pytest.mark.parametrize(("what", "change", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_field_socle_cannot_reproduce_is_refused(what: str, change: Any, message: str) -> None:
    objects = deployment()
    pod = objects[2]["spec"]["template"]["spec"]
    change(pod, pod["containers"][0])
    with pytest.raises(InputError, match="Deployment web") as caught:
        pod_run(objects, "web")
    assert message in caught.value.message


def test_an_unknown_app_is_one_line() -> None:
    with pytest.raises(InputError, match="no Deployment named 'api' among the rendered objects"):
        pod_run(deployment(), "api")
