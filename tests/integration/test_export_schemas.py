"""The GitHub and Argo exports judged by the engines' own tools, and checked against the graph.

GitHub: check-jsonschema's bundled GitHub workflow and action schemas, and
actionlint (which also knows the local action's inputs and, with shellcheck,
the scripts). Argo: the WorkflowTemplate model of hera, Argo's Python SDK,
generated from Argo's published OpenAPI spec: strict types, and every key must
be one the spec knows. Each judge is shown refusing a broken file too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import ROOT, socle, tool

pytestmark = pytest.mark.integration

EXAMPLES = [
    ROOT / "examples" / "enterprise" / "catalog.yaml",
    ROOT / "examples" / "seed" / "catalog.yaml",
]
WORKFLOW = Path(".github/workflows/socle.yml")
ACTION = Path(".github/actions/socle-setup/action.yml")
ARGO = Path("socle-workflowtemplate.yaml")


def export(engine: str, catalog: Path, out: Path, *extra: str) -> Path:
    done = socle("export", engine, "-c", str(catalog), "-o", str(out), *extra)
    assert done.returncode == 0, done.stderr
    return out


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.fail("check-jsonschema is not installed: run `make venv` (it is a dev dependency)")
    return subprocess.run(
        [command, "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def actionlint(folder: Path) -> subprocess.CompletedProcess[str]:
    """actionlint in `folder` made a git repository, as the user's is: it then reads local actions."""
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    return subprocess.run(
        [tool("actionlint"), "-no-color", str(WORKFLOW)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("catalog", EXAMPLES, ids=lambda p: p.parent.name)
def test_the_github_workflow_and_action_pass_the_schemas_and_actionlint(
    catalog: Path, tmp_path: Path
) -> None:
    out = export("github", catalog, tmp_path / "out")
    for schema, path in (("vendor.github-workflows", WORKFLOW), ("vendor.github-actions", ACTION)):
        checked = check_jsonschema(schema, out / path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    linted = actionlint(out)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_a_broken_workflow_is_refused_by_the_schema_and_by_actionlint(tmp_path: Path) -> None:
    out = export("github", EXAMPLES[0], tmp_path / "out")
    workflow = yaml.safe_load((out / WORKFLOW).read_text())
    del workflow["jobs"]["debian-12"]["runs-on"]  # a job must say where it runs
    (out / WORKFLOW).write_text(yaml.safe_dump(workflow, sort_keys=False))
    checked = check_jsonschema("vendor.github-workflows", out / WORKFLOW)
    assert checked.returncode == 1 and "runs-on" in checked.stdout, checked.stdout

    workflow = yaml.safe_load(
        (export("github", EXAMPLES[0], tmp_path / "again") / WORKFLOW).read_text()
    )
    workflow["jobs"]["java-17-debian12"]["needs"] = "debian-13"
    workflow["jobs"]["promote"]["steps"][1]["with"]["registry-usr"] = "x"
    (tmp_path / "again" / WORKFLOW).write_text(yaml.safe_dump(workflow, sort_keys=False))
    linted = actionlint(tmp_path / "again")
    assert linted.returncode == 1
    assert 'needs job "debian-13" which does not exist' in linted.stdout, linted.stdout
    assert 'input "registry-usr" is not defined' in linted.stdout, linted.stdout


def argo_problems(document: dict[str, Any]) -> list[str]:
    """What Argo's API model refuses in `document`: a wrong type, or a key it does not know.

    The model ignores unknown keys, so the check compares the document with what
    the model read back: a key it dropped is one the spec does not have.
    """
    from hera.workflows.models import WorkflowTemplate
    from pydantic import ValidationError

    try:
        model = WorkflowTemplate.model_validate(document, strict=True)
    except ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    read = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return [f"{path}: not in Argo's spec" for path in dropped(document, read)]


def dropped(given: Any, read: Any, path: str = "") -> list[str]:
    if isinstance(given, dict) and isinstance(read, dict):
        return [
            found
            for key, value in given.items()
            for found in (
                dropped(value, read[key], f"{path}.{key}") if key in read else [f"{path}.{key}"]
            )
        ]
    if isinstance(given, list) and isinstance(read, list):
        return [
            f
            for i, (g, r) in enumerate(zip(given, read, strict=True))
            for f in dropped(g, r, f"{path}[{i}]")
        ]
    return [] if given == read else [f"{path} (read as {read!r})"]


@pytest.mark.parametrize("catalog", EXAMPLES, ids=lambda p: p.parent.name)
def test_the_argo_template_passes_argo_s_api_model(catalog: Path, tmp_path: Path) -> None:
    document = yaml.safe_load((export("argo", catalog, tmp_path / "out") / ARGO).read_text())
    assert argo_problems(document) == []
    assert (document["apiVersion"], document["kind"]) == (
        "argoproj.io/v1alpha1",
        "WorkflowTemplate",
    )


def test_a_broken_argo_template_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load((export("argo", EXAMPLES[0], tmp_path / "out") / ARGO).read_text())
    dag = document["spec"]["templates"][0]["dag"]
    dag["tasks"][1]["dependecies"] = dag["tasks"][1].pop("dependencies")
    document["spec"]["templates"][1]["container"]["securityContext"]["runAsUser"] = "1000"
    problems = argo_problems(document)
    assert any("runAsUser" in p and "integer" in p for p in problems), problems
    del document["spec"]["templates"][1]["container"]["securityContext"]["runAsUser"]
    assert argo_problems(document) == [
        ".spec.templates[0].dag.tasks[1].dependecies: not in Argo's spec"
    ]


def busybox_catalog(root: Path, busybox: str) -> Path:
    """os -> mid (two versions) -> leaf (on each), and os -> other: three levels, fan-out."""
    for name in ("mid", "leaf", "other"):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    image, digest = busybox.split("@")
    catalog = root / "catalog.yaml"
    catalog.write_text(
        "registry: 127.0.0.1:1\nnamespace: exported\nimages:\n"
        f'  os:\n    upstream: {image}\n    versions:\n      "1": {{digest: "{digest}"}}\n'
        '  mid:\n    parents: [os]\n    versions: ["1", "2"]\n'
        '  leaf:\n    parents: [mid]\n    versions: ["3"]\n'
        '  other:\n    parents: [os]\n    versions: ["9"]\n'
    )
    return catalog


def test_every_task_depends_on_exactly_its_parents_in_socle_plan(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    catalog = busybox_catalog(tmp_path / "catalog", busybox)
    planned = socle("plan", "-c", str(catalog), "--registry", registry.host, "--json")
    assert planned.returncode == 0, planned.stderr
    items = json.loads(planned.stdout)["images"]
    parents = {item["key"]: item["parents"] for item in items}
    assert len(parents) == 6 and max(item["level"] for item in items) == 2

    out = export("argo", catalog, tmp_path / "argo", "--registry", registry.host)
    document = yaml.safe_load((out / ARGO).read_text())
    tasks = document["spec"]["templates"][0]["dag"]["tasks"]
    variant_of = {
        t["name"]: next(p["value"] for p in t["arguments"]["parameters"] if p["name"] == "variant")
        for t in tasks
        if t["name"] != "promote"
    }
    assert sorted(variant_of.values()) == sorted(parents)
    for task in tasks[:-1]:
        depends_on = [variant_of[name] for name in task.get("dependencies", [])]
        assert depends_on == parents[variant_of[task["name"]]], task["name"]
    assert tasks[-1]["name"] == "promote"
    assert sorted(tasks[-1]["dependencies"]) == sorted(variant_of)

    workflow = yaml.safe_load(
        (
            export("github", catalog, tmp_path / "github", "--registry", registry.host) / WORKFLOW
        ).read_text()
    )
    names = {job["name"]: job_id for job_id, job in workflow["jobs"].items() if job_id != "promote"}
    for key, expected in parents.items():
        needs = workflow["jobs"][names[key]].get("needs")
        assert ([needs] if needs else []) == [names[p] for p in expected], key
