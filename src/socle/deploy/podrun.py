"""A Deployment's pod spec as the `docker run` that reproduces it on one machine.

Pure: Kubernetes objects (plain dicts) in, a :class:`PodRun` out. Every field
of the pod spec and its container is either translated to a Docker flag, listed
here as meaningful only to a cluster (scheduling, service accounts), or refused:
a smoke run that silently dropped a field would prove nothing about it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from socle.errors import InputError

# Fields that shape where and how a pod is scheduled or authenticated, not how its
# process runs: a single-container run has nothing to reproduce for them.
CLUSTER_ONLY_POD_FIELDS = frozenset(
    {
        "serviceAccountName",
        "automountServiceAccountToken",
        "affinity",
        "nodeSelector",
        "tolerations",
        "topologySpreadConstraints",
        "priorityClassName",
        "terminationGracePeriodSeconds",
        "enableServiceLinks",
        "restartPolicy",
        "dnsPolicy",
        "schedulerName",
        "imagePullSecrets",
    }
)
CLUSTER_ONLY_CONTAINER_FIELDS = frozenset(
    {"name", "imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy"}
)
PROBE_ORDER = ("startupProbe", "readinessProbe", "livenessProbe")
PROBE_TIMING = {
    "initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
    "failureThreshold": 3, "successThreshold": 1,
}  # fmt: skip
SECRET_PLACEHOLDER = "socle-smoke-placeholder"
EMPTYDIR_MODE = "0777"  # what the kubelet gives an emptyDir without fsGroup
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$")
_BYTES = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """One probe of the pod spec: an HTTP GET on the pod's loopback, or a command."""

    kind: str  # startupProbe | readinessProbe | livenessProbe
    port: int | None = None
    path: str = "/"
    command: tuple[str, ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0

    def describe(self) -> str:
        if self.command:
            return f"{self.kind} exec {' '.join(self.command)}"
        return f"{self.kind} GET http://127.0.0.1:{self.port}{self.path}"


@dataclass(frozen=True)
class PodRun:
    """What `docker run` needs: the flags, the image, its arguments, the files to mount."""

    image: str
    flags: tuple[str, ...]
    arguments: tuple[str, ...] = ()
    # Bind-mounted read-only: container path -> file content (from ConfigMaps).
    files: Mapping[str, str] = field(default_factory=dict)
    probes: tuple[Probe, ...] = ()
    # "SECRET/KEY" references the cluster would fill and the run was given no value for.
    placeholders: tuple[str, ...] = ()


def pod_run(
    objects: Sequence[Mapping[str, Any]], app: str, secrets: Mapping[str, str] | None = None
) -> PodRun:
    """The run of the Deployment named `app` among `objects`, its ConfigMaps resolved.

    A Secret lives only in the cluster: its value is taken from `secrets`
    ("SECRET/KEY" -> value), else a placeholder the result lists.
    """
    deployment = _one(objects, "Deployment", app)
    configmaps = {
        str(o["metadata"]["name"]): dict(o.get("data") or {})
        for o in objects
        if o.get("kind") == "ConfigMap"
    }
    where = f"Deployment {app}"
    pod = dict(deployment.get("spec", {}).get("template", {}).get("spec", {}))
    _refuse_unknown(
        pod, {"containers", "securityContext", "volumes"}, CLUSTER_ONLY_POD_FIELDS, where
    )
    containers = pod.get("containers") or []
    if len(containers) != 1:
        raise InputError(
            f"{where}: a smoke run reproduces one container, the pod has {len(containers)}"
        )
    container = dict(containers[0])
    known = {
        "image", "command", "args", "env", "envFrom", "ports", "volumeMounts", "resources",
        "securityContext", "workingDir", *PROBE_ORDER,
    }  # fmt: skip
    _refuse_unknown(container, known, CLUSTER_ONLY_CONTAINER_FIELDS, f"{where} container")
    ports = _ports(container)
    placeholders: list[str] = []
    context = {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}
    flags = [
        *_security_flags(context, where),
        *_env_flags(container, configmaps, secrets or {}, placeholders, where),
        *_resource_flags(container.get("resources") or {}, where),
    ]
    if "workingDir" in container:
        flags += ["--workdir", str(container["workingDir"])]
    mount_flags, files = _mounts(container, pod.get("volumes") or [], configmaps, context, where)
    flags += mount_flags
    entrypoint, arguments = _command(container)
    flags += entrypoint
    probes = tuple(
        _probe(kind, container[kind], ports, where) for kind in PROBE_ORDER if kind in container
    )
    return PodRun(
        str(container["image"]), tuple(flags), arguments, files, probes, tuple(placeholders)
    )


def _one(objects: Sequence[Mapping[str, Any]], kind: str, name: str) -> Mapping[str, Any]:
    for obj in objects:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return obj
    raise InputError(f"no {kind} named {name!r} among the rendered objects")


def _refuse_unknown(
    spec: Mapping[str, Any], known: set[str], cluster_only: frozenset[str], where: str
) -> None:
    for key in spec:
        if key not in known and key not in cluster_only:
            raise InputError(
                f"{where}: {key} cannot be reproduced by a smoke run under Docker Engine",
                hint="remove it from the deployment, or smoke-run a spec without it",
            )


def _security_flags(context: Mapping[str, Any], where: str) -> list[str]:
    """User, no-new-privileges, capabilities, read-only root and seccomp."""
    _refuse_unknown(
        context,
        {
            "runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups",
            "allowPrivilegeEscalation", "capabilities", "readOnlyRootFilesystem",
            "seccompProfile", "privileged",
        },
        frozenset(),
        f"{where} securityContext",
    )  # fmt: skip
    if context.get("privileged"):
        raise InputError(f"{where}: a privileged container is not smoke-run")
    flags: list[str] = []
    user = context.get("runAsUser")
    if context.get("runAsNonRoot") and (user is None or int(user) == 0):
        raise InputError(
            f"{where}: runAsNonRoot needs a numeric runAsUser other than 0 for a smoke run",
            hint="set securityContext.runAsUser to the image's user id",
        )
    if user is not None:
        group = context.get("runAsGroup")
        flags += ["--user", f"{int(user)}:{int(group)}" if group is not None else str(int(user))]
    groups = [
        *context.get("supplementalGroups", []),
        *([context["fsGroup"]] if "fsGroup" in context else []),
    ]
    for group_id in groups:
        flags += ["--group-add", str(int(group_id))]
    if context.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    flags += _capability_flags(context.get("capabilities") or {}, where)
    seccomp = (context.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        flags += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":  # Docker's default profile is the runtime default
        raise InputError(f"{where}: seccompProfile {seccomp} cannot be reproduced by a smoke run")
    return flags


def _capability_flags(capabilities: Mapping[str, Any], where: str) -> list[str]:
    _refuse_unknown(capabilities, {"drop", "add"}, frozenset(), f"{where} capabilities")
    flags: list[str] = []
    for name in capabilities.get("drop", []):
        flags += ["--cap-drop", str(name)]
    for name in capabilities.get("add", []):
        flags += ["--cap-add", str(name)]
    return flags


def _env_flags(
    container: Mapping[str, Any],
    configmaps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, str],
    placeholders: list[str],
    where: str,
) -> list[str]:
    """`envFrom` ConfigMaps first, then `env`, which wins as in Kubernetes."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if set(source) - {"configMapRef", "prefix"}:
            raise InputError(
                f"{where}: envFrom {sorted(source)} cannot be reproduced (only configMapRef)"
            )
        data = _configmap(configmaps, source["configMapRef"]["name"], where)
        prefix = str(source.get("prefix", ""))
        values.update({prefix + key: value for key, value in data.items()})
    for entry in container.get("env", []):
        secret = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if secret is not None:
            ref = f"{secret['name']}/{secret['key']}"
            if ref not in secrets:
                placeholders.append(ref)
            values[str(entry["name"])] = secrets.get(ref, SECRET_PLACEHOLDER)
        else:
            values[str(entry["name"])] = _env_value(entry, configmaps, where)
    return [flag for name, value in values.items() for flag in ("--env", f"{name}={value}")]


def _env_value(
    entry: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, str]], where: str
) -> str:
    if "value" in entry:
        return str(entry["value"])
    ref = (entry.get("valueFrom") or {}).get("configMapKeyRef")
    if ref is None:
        raise InputError(
            f"{where}: env {entry['name']} comes from {sorted(entry.get('valueFrom') or {})},"
            " which a smoke run has no value for (only value, configMapKeyRef and secretKeyRef)"
        )
    data = _configmap(configmaps, ref["name"], where)
    if ref["key"] not in data:
        raise InputError(f"{where}: ConfigMap {ref['name']} has no key {ref['key']!r}")
    return data[ref["key"]]


def _configmap(
    configmaps: Mapping[str, Mapping[str, str]], name: str, where: str
) -> Mapping[str, str]:
    if name not in configmaps:
        raise InputError(f"{where}: ConfigMap {name!r} is not among the rendered objects")
    return configmaps[name]


def _resource_flags(resources: Mapping[str, Any], where: str) -> list[str]:
    """Limits bound the container as the kubelet's cgroup would; requests only schedule."""
    _refuse_unknown(resources, {"limits", "requests"}, frozenset(), f"{where} resources")
    limits = resources.get("limits") or {}
    _refuse_unknown(limits, {"cpu", "memory"}, frozenset(), f"{where} resources.limits")
    flags: list[str] = []
    if "memory" in limits:
        flags += ["--memory", str(quantity_bytes(str(limits["memory"]), where))]
    if "cpu" in limits:
        flags += ["--cpus", _cpus(str(limits["cpu"]), where)]
    return flags


def quantity_bytes(text: str, where: str) -> int:
    """A Kubernetes memory quantity (`512Mi`, `1G`, `1000`) in bytes."""
    match = _QUANTITY.match(text)
    if not match or match.group(2) == "m":
        raise InputError(f"{where}: memory quantity {text!r} is not understood")
    return int(float(match.group(1)) * _BYTES[match.group(2)])


def _cpus(text: str, where: str) -> str:
    match = _QUANTITY.match(text)
    if not match or match.group(2) not in (None, "m"):
        raise InputError(f"{where}: cpu quantity {text!r} is not understood")
    cores = float(match.group(1)) / (1000 if match.group(2) == "m" else 1)
    return f"{cores:g}"


def _mounts(
    container: Mapping[str, Any],
    volumes: Sequence[Mapping[str, Any]],
    configmaps: Mapping[str, Mapping[str, str]],
    context: Mapping[str, Any],
    where: str,
) -> tuple[list[str], dict[str, str]]:
    """A tmpfs per emptyDir mount; each ConfigMap key a read-only file at its path."""
    by_name = {str(v["name"]): v for v in volumes}
    flags: list[str] = []
    files: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        _refuse_unknown(
            mount, {"name", "mountPath", "readOnly", "subPath"}, frozenset(), f"{where} volumeMount"
        )
        volume = by_name.get(str(mount["name"]))
        if volume is None:
            raise InputError(f"{where}: volumeMount {mount['name']} names no volume of the pod")
        path = str(mount["mountPath"])
        if "emptyDir" in volume:
            flags += [
                "--tmpfs",
                f"{path}:{_tmpfs_options(volume['emptyDir'] or {}, context, where)}",
            ]
        elif "configMap" in volume:
            files.update(_configmap_files(volume["configMap"], mount, configmaps, where))
        else:
            kinds = sorted(set(volume) - {"name"})
            raise InputError(
                f"{where}: volume {mount['name']} ({', '.join(kinds)}) cannot be reproduced by a smoke run"
            )
    return flags, files


def _tmpfs_options(empty_dir: Mapping[str, Any], context: Mapping[str, Any], where: str) -> str:
    """A tmpfs the pod's user can write, as the kubelet's emptyDir (0777, or the fsGroup's).

    Docker gives a tmpfs the mode of the image's directory at that path (Debian's
    `/var/cache/tomcat10` is 0750), where Kubernetes hides it: so the pod's user
    owns the tmpfs.
    """
    _refuse_unknown(empty_dir, {"medium", "sizeLimit"}, frozenset(), f"{where} emptyDir")
    options = ["rw", "nosuid", "nodev"]
    if "runAsUser" in context:
        options.append(f"uid={int(context['runAsUser'])}")
    if "fsGroup" in context:  # the kubelet makes the volume the group's, setgid
        options += [f"gid={int(context['fsGroup'])}", "mode=2775"]
    else:
        options.append(f"mode={EMPTYDIR_MODE}")
    if "sizeLimit" in empty_dir:
        options.append(f"size={quantity_bytes(str(empty_dir['sizeLimit']), where)}")
    return ",".join(options)


def _configmap_files(
    source: Mapping[str, Any],
    mount: Mapping[str, Any],
    configmaps: Mapping[str, Mapping[str, str]],
    where: str,
) -> dict[str, str]:
    _refuse_unknown(
        source,
        {"name", "items", "defaultMode", "optional"},
        frozenset(),
        f"{where} configMap volume",
    )
    data = _configmap(configmaps, str(source["name"]), where)
    items = source.get("items") or [{"key": k, "path": k} for k in data]
    paths = {str(item["path"]): data[str(item["key"])] for item in items}
    base = PurePosixPath(str(mount["mountPath"]))
    if "subPath" in mount:
        sub = str(mount["subPath"])
        if sub not in paths:
            raise InputError(f"{where}: subPath {sub!r} is no key of ConfigMap {source['name']}")
        return {str(base): paths[sub]}
    return {str(base / path): content for path, content in paths.items()}


def _command(container: Mapping[str, Any]) -> tuple[list[str], tuple[str, ...]]:
    """`command` replaces the image's ENTRYPOINT, `args` its CMD."""
    command = [str(part) for part in container.get("command", [])]
    args = tuple(str(part) for part in container.get("args", []))
    if command:
        return ["--entrypoint", command[0]], (*command[1:], *args)
    return [], args


def _ports(container: Mapping[str, Any]) -> dict[str, int]:
    return {
        str(p.get("name", p["containerPort"])): int(p["containerPort"])
        for p in container.get("ports", [])
    }


def _probe(kind: str, spec: Mapping[str, Any], ports: Mapping[str, int], where: str) -> Probe:
    _refuse_unknown(spec, {"httpGet", "exec", *PROBE_TIMING}, frozenset(), f"{where} {kind}")
    timing = {key: float(spec.get(key, default)) for key, default in PROBE_TIMING.items()}
    probe = Probe(
        kind,
        initial_delay=timing["initialDelaySeconds"],
        period=timing["periodSeconds"],
        timeout=timing["timeoutSeconds"],
    )
    if "exec" in spec:
        return replace(probe, command=tuple(str(c) for c in spec["exec"]["command"]))
    if "httpGet" not in spec:
        raise InputError(
            f"{where}: {kind} is neither httpGet nor exec, which a smoke run reproduces"
        )
    http = spec["httpGet"]
    _refuse_unknown(http, {"path", "port", "scheme"}, frozenset(), f"{where} {kind}.httpGet")
    if http.get("scheme", "HTTP") != "HTTP":
        raise InputError(f"{where}: {kind} scheme {http['scheme']} is not smoke-run (HTTP only)")
    port = http["port"]
    if isinstance(port, str) and not port.isdigit():
        if port not in ports:
            raise InputError(f"{where}: {kind} port {port!r} is no declared container port")
        port = ports[port]
    return replace(probe, port=int(port), path=str(http.get("path", "/")))
