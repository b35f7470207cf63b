"""A Helm chart (apiVersion v2) of the objects `socle deploy render` writes, and its package.

The chart keeps the image pinned: its values hold `image.repository` and
`image.digest`, never a tag. The Deployment's template joins them as
`repository@digest` with `required`, and `values.schema.json` refuses a digest
that is not `sha256:` and 64 hex digits, a repository carrying a tag, and any
other key under `image` (such as `tag`), so `helm install --set image.tag=...`
fails instead of unpinning the image.

The package is Helm's format, a gzipped tar of `APP/...`, written here
deterministically (sorted entries, fixed times and owners): the same objects
give the same bytes, so the same sha256 in the provenance file.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from socle.errors import InputError

# Helm's own rule for chart names, kept stricter: lowercase words joined by dashes.
CHART_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
SHORT_VERSION = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# A repository without a tag: the last path segment has no ':' (a port sits before a '/').
REPOSITORY = r"^([^/@]+/)*[^/:@]+$"

# Every archive entry gets this time (2000-01-01T00:00:00Z): gzip and tar keep
# no clock, so packaging twice gives the same bytes.
FIXED_MTIME = 946684800

# Placeholders put into the objects before dumping and replaced by template actions after.
IMAGE_MARK = "socle-chart-image-placeholder"
REPLICAS_MARK = "socle-chart-replicas-placeholder"
IMAGE_ACTION = (
    '"{{ required "image.repository is required" .Values.image.repository }}'
    '@{{ required "image.digest is required: the image is pinned by digest" .Values.image.digest }}"'
)
REPLICAS_ACTION = "{{ .Values.replicas }}"

POD_SPEC_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


@dataclass(frozen=True)
class Chart:
    """A chart's files, by their path inside the chart's folder (`Chart.yaml`, `templates/x.yaml`)."""

    name: str
    version: str
    files: Mapping[str, bytes]

    @property
    def archive_name(self) -> str:
        """The package's file name, as `helm package` names it."""
        return f"{self.name}-{self.version}.tgz"

    @property
    def metadata(self) -> bytes:
        """Chart.yaml: the chart's metadata, also the first part of the provenance body."""
        return self.files["Chart.yaml"]


def chart_version(image_version: str, override: str | None = None) -> str:
    """The chart's SemVer 2 version: `override`, or the image's version padded (`1.0` -> `1.0.0`).

    Helm names the package and matches OCI tags by this version, so a version
    that is not SemVer is refused rather than guessed at.
    """
    if override is not None:
        if not SEMVER.match(override):
            raise InputError(
                f"chart version {override!r} is not SemVer 2 (MAJOR.MINOR.PATCH)",
                hint="pass --version like 1.0.0",
            )
        return override
    if SEMVER.match(image_version):
        return image_version
    if SHORT_VERSION.match(image_version):
        parts = image_version.split(".")
        return ".".join([*parts, *["0"] * (3 - len(parts))])
    raise InputError(
        f"image version {image_version!r} is not SemVer: Helm needs MAJOR.MINOR.PATCH",
        hint="pass --version like 1.0.0",
    )


def split_pinned(image_ref: str) -> tuple[str, str]:
    """`repository@sha256:hex` -> (repository, digest); anything else is refused."""
    repository, at, digest = image_ref.partition("@")
    if not at or not DIGEST.match(digest) or not re.match(REPOSITORY, repository):
        raise InputError(
            f"image {image_ref!r} is not pinned as repository@sha256:<64 hex digits>",
            hint="a chart is made from a resolved, digest-pinned image; never from a tag",
        )
    return repository, digest


def build_chart(
    name: str,
    objects: Sequence[Mapping[str, Any]],
    image_ref: str,
    *,
    version: str,
    app_version: str,
    description: str | None = None,
) -> Chart:
    """The chart of `objects`, whose containers running `image_ref` read it from the values.

    Every other container image must already be pinned by digest; it stays literal.
    """
    if not CHART_NAME.match(name):
        raise InputError(
            f"{name!r} cannot name a Helm chart: use lowercase letters, digits and dashes"
        )
    if not SEMVER.match(version):
        raise InputError(f"chart version {version!r} is not SemVer 2 (MAJOR.MINOR.PATCH)")
    repository, digest = split_pinned(image_ref)
    values: dict[str, Any] = {"image": {"repository": repository, "digest": digest}}
    files: dict[str, bytes] = {
        "Chart.yaml": chart_yaml(name, version, app_version, description),
    }
    for obj in objects:
        path = f"templates/{template_name(obj)}"
        if path in files:
            raise InputError(f"two objects would share the chart template {path}")
        templated, replicas = template_of(obj, image_ref)
        if replicas is not None:
            values["replicas"] = replicas
        files[path] = templated.encode()
    files["values.yaml"] = values_yaml(values)
    files["values.schema.json"] = values_schema("replicas" in values)
    return Chart(name=name, version=version, files=files)


