"""Hand-made Kubernetes objects of every kind `socle deploy render` writes, for the chart tests."""

from __future__ import annotations

from typing import Any

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"127.0.0.1:5000/my/legacy-app@{DIGEST}"
NAMESPACE = "legacy"
LABELS = {"app.kubernetes.io/name": "legacy-app"}
KINDS = [
    "Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service",
    "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor",
]  # fmt: skip


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": dict(LABELS), **extra}


def deployment(image: str = IMAGE, replicas: int = 2) -> dict[str, Any]:
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("legacy-app"),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {
                    "labels": dict(LABELS),
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
                },
                "spec": {
                    "serviceAccountName": "legacy-app",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "legacy-app",
                            "image": image,
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "securityContext": restricted,
                            "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/legacy"},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "legacy-app"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def objects(image: str = IMAGE) -> list[dict[str, Any]]:
    """One object of each kind, the config file holding text that looks like a Helm action."""
    port = [{"port": 8080, "protocol": "TCP"}]
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta("legacy-app"),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("legacy-app"),
            "data": {"app.properties": "greeting={{ not a template }}\nlevel=info\n"},
        },
        deployment(image),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("legacy-app"),
            "spec": {
                "selector": dict(LABELS),
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta("legacy-app"),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(LABELS)}},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta("legacy-app"),
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "legacy-app",
                },
                "minReplicas": 2,
                "maxReplicas": 4,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta("legacy-app"),
            "spec": {
                "podSelector": {"matchLabels": dict(LABELS)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "front"}
                                }
                            }
                        ],
                        "ports": port,
                    }
                ],
            },
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": meta("legacy-app"),
            "spec": {
                "selector": {"matchLabels": dict(LABELS)},
                "endpoints": [{"port": "http", "path": "/metrics"}],
            },
        },
    ]
