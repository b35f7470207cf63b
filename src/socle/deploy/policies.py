"""Admission policies that refuse, at the cluster's door, an image socle did not sign.

Generated from socle's PUBLIC key for every image under `<registry>/`: each
requires socle's cosign signature and a digest. All verify offline with the key
alone: no transparency log, no certificate transparency, as socle signs with a
key and publishes no Rekor entry.
"""

from __future__ import annotations

from typing import Any

NAME = "socle-signed-images"
# Every image of the pod, including init and ephemeral containers (Kyverno's image extractors).
ALL_IMAGES = "images.containers + images.initContainers + images.ephemeralContainers"


def kyverno_cluster_policy(public_key: str, registry: str) -> dict[str, Any]:
    """kyverno.io/v1 ClusterPolicy: verifyImages with the key, enforcing, tags refused.

    `verifyDigest` with `mutateDigest` off refuses a tag instead of rewriting it,
    so a manifest that skipped socle's pinning is caught, not silently fixed.
    """
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": NAME},
        "spec": {
            "background": False,
            "webhookTimeoutSeconds": 30,
            "rules": [{
                "name": "socle-signature-and-digest",
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "verifyImages": [{
                    "imageReferences": [f"{registry}/*"],
                    "failureAction": "Enforce",
                    "type": "Cosign",
                    "mutateDigest": False,
                    "verifyDigest": True,
                    "required": True,
                    "attestors": [{"count": 1, "entries": [{"keys": {
                        "publicKeys": public_key,
                        "signatureAlgorithm": "sha256",
                        "rekor": {"ignoreTlog": True},
                        "ctlog": {"ignoreSCT": True},
                    }}]}],
                }],
            }],
        },
    }  # fmt: skip


def kyverno_image_validating_policy(public_key: str, registry: str) -> dict[str, Any]:
    """policies.kyverno.io/v1 ImageValidatingPolicy, the CEL form of current Kyverno."""
    return {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "ImageValidatingPolicy",
        "metadata": {"name": NAME},
        "spec": {
            "validationActions": ["Deny"],
            "failurePolicy": "Fail",
            "webhookConfiguration": {"timeoutSeconds": 30},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["pods"],
            }]},
            "matchImageReferences": [{"glob": f"{registry}/*"}],
            "validationConfigurations": {
                "mutateDigest": False, "verifyDigest": True, "required": True,
            },
            "attestors": [{"name": "socle", "cosign": {
                "key": {"data": public_key, "hashAlgorithm": "sha256"},
                "ctlog": {"insecureIgnoreTlog": True, "insecureIgnoreSCT": True},
            }}],
            "validations": [{
                "expression": (
                    f"({ALL_IMAGES}).map(image, "
                    "verifyImageSignatures(image, [attestors.socle])).all(e, e > 0)"
                ),
                "message": f"every image from {registry} must carry socle's signature",
            }],
        },
    }  # fmt: skip


def sigstore_cluster_image_policy(public_key: str, registry: str) -> dict[str, Any]:
    """policy.sigstore.dev/v1beta1 ClusterImagePolicy with one key authority.

    A key authority without `ctlog` skips the transparency log (policy-controller
    verifies offline then); policy-controller resolves every tag to a digest and
    checks the signature of that digest.
    """
    return {
        "apiVersion": "policy.sigstore.dev/v1beta1",
        "kind": "ClusterImagePolicy",
        "metadata": {"name": NAME},
        "spec": {
            "mode": "enforce",
            "images": [{"glob": f"{registry}/**"}],
            "authorities": [{"name": "socle", "key": {"data": public_key, "hashAlgorithm": "sha256"}}],
        },
    }  # fmt: skip


def all_policies(public_key: str, registry: str) -> dict[str, dict[str, Any]]:
    """File name -> policy object, for `socle deploy policies -o DIR`."""
    return {
        "kyverno-clusterpolicy.yaml": kyverno_cluster_policy(public_key, registry),
        "kyverno-imagevalidatingpolicy.yaml": kyverno_image_validating_policy(public_key, registry),
        "sigstore-clusterimagepolicy.yaml": sigstore_cluster_image_policy(public_key, registry),
    }