class MetadataDumper(yaml.SafeDumper):
    """Quotes a string that needs it with `"`, as Helm's YAML marshaller does (`appVersion: "1.0"`)."""

    def choose_scalar_style(self) -> str:
        style = str(super().choose_scalar_style())
        return '"' if style == "'" else style


def chart_yaml(name: str, version: str, app_version: str, description: str | None) -> bytes:
    """Chart.yaml as Helm marshals the metadata into its own provenance: keys sorted, `"` quotes.

    So the provenance body's first part is this file byte for byte, and equals
    what `helm package --sign` would write for the same chart.
    """
    metadata = {
        "apiVersion": "v2",
        "appVersion": app_version,
        "description": description or f"{name}, deployed from socle's digest-pinned, signed image",
        "name": name,
        "type": "application",
        "version": version,
    }
    return yaml.dump(metadata, Dumper=MetadataDumper, sort_keys=True, width=1_000_000).encode()


def template_name(obj: Mapping[str, Any]) -> str:
    """`deployment-legacy-app.yaml`: the kind and name say which object a template holds."""
    kind = str(obj.get("kind", "")).lower()
    name = str(obj.get("metadata", {}).get("name", ""))
    if not kind or not name:
        raise InputError(f"an object without kind or metadata.name cannot be charted: {obj!r:.80}")
    return f"{kind}-{name}.yaml"


def template_of(obj: Mapping[str, Any], image_ref: str) -> tuple[str, int | None]:
    """The object as a template, and the replicas it declared (which move into the values).

    Text that looks like a template action (`{{`) is escaped so Helm writes it
    back verbatim, for instance inside a config file.
    """
    described = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    plain = dump(obj)
    if IMAGE_MARK in plain or REPLICAS_MARK in plain:
        raise InputError(f"{described} contains socle's chart placeholder text")
    marked = copy.deepcopy(dict(obj))
    replicas = None
    if marked.get("kind") in POD_SPEC_KINDS:
        spec = marked.get("spec", {})
        if "replicas" in spec:
            replicas = int(spec["replicas"])
            spec["replicas"] = REPLICAS_MARK
        pod = spec.get("template", {}).get("spec", {})
        mark_images(pod, image_ref, described)
    text = dump(marked).replace("{{", '{{ "{{" }}')
    text = text.replace(IMAGE_MARK, IMAGE_ACTION).replace(REPLICAS_MARK, REPLICAS_ACTION)
    return text, replicas


def mark_images(pod: dict[str, Any], image_ref: str, described: str) -> None:
    """Put the image placeholder where a container runs the chart's image; refuse tags elsewhere."""
    for key in ("initContainers", "containers"):
        for container in pod.get(key, []):
            image = str(container.get("image", ""))
            if image == image_ref:
                container["image"] = IMAGE_MARK
            elif "@sha256:" not in image:
                raise InputError(
                    f"{described}: container {container.get('name')!r} image {image!r} "
                    "is not pinned by digest",
                    hint="render the objects from resolved images: a chart never carries a tag",
                )


class BlockDumper(yaml.SafeDumper):
    """Safe YAML that writes a multi-line string (a config file) as a `|` block, as a person would."""


def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


BlockDumper.add_representer(str, represent_str)


def dump(obj: Mapping[str, Any]) -> str:
    """One object as block YAML, in its own key order, never folding long strings."""
    return yaml.dump(
        dict(obj), Dumper=BlockDumper, sort_keys=False, default_flow_style=False, width=1_000_000
    )


def values_yaml(values: Mapping[str, Any]) -> bytes:
    """values.yaml, with the reason the image has no tag written where an operator looks."""
    head = (
        "# The image is pinned by digest: the templates render repository@digest,\n"
        "# and values.schema.json refuses a tag. Change both to deploy another image.\n"
    )
    return (head + yaml.safe_dump(dict(values), sort_keys=False)).encode()


def values_schema(with_replicas: bool) -> bytes:
    """values.schema.json: Helm checks the values against it on lint, template and install."""
    properties: dict[str, Any] = {
        "image": {
            "type": "object",
            "additionalProperties": False,
            "required": ["repository", "digest"],
            "properties": {
                "repository": {"type": "string", "pattern": REPOSITORY},
                "digest": {"type": "string", "pattern": DIGEST.pattern},
            },
        }
    }
    if with_replicas:
        properties["replicas"] = {"type": "integer", "minimum": 0}
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
    }
    return (json.dumps(schema, indent=2) + "\n").encode()


def package(chart: Chart) -> bytes:
    """The chart as Helm's package: a gzipped tar of `NAME/...`, byte for byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(chart.files):
            data = chart.files[path]
            info = tarfile.TarInfo(f"{chart.name}/{path}")
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=FIXED_MTIME) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
