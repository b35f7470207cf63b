"""Rendering: every object, Pod Security restricted fields, digest references, overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from socle.deploy import render
from socle.deploy import spec as specs
from socle.errors import InputError
from socle.validate import validate

EXAMPLE = Path(__file__).parents[3] / "examples" / "enterprise" / "catalog.yaml"
REF = "127.0.0.1:5000/my/legacy-app@sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def spec() -> specs.Spec:
    catalog, graph = validate(EXAMPLE)
    return specs.load(catalog, graph, "legacy-app")


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        found.setdefault(obj["kind"], []).append(obj)
    return found


def test_every_object_is_there(spec: specs.Spec) -> None:
    kinds = by_kind(render.objects(spec, REF))
    assert {k: len(v) for k, v in kinds.items()} == {
        "Namespace": 1, "ServiceAccount": 1, "ConfigMap": 1, "Deployment": 1, "Service": 1,
        "PodDisruptionBudget": 1, "HorizontalPodAutoscaler": 1, "NetworkPolicy": 4,
        "ServiceMonitor": 1,
    }  # fmt: skip
    labels = kinds["Namespace"][0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert kinds["ServiceAccount"][0]["automountServiceAccountToken"] is False


def test_the_pod_is_restricted(spec: specs.Spec) -> None:
    deployment = by_kind(render.objects(spec, REF))["Deployment"][0]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 100
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["image"] == REF
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in spec.writable:
        assert volumes[mounts[path]["name"]] == {"name": mounts[path]["name"], "emptyDir": {}}
    assert mounts["/etc/legacy-app/application.properties"]["readOnly"] is True
    assert set(container) >= {"readinessProbe", "livenessProbe", "startupProbe", "resources"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"


def test_network_policies_deny_then_allow_dns_and_declared_flows(spec: specs.Spec) -> None:
    policies = {
        p["metadata"]["name"]: p["spec"]
        for p in by_kind(render.objects(spec, REF))["NetworkPolicy"]
    }
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = policies["legacy-app-dns"]["egress"][0]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    ingress = policies["legacy-app-ingress"]["ingress"]
    assert len(ingress) == 2 and ingress[0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    egress = policies["legacy-app-egress"]["egress"]
    assert {"ipBlock": {"cidr": "10.20.0.25/32"}} in egress[1]["to"]


@pytest.mark.parametrize(
    "ref", ["127.0.0.1:5000/my/legacy-app:1.0", "legacy-app@sha256:" + "ab" * 32, "x@sha256:12"]
)
def test_a_tag_is_never_rendered(spec: specs.Spec, ref: str) -> None:
    with pytest.raises(InputError, match="not pinned by digest"):
        render.objects(spec, ref)


def test_overlays_patch_what_each_environment_changes(spec: specs.Spec) -> None:
    files = render.layout(spec, REF)
    base = yaml.safe_load(files["base/kustomization.yaml"])
    assert all(f"base/{name}" in files for name in base["resources"])
    prod = yaml.safe_load(files["overlays/prod/kustomization.yaml"])
    assert prod["resources"] == ["../../base"]
    patch = yaml.safe_load(files["overlays/prod/deployment.yaml"])
    assert patch["spec"]["replicas"] == 3
    assert patch["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"
    dev = yaml.safe_load(files["overlays/dev/deployment.yaml"])
    names = [e["name"] for e in dev["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert "LEGACY_LOG_LEVEL" in names
    assert all(
        "@sha256:" in line for t in files.values() for line in t.splitlines() if "image:" in line
    )


def test_an_unknown_environment_lists_the_known_ones(spec: specs.Spec) -> None:
    with pytest.raises(InputError, match="known: dev, prod"):
        render.objects(spec, REF, "staging")
