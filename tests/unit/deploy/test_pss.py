"""The restricted profile: a compliant pod passes, and each rule has its negative case."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from socle.deploy import pss


def compliant(kind: str = "Deployment") -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "r/app@sha256:" + "a" * 64,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
        },
    }  # fmt: skip
    pod = {
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": "web", "namespace": "shop"}}
    if kind == "Pod":
        obj["spec"] = pod
    elif kind == "CronJob":
        obj["spec"] = {"jobTemplate": {"spec": {"template": {"spec": pod}}}}
    else:
        obj["spec"] = {"template": {"spec": pod}}
    return obj


@pytest.mark.parametrize("kind", sorted(pss.POD_SPEC_PATHS))
def test_a_compliant_workload_of_every_kind_passes(kind: str) -> None:
    assert pss.check(compliant(kind)) == []


def test_kinds_without_pods_are_not_judged() -> None:
    assert pss.check({"kind": "Service", "metadata": {"name": "web"}}) == []


C = "spec.template.spec.containers[0]."
P = "spec.template.spec."
CASES = [
    (["containers", 0, "securityContext", "runAsNonRoot"], False, C + "securityContext.runAsNonRoot", "must be true"),
    (["containers", 0, "securityContext", "runAsUser"], 0, C + "securityContext.runAsUser", "not be 0"),
    (["securityContext", "runAsUser"], 0, P + "securityContext.runAsUser", "not be 0"),
    (["containers", 0, "securityContext", "allowPrivilegeEscalation"], True, C + "securityContext.allowPrivilegeEscalation", "false"),
    (["containers", 0, "securityContext", "capabilities"], {"drop": ["NET_RAW"]}, C + "securityContext.capabilities.drop", "ALL"),
    (["containers", 0, "securityContext", "capabilities"], {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, C + "securityContext.capabilities.add", "SYS_ADMIN"),
    (["securityContext", "seccompProfile"], {"type": "Unconfined"}, P + "securityContext.seccompProfile.type", "Unconfined"),
    (["containers", 0, "securityContext", "privileged"], True, C + "securityContext.privileged", "privileged"),
    (["hostNetwork"], True, P + "hostNetwork", "host namespaces"),
    (["hostPID"], True, P + "hostPID", "host namespaces"),
    (["hostIPC"], True, P + "hostIPC", "host namespaces"),
    (["containers", 0, "ports"], [{"containerPort": 80, "hostPort": 80}], C + "ports[0].hostPort", "host ports"),
    (["volumes"], [{"name": "h", "hostPath": {"path": "/"}}], P + "volumes[0].hostPath", "hostPath"),
    (["volumes"], [{"name": "n", "nfs": {"server": "s", "path": "/"}}], P + "volumes[0].nfs", "nfs"),
    (["containers", 0, "securityContext", "readOnlyRootFilesystem"], False, C + "securityContext.readOnlyRootFilesystem", "must be true"),
    (["containers", 0, "securityContext", "procMount"], "Unmasked", C + "securityContext.procMount", "Default"),
    (["securityContext", "sysctls"], [{"name": "kernel.msgmax", "value": "1"}], P + "securityContext.sysctls[0].name", "safe"),
    (["securityContext", "seLinuxOptions"], {"user": "root"}, P + "securityContext.seLinuxOptions.user", "unset"),
    (["containers", 0, "securityContext", "windowsOptions"], {"hostProcess": True}, C + "securityContext.windowsOptions.hostProcess", "host processes"),
]  # fmt: skip


@pytest.mark.parametrize(("keys", "value", "field", "words"), CASES, ids=[c[2] for c in CASES])
def test_each_rule_names_object_container_and_field(
    keys: list[Any], value: Any, field: str, words: str
) -> None:
    obj = compliant()
    target = obj["spec"]["template"]["spec"]
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    found = pss.check(obj)
    assert [v.field for v in found] == [field]
    assert words in found[0].problem
    assert found[0].object == "Deployment/shop/web"
    if "containers[0]" in field:
        assert "container 'app'" in found[0].problem


def test_missing_seccomp_is_a_violation_unless_the_container_sets_it() -> None:
    obj = compliant("Pod")
    del obj["spec"]["securityContext"]["seccompProfile"]
    assert [v.field for v in pss.check(obj)] == [
        "spec.containers[0].securityContext.seccompProfile.type"
    ]
    obj["spec"]["containers"][0]["securityContext"]["seccompProfile"] = {"type": "Localhost"}
    assert pss.check(obj) == []


def test_run_as_non_root_may_come_from_the_pod() -> None:
    obj = compliant("Pod")
    del obj["spec"]["containers"][0]["securityContext"]["runAsNonRoot"]
    assert len(pss.check(obj)) == 1
    obj["spec"]["securityContext"]["runAsNonRoot"] = True
    assert pss.check(obj) == []


def test_init_and_ephemeral_containers_are_checked() -> None:
    obj = compliant("Pod")
    bad = copy.deepcopy(obj["spec"]["containers"][0]) | {"name": "init", "securityContext": {}}
    obj["spec"]["initContainers"] = [bad]
    obj["spec"]["ephemeralContainers"] = [bad | {"name": "debug"}]
    fields = {v.field.split(".")[1] for v in pss.check(obj)}
    assert fields == {"initContainers[0]", "ephemeralContainers[0]"}


def test_net_bind_service_is_the_one_capability_that_may_be_added() -> None:
    obj = compliant("Pod")
    obj["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert pss.check(obj) == []
