"""The exported Jenkins chain, judged by Jenkins' own tools offline.

jenkins-job-builder renders every job's XML (`jenkins-jobs test`), CodeNarc's
Groovy parser (npm-groovy-lint, on the machine's Java) parses every Jenkinsfile,
and the rendered XML plus the Jenkinsfiles must trigger each child from exactly
its parents (as `socle plan --json` gives them), with the digest the parent
published as PARENT_DIGEST.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import ROOT, node, socle

pytestmark = pytest.mark.integration

ENTERPRISE = ROOT / "examples" / "enterprise" / "catalog.yaml"
GROOVY_LINT = ROOT / "tests/interop/groovy-lint/node_modules/npm-groovy-lint/lib/index.js"
JENKINSFILES = "ci/jenkins"  # where the site says the export lives in its repository
# What an organisation writes once, outside the export: its repository and the path.
SITE = f"""\
- defaults:
    name: socle-site
    socle-jenkinsfiles: {JENKINSFILES}
- scm:
    name: socle-catalog
    scm:
      - git:
          url: file:///srv/git/images.git
          branches: [main]
"""
FOLDER = "com.cloudbees.hudson.plugins.folder.Folder"
TRIGGER = re.compile(r"^ *build job: '([^']+)'(.*)$", re.MULTILINE)


def jenkins_jobs() -> str:
    path = Path(sys.executable).parent / "jenkins-jobs"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `.venv/bin/pip install -e '.[dev]'`")
    return str(path)


def small_catalog(root: Path) -> Path:
    """Two roots, a family with two variants, and a family built on both roots."""
    for name in ("mid", "leaf", "other"):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(
            f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {name}\n"
        )
    catalog = root / "catalog.yaml"
    catalog.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: jx
            images:
              os-a:
                upstream: 127.0.0.1:1/up/os-a@sha256:{"a" * 64}
                versions: ["1"]
              os-b:
                upstream: 127.0.0.1:1/up/os-b@sha256:{"b" * 64}
                versions: ["1"]
              mid:
                parents: [os-a]
                versions: ["1.0", "2.0"]
                args: {{MID_NOTE: "it's \\"odd\\": ${{HOME}} \\\\ $PATH"}}
              leaf:
                parents: ["mid:2.0-os-a1", os-b]
                versions: ["3"]
              other:
                parents: [os-b]
                versions: ["9"]
            """
        )
    )
    return catalog


@dataclass(frozen=True)
class Exported:
    folder: Path  # what `socle export jenkins` wrote
    xml: Path  # what `jenkins-jobs test` rendered from it


