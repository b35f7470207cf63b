"""Every declared flow has its NetworkPolicy: the rendered example passes, each gap is named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from socle.deploy import render
from socle.deploy import spec as specs
from socle.deploy.check import Manifest
from socle.deploy.flows import check_flows
from socle.validate import validate

EXAMPLE = Path(__file__).parents[3] / "examples" / "enterprise" / "catalog.yaml"
REF = "127.0.0.1:5000/my/legacy-app@sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def spec() -> specs.Spec:
    catalog, graph = validate(EXAMPLE)
    return specs.load(catalog, graph, "legacy-app")


@pytest.fixture
def objects(spec: specs.Spec) -> list[dict[str, Any]]:
    return copy.deepcopy(render.objects(spec, REF))


def manifests(objects: list[dict[str, Any]]) -> list[Manifest]:
    return [Manifest("out.yaml", obj) for obj in objects]


def policy(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(
        o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == name
    )


def problems(spec: specs.Spec, objects: list[dict[str, Any]]) -> list[str]:
    return [f"{f.field}: {f.problem}" for f in check_flows(spec, manifests(objects))]


def test_socles_own_rendering_allows_every_declared_flow(
    spec: specs.Spec, objects: list[dict[str, Any]]
) -> None:
    assert spec.ingress and spec.egress  # the example declares flows both ways
    assert problems(spec, objects) == []


def test_without_the_default_deny_the_namespace_is_named(
    spec: specs.Spec, objects: list[dict[str, Any]]
) -> None:
    objects.remove(policy(objects, "default-deny"))
    assert problems(spec, objects) == [
        "NetworkPolicy: no default-deny policy (every pod, Ingress and Egress, no rule)"
    ]


def test_a_missing_ingress_rule_names_the_caller(
    spec: specs.Spec, objects: list[dict[str, Any]]
) -> None:
    ingress = policy(objects, "legacy-app-ingress")
    ingress["spec"]["ingress"] = ingress["spec"]["ingress"][:1]  # Prometheus's rule is gone
    found = problems(spec, objects)
    assert len(found) == 1 and found[0].startswith("ingress[1]: no NetworkPolicy lets namespaces")
    assert "prometheus" in found[0]


def test_a_narrower_selector_or_another_port_does_not_count(
    spec: specs.Spec, objects: list[dict[str, Any]]
) -> None:
    ingress = policy(objects, "legacy-app-ingress")
    ingress["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["tier"] = "edge"
    egress = policy(objects, "legacy-app-egress")
    egress["spec"]["egress"][0]["ports"] = [{"port": 5433, "protocol": "TCP"}]
    egress["spec"]["egress"][1]["to"] = [
        {"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.0.0/24"]}}
    ]
    assert [f.split(":")[0] for f in problems(spec, objects)] == [
        "ingress[0]",
        "egress[0]",
        "egress[1]",
    ]


def test_a_wider_policy_allows_the_flow(spec: specs.Spec, objects: list[dict[str, Any]]) -> None:
    egress = policy(objects, "legacy-app-egress")
    egress["spec"]["egress"][1]["to"] = [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    egress["spec"]["egress"][0]["ports"] = [{"port": 5000, "endPort": 6000, "protocol": "TCP"}]
    assert problems(spec, objects) == []


def test_without_dns_or_a_deployment_it_says_so(
    spec: specs.Spec, objects: list[dict[str, Any]]
) -> None:
    objects.remove(policy(objects, "legacy-app-dns"))
    assert problems(spec, objects) == ["egress: DNS (port 53/UDP) is not allowed"]
    no_deployment = [o for o in objects if o["kind"] != "Deployment"]
    (only,) = problems(spec, no_deployment)
    assert "no such Deployment in namespace" in only
