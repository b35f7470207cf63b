"""Both GitLab forms judged by GitLab's CI JSON schema, as check-jsonschema ships it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from socle.export.gitlab import CHILD, MAX_NEEDS, PIPELINE, render
from socle.export.model import Job, Pipeline
from tests.integration.helpers import ROOT, socle

pytestmark = pytest.mark.integration

ENTERPRISE = ROOT / "examples" / "enterprise" / "catalog.yaml"


def check_gitlab_schema(*files: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "check-jsonschema"
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run `.venv/bin/pip install -e '.[dev]'`")
    return subprocess.run(
        [str(tool), "--builtin-schema", "vendor.gitlab-ci", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_exported_enterprise_pipeline_and_its_child_form_are_valid(tmp_path: Path) -> None:
    result = socle("export", "gitlab", "-c", str(ENTERPRISE), "-o", str(tmp_path / "ci"))
    assert result.returncode == 0, result.stderr
    assert "gitlab: 5 job(s) in 4 level(s), 2 file(s) written" in result.stdout
    checked = check_gitlab_schema(tmp_path / "ci" / PIPELINE, tmp_path / "ci" / CHILD)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok -- validation done" in checked.stdout


def test_a_pipeline_beyond_the_needs_limit_is_valid(tmp_path: Path) -> None:
    """A chain of MAX_NEEDS + 10 variants: promote waits for its stage instead of needs."""
    jobs = []
    for n in range(MAX_NEEDS + 10):
        parent = f"os:{n - 1}" if n else None
        jobs.append(
            Job(f"os:{n}", "os", str(n), "my/os", f"127.0.0.1:5000/my/os:{n}", parent, (), n,
                f"sha256:{'cd' * 32}", (("OS_VERSION", str(n)), ("PATTERN", "$HOME")))
        )  # fmt: skip
    files = render(Pipeline("catalog.yaml", "127.0.0.1:5000", tuple(jobs)))
    paths = []
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    checked = check_gitlab_schema(*paths)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_wrong_job_is_refused_by_the_schema(tmp_path: Path) -> None:
    """The judge can say no: `needs: 3` in an otherwise exported pipeline."""
    exported = tmp_path / "ci"
    assert socle("export", "gitlab", "-c", str(ENTERPRISE), "-o", str(exported)).returncode == 0
    config = yaml.safe_load((exported / PIPELINE).read_text())
    config["java-17-debian12"]["needs"] = 3
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(yaml.safe_dump(config, sort_keys=False))
    checked = check_gitlab_schema(wrong)
    assert checked.returncode == 1, checked.stdout
    assert "java-17-debian12" in checked.stdout and "needs" in checked.stdout
