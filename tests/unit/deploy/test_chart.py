"""The chart's files, its package and the provenance body (Helm itself judges them in integration)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest
import yaml

from socle.deploy.chart import build_chart, chart_version, package, split_pinned
from socle.deploy.provenance import message_block
from socle.errors import InputError
from tests.unit.deploy.chart_objects import DIGEST, IMAGE, KINDS, deployment, objects


def make(objs: list[dict[str, object]] | None = None, version: str = "1.0.0"):  # type: ignore[no-untyped-def]
    return build_chart("legacy-app", objs or objects(), IMAGE, version=version, app_version="1.0")


def test_chart_yaml_is_helm_v2_with_the_name_and_versions() -> None:
    meta = yaml.safe_load(make().files["Chart.yaml"])
    assert meta["apiVersion"] == "v2"
    assert (meta["name"], meta["version"], meta["appVersion"]) == ("legacy-app", "1.0.0", "1.0")
    assert meta["type"] == "application"


def test_values_pin_the_image_by_digest_and_carry_the_replicas() -> None:
    values = yaml.safe_load(make().files["values.yaml"])
    assert values == {
        "image": {"repository": "127.0.0.1:5000/my/legacy-app", "digest": DIGEST},
        "replicas": 2,
    }


def test_one_template_per_object() -> None:
    templates = sorted(p for p in make().files if p.startswith("templates/"))
    assert len(templates) == len(KINDS)
    assert "templates/deployment-legacy-app.yaml" in templates
    assert "templates/namespace-legacy.yaml" in templates


def test_the_deployment_template_reads_image_and_replicas_from_the_values() -> None:
    text = make().files["templates/deployment-legacy-app.yaml"].decode()
    assert "replicas: {{ .Values.replicas }}" in text
    assert "required" in text and ".Values.image.repository }}@{{" in text
    assert ".Values.image.digest }}" in text
    assert IMAGE not in text


def test_text_that_looks_like_an_action_is_escaped() -> None:
    text = make().files["templates/configmap-legacy-app.yaml"].decode()
    assert 'greeting={{ "{{" }} not a template }}' in text


def test_the_schema_refuses_a_tag_and_any_other_image_key() -> None:
    schema = json.loads(make().files["values.schema.json"])
    image = schema["properties"]["image"]
    assert image["additionalProperties"] is False
    assert image["required"] == ["repository", "digest"]
    assert schema["required"] == ["image", "replicas"]


def test_a_deployment_without_replicas_leaves_them_out_of_the_values() -> None:
    dep = deployment()
    del dep["spec"]["replicas"]
    chart = make([dep])
    assert "replicas" not in yaml.safe_load(chart.files["values.yaml"])
    assert json.loads(chart.files["values.schema.json"])["required"] == ["image"]


def test_another_container_by_tag_is_refused() -> None:
    dep = deployment()
    dep["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1"})
    with pytest.raises(InputError, match="'side' image 'busybox:1' is not pinned by digest"):
        make([dep])


def test_the_chart_image_must_be_pinned() -> None:
    with pytest.raises(InputError, match="not pinned"):
        split_pinned("127.0.0.1:5000/my/legacy-app:1.0")
    with pytest.raises(InputError, match="not pinned"):
        split_pinned("127.0.0.1:5000/my/legacy-app:1.0@" + DIGEST)
    assert split_pinned(IMAGE) == ("127.0.0.1:5000/my/legacy-app", DIGEST)


def test_a_bad_chart_name_is_refused() -> None:
    with pytest.raises(InputError, match="cannot name a Helm chart"):
        build_chart("Legacy_App", objects(), IMAGE, version="1.0.0", app_version="1.0")


@pytest.mark.parametrize(
    ("image_version", "override", "expected"),
    [
        ("1.0", None, "1.0.0"),
        ("17", None, "17.0.0"),
        ("2.3.4", None, "2.3.4"),
        ("1.0", "1.2.3-rc.1", "1.2.3-rc.1"),
    ],
)
def test_chart_version(image_version: str, override: str | None, expected: str) -> None:
    assert chart_version(image_version, override) == expected


@pytest.mark.parametrize(("image_version", "override"), [("12-slim", None), ("1.0", "v1")])
def test_a_version_that_is_not_semver_is_refused(image_version: str, override: str | None) -> None:
    with pytest.raises(InputError, match="SemVer") as raised:
        chart_version(image_version, override)
    assert raised.value.hint == "pass --version like 1.0.0"


def test_the_package_is_a_reproducible_gzipped_tar_of_the_chart_folder() -> None:
    chart = make()
    first, second = package(chart), package(make())
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == sorted(f"legacy-app/{p}" for p in chart.files)
        assert {m.mtime for m in members} == {946684800}
        chart_yaml = tar.extractfile("legacy-app/Chart.yaml")
        assert chart_yaml is not None and chart_yaml.read() == chart.metadata
    assert chart.archive_name == "legacy-app-1.0.0.tgz"


def test_the_provenance_body_is_helms_layout() -> None:
    chart = make()
    archive = package(chart)
    body = message_block(chart.metadata, chart.archive_name, archive).decode()
    metadata, files = body.split("\n...\n")
    assert metadata.encode() == chart.metadata
    digest = hashlib.sha256(archive).hexdigest()
    assert files == f"files:\n  legacy-app-1.0.0.tgz: sha256:{digest}\n"
    assert yaml.safe_load(files) == {"files": {"legacy-app-1.0.0.tgz": f"sha256:{digest}"}}
