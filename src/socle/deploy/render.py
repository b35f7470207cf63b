"""A deployment description as Kubernetes objects, and as a kustomize base with overlays.

Pure: plain dicts and YAML text from a :class:`~socle.deploy.spec.Spec` and an
image reference that is already a verified digest. Every pod runs under the
Pod Security "restricted" profile; every flow the description does not declare
is denied by NetworkPolicy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import yaml

from socle.deploy.spec import Destination, Peer, Probe, Resources, Spec
from socle.errors import InputError

Object = dict[str, Any]
DIGEST_REF_RE = re.compile(r"^[^\s@]+/[^\s@]+@sha256:[0-9a-f]{64}$")
PSS = "restricted"
FILE_NAMES = {
    "Namespace": "namespace.yaml",
    "ServiceAccount": "serviceaccount.yaml",
    "ConfigMap": "configmap.yaml",
    "Deployment": "deployment.yaml",
    "Service": "service.yaml",
    "PodDisruptionBudget": "poddisruptionbudget.yaml",
    "HorizontalPodAutoscaler": "horizontalpodautoscaler.yaml",
    "NetworkPolicy": "networkpolicy-{name}.yaml",
    "ServiceMonitor": "servicemonitor.yaml",
}


def objects(spec: Spec, image_ref: str, env: str | None = None) -> list[Object]:
    """Every object of the deployment, with environment `env`'s overrides applied.

    `image_ref` must be `registry/repo@sha256:...`: a tag is never rendered.
    """
    if not DIGEST_REF_RE.match(image_ref):
        raise InputError(
            f"image {image_ref!r} for {spec.app} is not pinned by digest",
            hint="render only registry/repo@sha256:... references",
        )
    if env is not None and env not in spec.environments:
        known = ", ".join(spec.environments) or "none"
        raise InputError(f"no environment {env!r} in {spec.path} (known: {known})")
    overrides = spec.environments[env] if env else None
    replicas = overrides.replicas if overrides and overrides.replicas else spec.replicas
    values = {**spec.env, **(overrides.env if overrides else {})}
    resources = merge_resources(spec.resources, overrides.resources if overrides else None)
    found = [namespace(spec), service_account(spec)]
    if spec.config:
        found.append(config_map(spec))
    found += [
        deployment(spec, image_ref, replicas, values, resources),
        service(spec),
        disruption_budget(spec),
    ]
    if spec.autoscaling:
        found.append(autoscaler(spec, overrides.replicas if overrides else None))
    found += network_policies(spec)
    if spec.monitoring and spec.monitoring.service_monitor:
        found.append(service_monitor(spec))
    return found


# -- metadata ---------------------------------------------------------------------------


def labels(spec: Spec) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.app, "app.kubernetes.io/managed-by": "socle"}


def selector(spec: Spec) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.app}


def meta(spec: Spec, name: str | None = None) -> Object:
    return {"name": name or spec.app, "namespace": spec.namespace, "labels": labels(spec)}


def namespace(spec: Spec) -> Object:
    pss = {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "audit", "warn")
        for suffix, value in (("", PSS), ("-version", "latest"))
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": spec.namespace,
            "labels": {"kubernetes.io/metadata.name": spec.namespace, **pss},
        },
    }


def service_account(spec: Spec) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(spec),
        "automountServiceAccountToken": False,
    }


def config_map_name(spec: Spec) -> str:
    return f"{spec.app}-config"


def config_map(spec: Spec) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(spec, config_map_name(spec)),
        "data": {file.key: file.content for file in spec.config},
    }


# -- the pod ----------------------------------------------------------------------------


def volume_name(path: str) -> str:
    """A DNS label for a writable path's emptyDir: `/var/log/tomcat10` -> `var-log-tomcat10`."""
    slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
    digest = hashlib.sha256(path.encode()).hexdigest()[:6]
    return f"w-{slug[:48].strip('-')}-{digest}"


def deployment(
    spec: Spec, image_ref: str, replicas: int, env: Mapping[str, str], resources: Resources
) -> Object:
    template_meta: Object = {"labels": labels(spec)}
    annotations = pod_annotations(spec)
    if annotations:
        template_meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(spec),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(spec)},
            "template": {
                "metadata": template_meta,
                "spec": pod_spec(spec, image_ref, env, resources),
            },
        },
    }


