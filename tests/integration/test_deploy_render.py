"""`socle deploy render` against the real registry: only a signed, gated digest is rendered."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import skopeo_inspect, socle, tool

pytestmark = pytest.mark.integration

DESCRIPTION = """\
image: app:1-base1
namespace: shop
user: 1000
ports:
  - {name: http, port: 8080}
writable: [/tmp]
probes:
  readiness: {command: [cat, /app]}
environments:
  prod: {replicas: 3}
"""


def catalog(root: Path, namespace: str, upstream: str) -> Path:
    image, digest = upstream.split("@")
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo app > /app\n"
    )
    (root / "deploy").mkdir()
    (root / "deploy" / "app.yaml").write_text(DESCRIPTION)
    path = root / "catalog.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: {namespace}
            images:
              base:
                upstream: {image}
                versions:
                  "1": {{digest: "{digest}"}}
              app:
                parents: [base]
                versions: ["1"]
                tests:
                  - name: app is there
                    command: [cat, /app]
                    stdout: '^app$'
            """
        )
    )
    return path


def test_render_takes_a_signed_digest_and_refuses_the_rest(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    env = {
        "SOCLE_REGISTRY": registry.host,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "SOCLE_PASSWORD": "correct horse",
    }
    for name in ("ops", "other"):
        assert socle("keygen", "--out", str(tmp_path / name), env=env).returncode == 0
    signed = catalog(tmp_path / "signed", "dsigned", busybox)
    unsigned = catalog(tmp_path / "unsigned", "dunsigned", busybox)
    unbuilt = catalog(tmp_path / "unbuilt", "dunbuilt", busybox)
    built = socle("build", "-c", str(signed), "--sign-key", str(tmp_path / "ops.key"), env=env)
    assert built.returncode == 0, built.stderr
    assert socle("build", "-c", str(unsigned), env=env).returncode == 0
    digest = skopeo_inspect(f"{registry.host}/dsigned/app:1-base1")["Digest"]

    out = tmp_path / "out"
    args = ("deploy", "render", "app", "-o", str(out), "--key", str(tmp_path / "ops.pub"))
    rendered = socle(*args, "-c", str(signed), env=env)
    assert rendered.returncode == 0, rendered.stderr
    deployment = yaml.safe_load((out / "base" / "deployment.yaml").read_text())
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{registry.host}/dsigned/app@{digest}"
    assert not any(":1-base1" in p.read_text() for p in out.rglob("*.yaml"))

    kustomize = tool("kustomize")
    built_prod = subprocess.run(
        [kustomize, "build", str(out / "overlays" / "prod")], capture_output=True, text=True
    )
    assert built_prod.returncode == 0, built_prod.stderr
    objects = list(yaml.safe_load_all(built_prod.stdout))
    (prod,) = [o for o in objects if o["kind"] == "Deployment"]
    assert prod["spec"]["replicas"] == 3
    assert prod["spec"]["template"]["spec"]["containers"][0]["image"] == image

    refusals = [
        (unsigned, "ops", "is not signed with the configured key"),
        (signed, "other", "is not signed with the configured key"),
        (unbuilt, "ops", "is not published"),
    ]
    for path, key, reason in refusals:
        nowhere = tmp_path / f"nothing-{path.parent.name}-{key}"
        refused = socle(
            "deploy", "render", "app", "-c", str(path), "-o", str(nowhere),
            "--key", str(tmp_path / f"{key}.pub"), env=env,
        )  # fmt: skip
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert reason in refused.stderr and "/app" in refused.stderr
        assert not nowhere.exists()
