"""Every declared flow has its NetworkPolicy: the check of `socle deploy check --app`.

Given an application's description and a folder of manifests (socle's or
not), the namespace must deny by default (a policy selecting every pod, with
both policy types and no rule), and each flow the description declares must
be allowed by some policy selecting the application's pods: who may call it
(ingress: namespaces, pods, ports), what it may call (egress: a CIDR or
selectors, a port), and DNS. A policy allows a declared peer only if it
selects every pod the description names, so a narrower policy is a finding.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from socle.deploy.check import Finding, Manifest
from socle.deploy.spec import Destination, Peer, Spec

Json = Mapping[str, Any]
OWN = "kubernetes.io/metadata.name"  # the label every namespace carries with its name


def check_flows(spec: Spec, items: Iterable[Manifest]) -> list[Finding]:
    """One finding per declared flow no NetworkPolicy allows, and for a missing default deny."""
    objects = list(items)
    where = str(spec.path)
    labels = pod_labels(spec, objects)
    if labels is None:
        return [
            Finding(where, f"Deployment/{spec.app}", "metadata.name", "no such Deployment in "
                    f"namespace {spec.namespace}: the flows cannot be checked")
        ]  # fmt: skip
    policies = [
        m.obj.get("spec") or {}
        for m in objects
        if m.obj.get("kind") == "NetworkPolicy" and namespace_of(m.obj) == spec.namespace
    ]
    found = []
    if not any(denies_all(p) for p in policies):
        found.append(
            Finding(where, f"Namespace/{spec.namespace}", "NetworkPolicy",
                    "no default-deny policy (every pod, Ingress and Egress, no rule)")
        )  # fmt: skip
    mine = [p for p in policies if selects(p.get("podSelector"), labels)]
    numbers = {p.name: p.port for p in spec.ports}
    for i, peer in enumerate(spec.ingress):
        if not any(allows_ingress(rule, peer, spec, numbers) for rule in rules(mine, "ingress")):
            found.append(Finding(where, f"app/{spec.app}", f"ingress[{i}]", describe_peer(peer)))
    for i, dest in enumerate(spec.egress):
        if not any(allows_egress(rule, dest, spec.namespace) for rule in rules(mine, "egress")):
            found.append(Finding(where, f"app/{spec.app}", f"egress[{i}]", describe_dest(dest)))
    if not any(allows_port(rule, 53, "UDP", {}) for rule in rules(mine, "egress")):
        found.append(
            Finding(where, f"app/{spec.app}", "egress", "DNS (port 53/UDP) is not allowed")
        )
    return found


def namespace_of(obj: Json) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def pod_labels(spec: Spec, objects: list[Manifest]) -> Mapping[str, str] | None:
    """The labels of the application's pods, from its Deployment's template."""
    for m in objects:
        meta = m.obj.get("metadata") or {}
        mine = meta.get("name") == spec.app and namespace_of(m.obj) in (spec.namespace, None)
        if m.obj.get("kind") == "Deployment" and mine:
            template = ((m.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
            return dict(template.get("labels") or {})
    return None


def selects(selector: Json | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects `labels`."""
    if not selector:
        return True
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = set(expression.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def denies_all(policy: Json) -> bool:
    selector = policy.get("podSelector") or {}
    types = set(policy.get("policyTypes") or [])
    empty = not selector.get("matchLabels") and not selector.get("matchExpressions")
    return (
        empty
        and {"Ingress", "Egress"} <= types
        and not policy.get("ingress")
        and not policy.get("egress")
    )


def rules(policies: list[Json], direction: str) -> Iterator[Json]:
    kind = direction.capitalize()
    for policy in policies:
        if kind in (policy.get("policyTypes") or ["Ingress"]):
            yield from policy.get(direction) or []


def covers(selector: Json | None, declared: Mapping[str, str] | None) -> bool:
    """A policy's selector allows every object the description names (None: all of them)."""
    if declared is None:
        return not selector or (
            not selector.get("matchLabels") and not selector.get("matchExpressions")
        )
    return selects(selector, declared)


def allows_peer(entries: list[Json], namespaces: Mapping[str, str] | None,
                pods: Mapping[str, str] | None, own: str) -> bool:  # fmt: skip
    """Some entry of a rule's `from`/`to` allows the declared namespaces and pods."""
    if not entries:
        return True  # a rule without peers allows every peer
    for entry in entries:
        if "ipBlock" in entry:
            continue
        if "namespaceSelector" in entry:
            target = namespaces if namespaces is not None else {OWN: own}
            if not covers(entry["namespaceSelector"], target):
                continue
        elif namespaces is not None and namespaces.get(OWN) != own:
            continue  # without a namespace selector, only the policy's own namespace
        if "podSelector" in entry and not covers(entry["podSelector"], pods):
            continue
        return True
    return False


def allows_port(rule: Json, port: int | str, protocol: str, numbers: Mapping[str, int]) -> bool:
    ports = rule.get("ports") or []
    if not ports:
        return True
    number = numbers.get(port, port) if isinstance(port, str) else port
    for entry in ports:
        if (entry.get("protocol") or "TCP") != protocol:
            continue
        allowed = entry.get("port")
        if allowed is None or allowed in (port, number):
            return True
        if isinstance(allowed, str) and numbers.get(allowed) == number:
            return True
        end = entry.get("endPort")
        if (
            isinstance(allowed, int)
            and isinstance(number, int)
            and end
            and allowed <= number <= end
        ):
            return True
    return False


def allows_ingress(rule: Json, peer: Peer, spec: Spec, numbers: Mapping[str, int]) -> bool:
    if not allows_peer(rule.get("from") or [], peer.namespaces, peer.pods, spec.namespace):
        return False
    wanted = peer.ports or tuple(p.name for p in spec.ports)
    return all(allows_port(rule, name, "TCP", numbers) for name in wanted)


def allows_egress(rule: Json, dest: Destination, own: str) -> bool:
    if not allows_port(rule, dest.port, dest.protocol, {}):
        return False
    entries = rule.get("to") or []
    if dest.cidr is None:
        return allows_peer(entries, dest.namespaces, dest.pods, own)
    if not entries:
        return True
    wanted = ipaddress.ip_network(dest.cidr, strict=False)
    for entry in entries:
        block = entry.get("ipBlock")
        if not block:
            continue
        try:
            allowed = ipaddress.ip_network(str(block.get("cidr", "")), strict=False)
            excluded = [
                ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []
            ]
        except ValueError:
            continue  # a malformed block allows nothing; the schema check reports it
        if (
            wanted.version == allowed.version
            and wanted.subnet_of(allowed)  # type: ignore[arg-type]
            and not any(wanted.overlaps(e) for e in excluded)
        ):
            return True
    return False


def describe_peer(peer: Peer) -> str:
    who = []
    if peer.namespaces is not None:
        who.append(f"namespaces {dict(peer.namespaces)}")
    if peer.pods is not None:
        who.append(f"pods {dict(peer.pods)}")
    ports = f" on {', '.join(peer.ports)}" if peer.ports else ""
    return f"no NetworkPolicy lets {' and '.join(who) or 'its own namespace'} call it{ports}"


def describe_dest(dest: Destination) -> str:
    target = dest.cidr or " and ".join(
        f"{k} {dict(v)}"
        for k, v in (("namespaces", dest.namespaces), ("pods", dest.pods))
        if v is not None
    )
    return f"no NetworkPolicy lets it call {target or 'its own namespace'} on {dest.port}/{dest.protocol}"