def pod_annotations(spec: Spec) -> dict[str, str]:
    """Prometheus' scrape annotations, and the config's hash so a change rolls the pods."""
    found: dict[str, str] = {}
    if spec.monitoring:
        port = next(p.port for p in spec.ports if p.name == spec.monitoring.port)
        found.update(
            {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(port),
                "prometheus.io/path": spec.monitoring.path,
            }
        )
    if spec.config:
        text = "\0".join(f"{f.path}\0{f.content}" for f in spec.config)
        found["socle.dev/config-sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return found


def pod_spec(spec: Spec, image_ref: str, env: Mapping[str, str], resources: Resources) -> Object:
    volumes: list[Object] = [{"name": volume_name(p), "emptyDir": {}} for p in spec.writable]
    if spec.config:
        volumes.insert(0, {"name": "config", "configMap": {"name": config_map_name(spec)}})
    pod: Object = {
        "serviceAccountName": spec.app,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": spec.user,
            "runAsGroup": spec.group,
            "fsGroup": spec.group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(spec, image_ref, env, resources)],
    }
    if volumes:
        pod["volumes"] = volumes
    return pod


def container(spec: Spec, image_ref: str, env: Mapping[str, str], resources: Resources) -> Object:
    found: Object = {
        "name": spec.app,
        "image": image_ref,
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": spec.user,
            "runAsGroup": spec.group,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if spec.ports:
        found["ports"] = [
            {"name": p.name, "containerPort": p.port, "protocol": "TCP"} for p in spec.ports
        ]
    variables: list[Object] = [{"name": k, "value": v} for k, v in env.items()]
    variables += [
        {"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}}
        for s in spec.secrets
    ]
    if variables:
        found["env"] = variables
    if resources.requests or resources.limits:
        found["resources"] = resource_dict(resources)
    for kind in ("startup", "readiness", "liveness"):
        if kind in spec.probes:
            found[f"{kind}Probe"] = probe(spec.probes[kind])
    mounts = [
        {"name": "config", "mountPath": f.path, "subPath": f.key, "readOnly": True}
        for f in spec.config
    ]
    mounts += [{"name": volume_name(p), "mountPath": p} for p in spec.writable]
    if mounts:
        found["volumeMounts"] = mounts
    return found


def resource_dict(resources: Resources) -> Object:
    found: Object = {}
    if resources.requests:
        found["requests"] = dict(resources.requests)
    if resources.limits:
        found["limits"] = dict(resources.limits)
    return found


def merge_resources(base: Resources, change: Resources | None) -> Resources:
    """The environment's quantities over the base's, key by key (as a strategic merge does)."""
    if change is None:
        return base
    return Resources({**base.requests, **change.requests}, {**base.limits, **change.limits})


def probe(p: Probe) -> Object:
    action: Object = (
        {"httpGet": {"path": p.http_path, "port": p.http_port}}
        if p.http_path
        else {"exec": {"command": list(p.command)}}
    )
    return {
        **action,
        "initialDelaySeconds": p.initial_delay_seconds,
        "periodSeconds": p.period_seconds,
        "timeoutSeconds": p.timeout_seconds,
        "failureThreshold": p.failure_threshold,
    }


# -- around the pod ---------------------------------------------------------------------


def service(spec: Spec) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(spec),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(spec),
            "ports": [
                {"name": p.name, "port": p.port, "targetPort": p.name, "protocol": "TCP"}
                for p in spec.ports
            ],
        },
    }


def disruption_budget(spec: Spec) -> Object:
    """At most one pod down at a time: a drain never blocks, even at one replica."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(spec),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(spec)}},
    }


def autoscaler(spec: Spec, replicas: int | None) -> Object:
    """An environment's replicas become its floor: `prod: {replicas: 3}` means at least 3."""
    assert spec.autoscaling is not None
    low = replicas or spec.autoscaling.min
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(spec),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.app},
            "minReplicas": low,
            "maxReplicas": max(spec.autoscaling.max, low),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": spec.autoscaling.cpu,
                        },
                    },
                }
            ],
        },
    }


def service_monitor(spec: Spec) -> Object:
    assert spec.monitoring is not None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(spec),
        "spec": {
            "selector": {"matchLabels": selector(spec)},
            "endpoints": [{"port": spec.monitoring.port, "path": spec.monitoring.path}],
        },
    }


# -- network ----------------------------------------------------------------------------


