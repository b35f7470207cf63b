"""What socle renders for the example passes socle deploy check: every version, every overlay.

The base and each overlay as kustomize builds it (what `kubectl apply -k` would
send), plus the admission policies for the organisation's registry, all judged
by the same checker a cluster team runs on manifests socle did not write:
strict schemas for Kubernetes 1.30 to the newest bundled, Pod Security
restricted, digests, and every declared flow's NetworkPolicy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from socle.deploy import check, render
from socle.deploy import spec as specs
from socle.deploy.flows import check_flows
from socle.deploy.policies import all_policies
from socle.process import run
from socle.validate import validate
from tests.integration.helpers import tool
from tests.unit.signing.signing_helpers import new_key

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "examples" / "enterprise" / "catalog.yaml"
REF = "127.0.0.1:5000/my/legacy-app@sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def legacy() -> specs.Spec:
    catalog, graph = validate(EXAMPLE)
    return specs.load(catalog, graph, "legacy-app")


def write(files: dict[str, str], root: Path) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_base_and_every_built_overlay_pass_every_check(
    legacy: specs.Spec, tmp_path: Path
) -> None:
    write(render.layout(legacy, REF), tmp_path / "out")
    versions = check.versions()
    assert versions[0] == "1.30" and len(versions) >= 2
    folders = {"base": tmp_path / "out" / "base"}
    for env in legacy.environments:
        built = run([tool("kustomize"), "build", str(tmp_path / "out" / "overlays" / env)]).stdout
        (tmp_path / "built" / env).mkdir(parents=True)
        (tmp_path / "built" / env / "all.yaml").write_text(built)
        folders[env] = tmp_path / "built" / env
    assert set(folders) == {"base", *legacy.environments} and len(folders) >= 3
    for name, folder in folders.items():
        items = check.manifests(folder)
        kinds = {m.obj["kind"] for m in items}
        assert {"Deployment", "NetworkPolicy", "Namespace", "ServiceAccount"} <= kinds, name
        problems = [str(f) for f in check.check(items, versions)]
        problems += [str(f) for f in check_flows(legacy, items)]
        assert problems == [], name


def test_the_admission_policies_pass_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    _, public_pem, _ = new_key()
    policies = all_policies(public_pem.decode(), "127.0.0.1:5000")
    assert len(policies) == 3
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump_all(list(policies.values())))
    items = check.manifests(tmp_path)
    assert [str(f) for f in check.check(items, check.versions())] == []
    broken = dict(next(iter(policies.values())))
    broken["spec"] = {**broken["spec"], "validationFailureAction": 7}
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump(broken))
    assert check.check(check.manifests(tmp_path), ["1.30"]) != []
