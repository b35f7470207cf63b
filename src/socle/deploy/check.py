"""`socle deploy check`: judge a folder of manifests the way a cluster's door would.

Works on any manifests, socle's or not: strict schemas for every Kubernetes
version from 1.30 to the newest kubernetes-validate bundles (a kind with no
schema is a problem), the Pod Security restricted profile, digest-pinned
images and, given the declared flows, a NetworkPolicy for each.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate.utils as kv  # type: ignore[import-untyped]
import yaml
from packaging.version import Version
from referencing import Registry, Resource

from socle.deploy import pss
from socle.errors import InputError

OLDEST = Version("1.30")
DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")
DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
# apiVersion/kind -> the schema socle ships (kubernetes-validate bundles no custom resource).
CUSTOM_SCHEMAS = {
    ("kyverno.io/v1", "ClusterPolicy"): "clusterpolicy-kyverno-v1.yaml",
    ("policies.kyverno.io/v1", "ImageValidatingPolicy"): "imagevalidatingpolicy-policies-v1.yaml",
    ("policy.sigstore.dev/v1beta1", "ClusterImagePolicy"): "clusterimagepolicy-policy-v1beta1.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.yaml",
}

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Finding:
    """One problem, printed as `FILE: kind/name: field: problem`."""

    file: str
    object: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.object}: {self.field}: {self.problem}"


@dataclass(frozen=True)
class Manifest:
    """One object read from a file."""

    file: str
    obj: Json

    @property
    def label(self) -> str:
        meta = self.obj.get("metadata") or {}
        return f"{self.obj.get('kind', '?')}/{meta.get('name', '?')}"


def versions(requested: Iterable[str] = ()) -> list[str]:
    """The Kubernetes versions to check: those asked for, else 1.30 to the newest bundled."""
    asked = list(requested)
    bundled = sorted({Version(v).base_version for v in kv.all_versions()}, key=Version)
    if not asked:
        return [v.rsplit(".", 1)[0] for v in bundled if Version(v) >= OLDEST]
    newest = Version(bundled[-1])
    for v in asked:
        if not re.fullmatch(r"1\.\d+", v) or Version(v) > newest:
            raise InputError(
                f"--k8s-version {v}: not a Kubernetes version kubernetes-validate "
                f"{kv.__version__} bundles", hint=f"use 1.N up to {newest.major}.{newest.minor}",
            )  # fmt: skip
    return asked


def manifests(folder: Path) -> list[Manifest]:
    """Every object of every YAML file under FOLDER; kustomization files are not objects."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of manifests")
    found: list[Manifest] = []
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        if path.name in ("kustomization.yaml", "kustomization.yml"):
            continue
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise InputError(f"{path}: cannot be read as YAML: {error}") from error
        for doc in documents:
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise InputError(f"{path}: a document is not a Kubernetes object (a mapping)")
            found.append(Manifest(str(path), doc))
    return found


def check_schema(item: Manifest, version: str) -> Iterator[Finding]:
    """Strict schema validation of one object against one Kubernetes version."""
    obj = item.obj
    if not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
        yield Finding(item.file, item.label, "apiVersion", "apiVersion and kind are required")
        return
    try:
        custom = CUSTOM_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if custom is not None:
            custom_validator(custom, version).validate(obj)
        else:
            kv.validate(dict(obj), version, strict=True)
    except kv.SchemaNotFoundError:
        yield Finding(
            item.file, item.label, "kind",
            f"no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {version}",
        )  # fmt: skip
    except jsonschema.ValidationError as error:
        field = ".".join(str(p) for p in error.absolute_path) or "(object)"
        yield Finding(item.file, item.label, field, f"Kubernetes {version}: {error.message}")


@functools.cache
def custom_validator(name: str, version: str) -> jsonschema.protocols.Validator:
    """A strict validator of a shipped CRD schema, with that version's ObjectMeta."""
    text = resources.files("socle.deploy").joinpath("schemas", name).read_text(encoding="utf-8")
    bundled = [v for v in kv.all_versions() if kv.major_minor(v) == version][0]
    definitions = kv.schema_contents(
        f"kubernetes-json-schema/v{bundled}-local-strict/_definitions.json", version
    )
    registry: Registry[Any] = Registry().with_resource(
        DEFINITIONS_URI, Resource.from_contents(definitions)
    )
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(
        yaml.safe_load(text), registry=registry
    )
    return validator


def check_images(item: Manifest) -> Iterator[Finding]:
    """Every container image (init and ephemeral too) referenced by a sha256 digest."""
    found = pss.pod_spec(item.obj)
    if found is None:
        return
    base, spec = found
    for list_name in pss.CONTAINER_LISTS:
        for i, container in enumerate(spec.get(list_name) or []):
            image = str(container.get("image", ""))
            if not DIGEST_RE.search(image):
                yield Finding(
                    item.file, item.label, f"{base}.{list_name}[{i}].image",
                    f"{image or '(none)'!r} is not pinned by digest (@sha256: and 64 hex)",
                )  # fmt: skip


def check_pod_security(item: Manifest) -> Iterator[Finding]:
    for v in pss.check(item.obj):
        yield Finding(item.file, v.object, v.field, v.problem)


def check(items: list[Manifest], k8s_versions: list[str]) -> list[Finding]:
    """Every problem of every object, in file order."""
    findings: list[Finding] = []
    for item in items:
        for version in k8s_versions:
            findings.extend(check_schema(item, version))
        findings.extend(check_pod_security(item))
        findings.extend(check_images(item))
    return findings