def export(catalog: Path, root: Path) -> Exported:
    out = root / "jenkins"
    result = socle("export", "jenkins", "-c", str(catalog), "-o", str(out))
    assert result.returncode == 0, result.stderr
    site = root / "site.yaml"
    site.write_text(SITE)
    xml = root / "xml"
    rendered = subprocess.run(
        [jenkins_jobs(), "test", "--config-xml", "-o", str(xml), f"{out / 'jobs.yaml'}:{site}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert rendered.returncode == 0, rendered.stderr
    return Exported(out, xml)


@pytest.fixture(scope="module")
def enterprise(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return export(ENTERPRISE, tmp_path_factory.mktemp("enterprise"))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("small")
    return export(small_catalog(root / "catalog"), root)


def rendered(exported: Exported) -> dict[str, ET.Element]:
    """Job full name -> its config.xml root, as jenkins-jobs wrote them."""
    return {
        path.parent.relative_to(exported.xml).as_posix(): ET.parse(path).getroot()
        for path in exported.xml.rglob("config.xml")
    }


def jenkinsfile(exported: Exported, config: ET.Element) -> str:
    """The Jenkinsfile a job loads: its scriptPath, inside the export's folder."""
    script = config.findtext("definition/scriptPath")
    assert script is not None and script.startswith(f"{JENKINSFILES}/")
    path = exported.folder / script.removeprefix(f"{JENKINSFILES}/")
    assert path.is_file(), f"{script} is not in the export"
    return path.read_text()


@pytest.mark.parametrize(("name", "folders", "jobs"), [("enterprise", 5, 6), ("small", 5, 8)])
def test_jenkins_jobs_renders_a_folder_per_family_and_a_pipeline_job_per_jenkinsfile(
    name: str, folders: int, jobs: int, request: pytest.FixtureRequest
) -> None:
    exported: Exported = request.getfixturevalue(name)
    configs = rendered(exported)
    found_folders = sorted(n for n, c in configs.items() if c.tag == FOLDER)
    pipelines = {n: c for n, c in configs.items() if c.tag == "flow-definition"}
    assert len(found_folders) == folders and len(pipelines) == jobs
    assert len(configs) == folders + jobs
    jenkinsfiles = sorted(
        p.parent.relative_to(exported.folder).as_posix()
        for p in exported.folder.rglob("Jenkinsfile")
    )
    assert sorted(pipelines) == jenkinsfiles, "one job per Jenkinsfile, at its own path"
    for job, config in pipelines.items():
        assert config.findtext("definition/scriptPath") == f"{JENKINSFILES}/{job}/Jenkinsfile"
        assert config.find("definition/scm/userRemoteConfigs") is not None
        folder = job.rpartition("/")[0]
        assert folder == "" or folder in found_folders


def test_every_jenkinsfile_parses_as_groovy_and_a_broken_one_is_refused(
    enterprise: Exported, small: Exported, tmp_path: Path
) -> None:
    if not GROOVY_LINT.exists():
        pytest.fail(f"{GROOVY_LINT} is missing: run `make interop`")
    files = sorted(str(p) for e in (enterprise, small) for p in e.folder.rglob("Jenkinsfile"))
    broken = tmp_path / "broken" / "Jenkinsfile"
    broken.parent.mkdir()
    text = Path(files[0]).read_text()
    broken.write_text(text.replace("stage('Triggers') {", "stage('Triggers' {"))
    result = subprocess.run(
        [node(), str(GROOVY_LINT), "--noserver", "--parse", "--failon", "error"]
        + ["--output", "json", *files, str(broken)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["totalFilesLinted"] == len(files) + 1
    errors = {
        path: [e for e in found["errors"] if e["severity"] == "error"]
        for path, found in report["files"].items()
    }
    assert [e["rule"] for e in errors.pop(str(broken))] == ["NglParseError"]
    assert all(not found for found in errors.values()), errors
    assert result.returncode == 1, "the broken file fails the run"


def triggered(exported: Exported) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Variant key per job, and for each job the jobs whose Triggers stage starts it.

    Each trigger must hand over PARENT_DIGEST as the digest the triggering job read
    from the file its `socle build --digest-file` wrote.
    """
    configs = {n: c for n, c in rendered(exported).items() if c.tag == "flow-definition"}
    keys: dict[str, str] = {}
    started_by: dict[str, set[str]] = {name: set() for name in configs}
    for name, config in configs.items():
        text = jenkinsfile(exported, config)
        variant = re.search(r"^ +SOCLE_VARIANT = '([^']+)'$", text, re.MULTILINE)
        if variant is None:
            assert name == "socle-promote"
            continue
        keys[name] = variant.group(1)
        build, _, triggers = text.partition("stage('Triggers')")
        assert "--digest-file socle-digest.txt" in build
        assert "env.SOCLE_DIGEST = readFile('socle-digest.txt').trim()" in build
        for target, rest in TRIGGER.findall(triggers):
            child = target.removeprefix("/")
            assert child in configs, f"{name} triggers {target}, which no job is"
            started_by[child].add(name)
            if child == "socle-promote":
                continue
            assert rest.startswith(", parameters: buildParameters")
            assert "string(name: 'PARENT_DIGEST', value: env.SOCLE_DIGEST)" in triggers
            declared = configs[child].findall(
                "properties/hudson.model.ParametersDefinitionProperty/parameterDefinitions/"
                "hudson.model.StringParameterDefinition/name"
            )
            assert "PARENT_DIGEST" in [d.text for d in declared], f"{child} must declare it"
            child_text = jenkinsfile(exported, configs[child])
            assert '--expect-parent "$PARENT_DIGEST"' in child_text
    return keys, started_by


@pytest.mark.parametrize("name", ["enterprise", "small"])
def test_each_child_is_triggered_by_exactly_its_parents_with_their_digest(
    name: str, registry: LocalRegistry, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    exported: Exported = request.getfixturevalue(name)
    catalog = (
        ENTERPRISE if name == "enterprise" else exported.folder.parent / "catalog" / "catalog.yaml"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    plan = socle("plan", "-c", str(catalog), "--registry", registry.host, "--json", env=env)
    assert plan.returncode == 0, plan.stderr
    parents = {i["key"]: set(i["parents"]) for i in json.loads(plan.stdout)["images"]}

    keys, started_by = triggered(exported)
    assert sorted(keys.values()) == sorted(parents)
    job_of = {key: job for job, key in keys.items()}
    for key, expected in parents.items():
        assert {keys[j] for j in started_by[job_of[key]]} == expected, key
    leaves = {k for k in parents if not any(k in p for p in parents.values())}
    assert {keys[j] for j in started_by["socle-promote"]} == leaves