def network_policies(spec: Spec) -> list[Object]:
    """Deny everything in the namespace, then allow DNS and the declared flows."""
    dns = {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }
    found = [
        policy(spec, "default-deny", {}, {"policyTypes": ["Ingress", "Egress"]}),
        policy(
            spec, f"{spec.app}-dns", selector(spec), {"policyTypes": ["Egress"], "egress": [dns]}
        ),
    ]
    if spec.ingress:
        rules = [ingress_rule(spec, peer) for peer in spec.ingress]
        found.append(
            policy(
                spec,
                f"{spec.app}-ingress",
                selector(spec),
                {"policyTypes": ["Ingress"], "ingress": rules},
            )
        )
    if spec.egress:
        rules = [egress_rule(d) for d in spec.egress]
        found.append(
            policy(
                spec,
                f"{spec.app}-egress",
                selector(spec),
                {"policyTypes": ["Egress"], "egress": rules},
            )
        )
    return found


def policy(spec: Spec, name: str, pods: dict[str, str], body: Object) -> Object:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(spec, name),
        "spec": {"podSelector": {"matchLabels": pods} if pods else {}, **body},
    }


def peer_selectors(namespaces: Mapping[str, str] | None, pods: Mapping[str, str] | None) -> Object:
    found: Object = {}
    if namespaces is not None:
        found["namespaceSelector"] = {"matchLabels": dict(namespaces)} if namespaces else {}
    if pods is not None:
        found["podSelector"] = {"matchLabels": dict(pods)} if pods else {}
    return found


def ingress_rule(spec: Spec, peer: Peer) -> Object:
    names = peer.ports or tuple(p.name for p in spec.ports)
    return {
        "from": [peer_selectors(peer.namespaces, peer.pods)],
        "ports": [{"port": name, "protocol": "TCP"} for name in names],
    }


def egress_rule(d: Destination) -> Object:
    to = {"ipBlock": {"cidr": d.cidr}} if d.cidr else peer_selectors(d.namespaces, d.pods)
    return {"to": [to], "ports": [{"port": d.port, "protocol": d.protocol}]}


# -- kustomize --------------------------------------------------------------------------


def file_name(obj: Object) -> str:
    return FILE_NAMES[obj["kind"]].format(name=obj["metadata"]["name"])


def layout(spec: Spec, image_ref: str) -> dict[str, str]:
    """Relative path -> YAML text: `base/` with every object, `overlays/<env>/` with patches."""
    base = objects(spec, image_ref)
    files = {f"base/{file_name(obj)}": dump(obj) for obj in base}
    files["base/kustomization.yaml"] = dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [file_name(obj) for obj in base],
        }
    )
    for env in spec.environments:
        files.update(overlay(spec, image_ref, env, base))
    return files


def overlay(spec: Spec, image_ref: str, env: str, base: list[Object]) -> dict[str, str]:
    """Strategic merge patches: each object the environment changes, minus what it keeps."""
    changed = [obj for obj in objects(spec, image_ref, env) if obj not in base]
    patches = {f"overlays/{env}/{file_name(obj)}": dump(patch_of(obj)) for obj in changed}
    kustomization: Object = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base"],
        "labels": [{"pairs": {"socle.dev/environment": env}, "includeSelectors": False}],
    }
    if changed:
        kustomization["patches"] = [{"path": file_name(obj)} for obj in changed]
    return {f"overlays/{env}/kustomization.yaml": dump(kustomization), **patches}


def patch_of(obj: Object) -> Object:
    """The part of a changed object an environment sets: replicas, containers, HPA bounds."""
    head = {"apiVersion": obj["apiVersion"], "kind": obj["kind"]}
    name = {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]}
    if obj["kind"] == "Deployment":
        pod = obj["spec"]["template"]["spec"]
        keep = ("name", "env", "resources")
        containers = [{k: c[k] for k in keep if k in c} for c in pod["containers"]]
        body = {
            "replicas": obj["spec"]["replicas"],
            "template": {"spec": {"containers": containers}},
        }
        return {**head, "metadata": name, "spec": body}
    if obj["kind"] == "HorizontalPodAutoscaler":
        bounds = ("minReplicas", "maxReplicas")
        return {**head, "metadata": name, "spec": {k: obj["spec"][k] for k in bounds}}
    return obj


class Dumper(yaml.SafeDumper):
    """Block style, and multi-line strings (config files) as literal blocks."""


def literal(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, literal)


def dump(obj: Object) -> str:
    return yaml.dump(obj, Dumper=Dumper, sort_keys=False, default_flow_style=False)
