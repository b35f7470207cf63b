"""A two-platform family, end to end: a Debian index of amd64 and arm64 (the session's two
bootstraps), a child built for both platforms (its arm64 RUN step under qemu emulation),
published as OCI indexes and signed, judged by skopeo, buildah and cosign.
"""

from __future__ import annotations

import json
import os
import secrets
import textwrap
from pathlib import Path

import httpx
import pytest

from socle.process import run
from tests.integration.conftest import Bootstrapped, LocalRegistry, require
from tests.integration.helpers import skopeo_inspect, socle
from tests.integration.test_console_browser import Served, wait_for
from tests.integration.test_cosign import LEGACY, PASSWORD, claims, cosign_verify

pytestmark = pytest.mark.integration

PLATFORMS = [
    {"architecture": "amd64", "os": "linux"},
    {"architecture": "arm64", "os": "linux", "variant": "v8"},
]


def upstream_index(registry: LocalRegistry, layouts: dict[str, Path]) -> str:
    """`up/debian:12` as an OCI index of the layouts, assembled by buildah (not by socle)."""
    name = f"socle-up-{secrets.token_hex(4)}"
    run(["buildah", "manifest", "create", name])
    try:
        for arch, layout in layouts.items():
            ref = f"{registry.host}/up/debian:12-{arch}"
            copy = ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"]
            run(copy)
            run(["buildah", "manifest", "add", "--tls-verify=false", name, f"docker://{ref}"])
        target = f"docker://{registry.host}/up/debian:12"
        push = ["buildah", "manifest", "push", "--all", "--tls-verify=false", "--format", "oci"]
        run([*push, name, target])
    finally:
        run(["buildah", "manifest", "rm", name])
    return str(skopeo_inspect(f"{registry.host}/up/debian:12")["Digest"])


def raw(ref: str) -> dict[str, object]:
    found = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]).stdout
    return dict(json.loads(found))


