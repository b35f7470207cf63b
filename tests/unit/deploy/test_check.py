"""`socle deploy check` on folders of manifests: schemas per version, kinds, images, exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from socle.cli import main
from socle.deploy import check
from tests.unit.deploy.test_pss import compliant

DIGEST = "@sha256:" + "b" * 64


def deployment() -> dict[str, Any]:
    obj = compliant("Deployment")
    obj["apiVersion"] = "apps/v1"
    obj["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "web"}}
    return obj


def write(folder: Path, name: str, *docs: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump_all(docs))
    return path


class Result:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`socle deploy check ARGS` through the real entry point: exit code and all output."""

    def invoke(*args: str) -> Result:
        with pytest.raises(SystemExit) as exited:
            main(["deploy", "check", *args])
        out, err = capsys.readouterr()
        return Result(int(exited.value.code or 0), out + err)

    return invoke


def test_default_versions_run_from_1_30_to_the_newest_bundled() -> None:
    found = check.versions()
    assert found[0] == "1.30"
    assert len(found) >= 8
    assert found == sorted(found, key=lambda v: int(v.split(".")[1]))


def test_a_clean_folder_passes_with_a_summary(tmp_path: Path, run: Callable[..., Result]) -> None:
    write(
        tmp_path,
        "app.yaml",
        deployment(),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
    )
    (tmp_path / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    result = run(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "2 objects" in result.output and "0 problems" in result.output


def test_an_unknown_field_is_reported_once_per_version(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    obj = deployment()
    obj["spec"]["replicaz"] = 2
    path = write(tmp_path, "app.yml", obj)
    result = run(str(tmp_path), "--k8s-version", "1.30", "--k8s-version", "1.37")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "replicaz" in line]
    assert [line.split(": ")[:3] for line in lines] == [[str(path), "Deployment/web", "spec"]] * 2
    assert "Kubernetes 1.30" in lines[0] and "Kubernetes 1.37" in lines[1]


def test_a_kind_without_a_schema_is_an_error(tmp_path: Path, run: Callable[..., Result]) -> None:
    write(
        tmp_path,
        "w.yaml",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
    )
    result = run(str(tmp_path), "--k8s-version", "1.30")
    assert result.exit_code == 1
    assert "Widget/w: kind: no schema for example.com/v1 Widget" in result.output


def test_a_shipped_custom_resource_schema_is_strict(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "m"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "endpoints": [{"port": "http", "path": "/metrics"}]},
    }  # fmt: skip
    write(tmp_path, "m.yaml", monitor)
    assert run(str(tmp_path), "--k8s-version", "1.30").exit_code == 0
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    write(tmp_path, "m.yaml", monitor)
    result = run(str(tmp_path), "--k8s-version", "1.30")
    assert result.exit_code == 1 and "'intervall' was unexpected" in result.output


def test_every_image_must_be_pinned_by_digest_init_and_ephemeral_too(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    obj = deployment()
    pod = obj["spec"]["template"]["spec"]
    pod["containers"][0]["image"] = "r/app:1.0"
    pod["initContainers"] = [pod["containers"][0] | {"name": "init", "image": "r/init@sha256:abc"}]
    write(tmp_path, "app.yaml", obj)
    findings = check.check(check.manifests(tmp_path), [])
    assert [f.field for f in findings] == [
        "spec.template.spec.initContainers[0].image", "spec.template.spec.containers[0].image",
    ]  # fmt: skip
    pod["containers"][0]["image"] = "r/app" + DIGEST
    pod["initContainers"][0]["image"] = "r/init" + DIGEST
    write(tmp_path, "app.yaml", obj)
    assert check.check(check.manifests(tmp_path), []) == []


def test_pod_security_violations_are_reported_with_object_and_field(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["hostNetwork"] = True
    write(tmp_path, "app.yaml", obj)
    result = run(str(tmp_path), "--k8s-version", "1.30")
    assert result.exit_code == 1
    assert "Deployment/shop/web: spec.template.spec.hostNetwork: host namespaces" in result.output


def test_unreadable_input_is_exit_2(tmp_path: Path, run: Callable[..., Result]) -> None:
    assert run(str(tmp_path / "missing")).exit_code == 2
    (tmp_path / "bad.yaml").write_text("a: [\n")
    result = run(str(tmp_path))
    assert result.exit_code == 2 and "bad.yaml" in result.output
    assert run(str(tmp_path), "--k8s-version", "9.99").exit_code == 2
