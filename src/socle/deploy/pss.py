"""The Pod Security Standards "restricted" profile, checked by socle on any manifest.

Pod Security admission enforces this in a cluster; there is none here, so
`socle deploy check` applies the same rules offline (kubernetes.io, "Pod
Security Standards", Restricted, which includes Baseline), plus socle's own
rule that the root filesystem is read-only. Each violation names the object,
the container and the field path, so it can be fixed without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
     "projected", "secret"}
)  # fmt: skip
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SECCOMP_TYPES = ("RuntimeDefault", "Localhost")
SAFE_SYSCTLS = frozenset(
    {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
     "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
     "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
     "net.ipv4.tcp_keepalive_probes"}
)  # fmt: skip
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    """One broken rule: which object, which field (a dotted path) and what is wrong."""

    kind: str
    namespace: str
    name: str
    field: str
    problem: str

    @property
    def object(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def pod_spec(obj: Json) -> tuple[str, Json] | None:
    """The dotted path and the pod spec of a workload object, or None for other kinds."""
    path = POD_SPEC_PATHS.get(str(obj.get("kind")))
    if path is None:
        return None
    spec: Any = obj
    for key in path:
        spec = spec.get(key) if isinstance(spec, Mapping) else None
    return (".".join(path), spec) if isinstance(spec, Mapping) else (".".join(path), {})


def check(obj: Json) -> list[Violation]:
    """Every restricted-profile violation of one object (none for a kind without pods)."""
    found = pod_spec(obj)
    if found is None:
        return []
    base, spec = found
    meta = obj.get("metadata") or {}
    kind, ns, name = (
        str(obj["kind"]),
        str(meta.get("namespace", "default")),
        str(meta.get("name", "?")),
    )
    return [
        Violation(kind, ns, name, f"{base}.{path}", problem) for path, problem in pod_problems(spec)
    ]


def pod_problems(spec: Json) -> Iterator[tuple[str, str]]:
    """(relative field path, problem) for a pod spec and each of its containers."""
    for key in HOST_NAMESPACES:
        if spec.get(key):
            yield key, "host namespaces are forbidden: must be false or unset"
    for i, volume in enumerate(spec.get("volumes") or []):
        for source in sorted(set(volume) - {"name"} - RESTRICTED_VOLUMES):
            yield f"volumes[{i}].{source}", f"volume type {source!r} is not allowed by restricted"
    pod_sc: Json = spec.get("securityContext") or {}
    yield from context_problems(pod_sc, "securityContext")
    for i, sysctl in enumerate(pod_sc.get("sysctls") or []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield (
                f"securityContext.sysctls[{i}].name",
                f"{sysctl.get('name')!r} is not a safe sysctl",
            )
    for list_name in CONTAINER_LISTS:
        for i, container in enumerate(spec.get(list_name) or []):
            where = f"{list_name}[{i}]"
            label = f"container {container.get('name', '?')!r}"
            for path, problem in container_problems(container, pod_sc):
                yield f"{where}.{path}", f"{label}: {problem}"


def context_problems(sc: Json, at: str) -> Iterator[tuple[str, str]]:
    """Rules that hold on a pod's and a container's securityContext alike."""
    if sc.get("runAsUser") == 0:
        yield f"{at}.runAsUser", "must not be 0 (root)"
    if sc.get("runAsNonRoot") is False:
        yield f"{at}.runAsNonRoot", "must be true"
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_TYPES:
        yield f"{at}.seccompProfile.type", f"must be RuntimeDefault or Localhost, not {seccomp!r}"
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        yield f"{at}.windowsOptions.hostProcess", "host processes are forbidden"
    selinux: Json = sc.get("seLinuxOptions") or {}
    for key in ("user", "role"):
        if selinux.get(key):
            yield f"{at}.seLinuxOptions.{key}", "must be unset"
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in SECCOMP_TYPES:
        yield f"{at}.appArmorProfile.type", f"must be RuntimeDefault or Localhost, not {apparmor!r}"


def container_problems(container: Json, pod_sc: Json) -> Iterator[tuple[str, str]]:
    """A container's own rules; runAsNonRoot and seccomp may come from the pod instead."""
    sc: Json = container.get("securityContext") or {}
    at = "securityContext"
    yield from context_problems(sc, at)
    if sc.get("privileged"):
        yield f"{at}.privileged", "privileged containers are forbidden"
    if sc.get("allowPrivilegeEscalation") is not False:
        yield f"{at}.allowPrivilegeEscalation", "must be false"
    # An explicit false is already reported by context_problems.
    if sc.get("runAsNonRoot") is None and pod_sc.get("runAsNonRoot") is not True:
        yield f"{at}.runAsNonRoot", "must be true (here or in the pod's securityContext)"
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp is None:
        yield (
            f"{at}.seccompProfile.type",
            "must be RuntimeDefault or Localhost (here or in the pod's securityContext)",
        )
    capabilities: Json = sc.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        yield f"{at}.capabilities.drop", "must include ALL"
    for added in capabilities.get("add") or []:
        if added not in ALLOWED_ADDED_CAPABILITIES:
            yield f"{at}.capabilities.add", f"only NET_BIND_SERVICE may be added, not {added!r}"
    if sc.get("readOnlyRootFilesystem") is not True:
        yield (
            f"{at}.readOnlyRootFilesystem",
            "must be true (socle's rule: an emptyDir per writable path)",
        )
    if sc.get("procMount", "Default") != "Default":
        yield f"{at}.procMount", "must be Default"
    for i, port in enumerate(container.get("ports") or []):
        if port.get("hostPort"):
            yield f"ports[{i}].hostPort", "host ports are forbidden"
