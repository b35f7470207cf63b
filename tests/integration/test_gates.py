"""Trust gates in `socle build`: nothing is tagged before it passed them."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import skopeo_inspect, socle

pytestmark = pytest.mark.integration


def family_with_tests(root: Path, namespace: str, upstream: str, leaf_expects: str) -> Path:
    image, digest = upstream.split("@")
    for name, body in (("tool", "RUN echo tool-1 > /tool"), ("leaf", "RUN echo leaf > /leaf")):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n{body}\n")
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
                tests:
                  - name: has a shell
                    file: /bin/sh
                    type: link
              tool:
                parents: [base]
                versions: ["1"]
                tests:
                  - name: tool is installed
                    command: [cat, /tool]
                    stdout: '^tool-1$'
                  - name: path
                    metadata: {{env: {{PATH: /bin}}}}
              leaf:
                parents: [tool]
                versions: ["2"]
                tests:
                  - name: leaf answers
                    command: [cat, /leaf]
                    stdout: '^{leaf_expects}$'
            """
        )
    )
    return path


def test_passing_tests_are_recorded_and_a_failing_test_blocks_the_tags(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    catalog = family_with_tests(tmp_path, "gated", busybox, leaf_expects="something else")
    reports = tmp_path / "reports"
    env = {"SOCLE_REGISTRY": registry.host, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = socle("build", "-c", str(catalog), "--reports", str(reports), env=env)
    assert result.returncode == 1
    assert "image tests failed for leaf:2-tool1-base1 (3 passed, 1 failed" in result.stderr
    assert "leaf answers" in result.stderr
    # The failed image has no tag at all; its parents passed (inherited tests included) and are tagged.
    assert not httpx.get(f"http://{registry.host}/v2/gated/leaf/tags/list").json().get("tags")
    tool = skopeo_inspect(f"{registry.host}/gated/tool:1-base1", raw=True)["annotations"]
    assert tool["io.github.socle.tests"].startswith("3 passed")  # 2 own + 1 inherited from base
    suite = ET.parse(reports / "tool_1-base1.junit.xml").getroot()
    assert suite.get("tests") == "3" and suite.get("failures") == "0"
    failed = ET.parse(reports / "leaf_2-tool1-base1.junit.xml").getroot()
    assert failed.get("failures") == "1"

    fixed = family_with_tests(tmp_path / "fixed", "gated", busybox, leaf_expects="leaf")
    again = socle("build", "-c", str(fixed), env=env)
    assert again.returncode == 0, again.stderr
    assert skopeo_inspect(f"{registry.host}/gated/leaf:2-tool1-base1")["Digest"].startswith(
        "sha256:"
    )
    # socle test runs the same tests against what is published now.
    junit = tmp_path / "leaf.junit.xml"
    tested = socle("test", "-c", str(fixed), "leaf", "--junit", str(junit), env=env)
    assert tested.returncode == 0, tested.stderr
    assert "leaf:2-tool1-base1: ok leaf answers" in tested.stdout
    assert ET.parse(junit).getroot().get("tests") == "4"


def test_build_signs_and_attests_every_image_before_its_tags(
    registry: LocalRegistry, busybox: str, tmp_path: Path
) -> None:
    from socle.oci.reference import Reference
    from socle.registry.client import RegistryClient
    from socle.signing import SIGN_PREDICATE, SLSA_PROVENANCE_V1
    from tests.integration.test_signing import bundles_from_registry, js_verify

    catalog = family_with_tests(tmp_path, "signed", busybox, leaf_expects="leaf")
    env = {
        "SOCLE_REGISTRY": registry.host,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "SOCLE_PASSWORD": "correct horse",
    }
    assert socle("keygen", "--out", str(tmp_path / "ops"), env=env).returncode == 0
    logged = registry.log_path.stat().st_size
    result = socle("build", "-c", str(catalog), "--sign-key", str(tmp_path / "ops.key"), env=env)
    assert result.returncode == 0, result.stderr
    with registry.log_path.open("rb") as log:
        log.seek(logged)
        assert_tags_after_signatures_and_parents(
            log.read().decode(errors="replace"), registry.host, "signed"
        )
    assert "correct horse" not in result.stdout + result.stderr
    leaf = f"{registry.host}/signed/leaf:2-tool1-base1"

    verified = socle("verify", "--key", str(tmp_path / "ops.pub"), leaf, env=env)
    assert verified.returncode == 0, verified.stderr
    attestation = socle("verify-attestation", "--key", str(tmp_path / "ops.pub"), leaf, env=env)
    assert attestation.returncode == 0, attestation.stderr
    tool_digest = skopeo_inspect(f"{registry.host}/signed/tool:1-base1")["Digest"]
    assert tool_digest.split(":")[1] in attestation.stdout  # the parent the leaf was built on

    # The reference JavaScript verifier accepts both bundles fetched back from the registry.
    with RegistryClient() as client:
        digest = skopeo_inspect(leaf)["Digest"]
        bundles = bundles_from_registry(client, Reference.parse(leaf).with_digest(digest))
    for predicate in (SIGN_PREDICATE, SLSA_PROVENANCE_V1):
        checked = js_verify(tmp_path, bundles[predicate], tmp_path / "ops.pub", digest, predicate)
        assert checked.returncode == 0, checked.stdout + checked.stderr


MANIFEST_PUT = re.compile(r'"PUT /v2/(?P<repo>[^ ]+)/manifests/(?P<ref>[^ ?]+) HTTP/[0-9.]+" 201')


def assert_tags_after_signatures_and_parents(log: str, host: str, namespace: str) -> None:
    """In the registry's access log: no tag of an image before its signature, its
    attestations and its parent's exact tag (the parent's acceptance)."""
    puts = [(m["repo"], m["ref"]) for m in MANIFEST_PUT.finditer(log)]
    parents = {"base": None, "tool": ("base", "1"), "leaf": ("tool", "1-base1")}
    exact = {"base": "1", "tool": "1-base1", "leaf": "2-tool1-base1"}
    for name, parent in parents.items():
        repo = f"{namespace}/{name}"
        digest = skopeo_inspect(f"{host}/{repo}:{exact[name]}")["Digest"]
        cosign = digest.replace(":", "-")
        tags = [i for i, (r, ref) in enumerate(puts) if r == repo and _is_tag(ref)]
        assert tags, (name, puts)
        first_tag = min(tags)
        for suffix in (".sig", ".att"):
            written = [i for i, (r, ref) in enumerate(puts) if r == repo and ref == cosign + suffix]
            assert written and max(written) < first_tag, (name, suffix, puts)
        if name == "base":
            continue  # upstream: copied as is, and signed like the others (checked above)
        assert parent is not None
        parent_tag = puts.index((f"{namespace}/{parent[0]}", parent[1]))
        assert parent_tag < first_tag, (name, puts)


def _is_tag(ref: str) -> bool:
    return not ref.startswith("sha256:") and not ref.startswith("sha256-")


TRACKER = Path(__file__).resolve().parents[1] / "data" / "debian-tracker.json"


def trusted_catalog(root: Path, upstream: str, allowlist: str) -> Path:
    image, digest = upstream.split("@")
    if not (root / "app").exists():
        (root / "app").mkdir(parents=True)
        dockerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo app > /app\n"
        (root / "app" / "Dockerfile").write_text(dockerfile)
    path = root / "catalog.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: trusted
            scan: {{scanner: debian, db: {TRACKER}}}
            policy:
              max_severity: medium
              allowlist: {allowlist}
            images:
              debian:
                upstream: {image}
                versions:
                  "12": {{digest: "{digest}"}}
              app:
                parents: [debian]
                versions: ["1"]
            """
        )
    )
    return path


def test_real_debian_is_inventoried_scanned_and_held_to_the_policy(
    registry: LocalRegistry, debian_upstream: str, tmp_path: Path
) -> None:
    env = {"SOCLE_REGISTRY": registry.host, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    reports = tmp_path / "reports"

    # perl-base 5.36.0-7+deb12u1 (source perl) has an open high CVE in the test tracker data.
    blocked = socle(
        "build",
        "-c",
        str(trusted_catalog(tmp_path, debian_upstream, "[]")),
        "--reports",
        str(reports),
        env=env,
    )
    assert blocked.returncode == 1
    assert "the CVE policy blocks debian:12" in blocked.stderr
    assert "CVE-2023-31484 in perl-base" in blocked.stderr
    assert "app:1-debian12 (blocked)" in blocked.stderr
    assert not httpx.get(f"http://{registry.host}/v2/trusted/debian/tags/list").json().get("tags")

    entry = "[{cve: CVE-2023-31484, reason: CPAN is not used at run time, owner: platform-team, expires: %s}]"
    allowed = socle(
        "build",
        "-c",
        str(trusted_catalog(tmp_path, debian_upstream, entry % "2099-12-31")),
        "--reports",
        str(reports),
        env=env,
    )
    assert allowed.returncode == 0, allowed.stderr
    annotations = skopeo_inspect(f"{registry.host}/trusted/app:1-debian12", raw=True)["annotations"]
    assert "1 allowlisted, policy passed" in annotations["io.github.socle.scan"]
    packages = int(annotations["io.github.socle.sbom"].split()[0])
    assert packages > 80  # a real minbase: dpkg's own database, read from the layers
    plan = json.loads(socle("plan", "-c", str(tmp_path / "catalog.yaml"), "--json", env=env).stdout)
    app = next(i for i in plan["images"] if i["name"] == "app")
    assert set(app["gates"]) == {"sbom", "scan"} and "policy passed" in app["gates"]["scan"]
    sbom = json.loads((reports / "app_1-debian12.cdx.json").read_text())
    purls = {c.get("purl", "") for c in sbom["components"]}
    assert any(
        p.startswith("pkg:deb/debian/perl-base@5.36.0-7") and "distro=debian-12" in p for p in purls
    )

    # An expired allowlist entry stops counting, and the message says so.
    expired = socle(
        "build",
        "-c",
        str(trusted_catalog(tmp_path, debian_upstream, entry % "2020-01-01")),
        env=env,
    )
    assert expired.returncode == 0  # nothing to rebuild: the published images are current...
    (tmp_path / "app" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo v2 > /app\n"
    )
    rebuilt = socle(
        "build",
        "-c",
        str(trusted_catalog(tmp_path, debian_upstream, entry % "2020-01-01")),
        env=env,
    )
    assert rebuilt.returncode == 1  # ...but the next build of the child is held to it again
    assert "expired" in rebuilt.stderr and "CVE-2023-31484" in rebuilt.stderr