def test_a_two_platform_family_is_published_as_signed_indexes(
    debian_bookworm: Bootstrapped, debian_arm64: Bootstrapped, tmp_path: Path
) -> None:
    require("buildah")
    require("skopeo")
    registry = LocalRegistry(tmp_path / "registry")
    try:
        layouts = {"amd64": debian_bookworm.result.layout, "arm64": debian_arm64.result.layout}
        digest = upstream_index(registry, layouts)
        (tmp_path / "tool").mkdir()
        (tmp_path / "tool" / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN uname -m > /arch\n"
        )
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            textwrap.dedent(
                f"""\
                registry: {registry.host}
                namespace: ma
                architectures: [amd64, arm64]
                images:
                  debian:
                    upstream: {registry.host}/up/debian
                    versions:
                      "12": {{digest: "{digest}"}}
                  tool:
                    parents: [debian]
                    versions: ["1"]
                    tests:
                      - name: built and run on its own platform
                        command: [sh, -c, 'test "$(uname -m)" = "$(cat /arch)" && cat /arch']
                        stdout: '^(x86_64|aarch64)$'
                """
            )
        )
        env = {"SOCLE_PASSWORD": PASSWORD, "XDG_CACHE_HOME": str(tmp_path / "cache")}
        made = socle("keygen", "--out", str(tmp_path / "ops"), env=env)
        assert made.returncode == 0, made.stderr
        reports = tmp_path / "reports"
        result = socle(
            "build",
            "-c",
            str(catalog),
            "--sign-key",
            str(tmp_path / "ops.key"),
            "--reports",
            str(reports),
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 built" in result.stdout

        # skopeo reads the child's tag as an OCI index of both platforms.
        tool = f"{registry.host}/ma/tool:1-debian12"
        index = raw(tool)
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
        entries = index["manifests"]
        assert isinstance(entries, list)
        assert [e["platform"] for e in entries] == PLATFORMS
        assert raw(f"{registry.host}/ma/debian:12") == raw(f"{registry.host}/up/debian:12")

        # The arm64 image, fetched alone, says aarch64 under emulation: built there too.
        layout = tmp_path / "arm64-copy"
        run(
            ["skopeo", "copy", "--override-arch", "arm64", "--src-tls-verify=false"]
            + [f"docker://{tool}", f"oci:{layout}"]
        )
        config = json.loads(run(["skopeo", "inspect", "--config", f"oci:{layout}"]).stdout)
        assert config["architecture"] == "arm64"
        name = f"socle-ma-{secrets.token_hex(4)}"
        run(["buildah", "from", "--arch", "arm64", "--name", name, f"oci:{layout}"])
        image = run(["buildah", "inspect", "--format", "{{.FromImageID}}", name]).stdout.strip()
        try:
            said = run(["buildah", "run", "--network", "none", name, "--", "uname", "-m"])
            built_on = run(["buildah", "run", "--network", "none", name, "--", "cat", "/arch"])
        finally:
            run(["buildah", "rm", name])
            run(["buildah", "rmi", image])
        assert said.stdout.strip() == "aarch64"
        assert built_on.stdout.strip() == "aarch64"

        # The image tests ran once per platform, each in its own platform's container.
        for arch in ("amd64", "arm64"):
            junit = (reports / f"tool_1-debian12.{arch}.junit.xml").read_text()
            assert 'failures="0"' in junit and f"tool:1-debian12 ({arch})" in junit

        # cosign verifies the index and each platform manifest with socle's public key.
        home = tmp_path / "cosign-home"
        pub = tmp_path / "ops.pub"
        index_digest = skopeo_inspect(tool)["Digest"]
        refs = [f"{registry.host}/ma/tool@{index_digest}"]
        refs += [f"{registry.host}/ma/tool@{e['digest']}" for e in entries]
        for ref in refs:
            (claim,) = claims(cosign_verify(pub, ref, LEGACY, home=home))
            assert claim["critical"]["image"]["docker-manifest-digest"] == ref.split("@")[1]

        # The console offers each platform's SBOM (socle attests one per platform manifest).
        served = Served(
            ["-c", str(catalog), "--db", f"sqlite:///{tmp_path / 'console.db'}"]
            + ["--key", str(pub), "--refresh", "1"],
            {**os.environ, **env},
            tmp_path / "serve.log",
        )
        try:
            page = ""

            def linked() -> bool:
                nonlocal page
                page = httpx.get(f"{served.url}/images/tool:1-debian12").text
                return page.count('class="sbom-platform"') == 2

            assert wait_for(linked, "the per-platform SBOM links", fail=False), page
            for entry in entries:
                platform = "/".join(
                    str(entry["platform"][k])  # type: ignore[index]
                    for k in ("os", "architecture", "variant")
                    if k in entry["platform"]  # type: ignore[operator]
                )
                sbom = httpx.get(
                    f"{served.url}/images/tool:1-debian12/sbom", params={"platform": platform}
                )
                assert sbom.status_code == 200, sbom.text
                assert sbom.json()["metadata"]["component"]["version"] == entry["digest"]
            missing = httpx.get(
                f"{served.url}/images/tool:1-debian12/sbom", params={"platform": "linux/s390x"}
            )
            assert missing.status_code == 404
            assert "has no linux/s390x image (it has linux/amd64, linux/arm64/v8)" in missing.text
        finally:
            served.stop()

        # `socle verify` checks the index and each platform; an unsigned platform fails it.
        verified = socle("verify", "--key", str(pub), tool, env=env)
        assert verified.returncode == 0, verified.stderr
        assert (
            "is verified (sigstore-bundle, cosign-legacy), with its 2 platforms" in verified.stdout
        )
        assert verified.stdout.count("  platform linux/") == 2
        arm64 = str(entries[1]["digest"])
        for tag in (f"sha256-{arm64[7:]}.sig", f"sha256-{arm64[7:]}"):
            run(
                [
                    "skopeo",
                    "delete",
                    "--tls-verify=false",
                    f"docker://{registry.host}/ma/tool:{tag}",
                ]
            )
        refused = socle("verify", "--key", str(pub), tool, env=env)
        assert refused.returncode == 1
        assert f"platform linux/arm64/v8: no signature for {registry.host}/ma/tool@{arm64}" in (
            refused.stderr
        )
    finally:
        registry.stop()
