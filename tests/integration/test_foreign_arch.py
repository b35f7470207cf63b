"""A foreign-architecture OS image, for real: Debian arm64 bootstrapped on this machine under
qemu-user emulation (binfmt_misc), judged by skopeo and by running it with buildah.

The bootstrap (`debian_arm64` in conftest.py) runs once per session.
"""

from __future__ import annotations

import json
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from socle.emulation import native_arch, require_emulation
from socle.errors import SocleError
from socle.process import run
from tests.integration.conftest import Bootstrapped, require

pytestmark = pytest.mark.integration


@pytest.fixture
def arm64_container(debian_arm64: Bootstrapped) -> Iterator[str]:
    """A buildah working container of the arm64 layout (removed afterwards)."""
    require("buildah")
    name = f"socle-arm64-{secrets.token_hex(4)}"
    run(
        ["buildah", "from", "--arch", "arm64", "--variant", "v8", "--name", name]
        + ["--pull=always", f"oci:{debian_arm64.result.layout}"]
    )
    try:
        yield name
    finally:
        run(["buildah", "rm", name])
        # By the name buildah gave it (the same bootstrap elsewhere may share its image ID).
        run(["buildah", "rmi", f"localhost{debian_arm64.result.layout}:latest"])


def test_skopeo_sees_an_arm64_image(debian_arm64: Bootstrapped) -> None:
    require("skopeo")
    layout = debian_arm64.result.layout

    info = json.loads(run(["skopeo", "inspect", f"oci:{layout}"]).stdout)

    assert info["Architecture"] == "arm64"
    assert info["Os"] == "linux"
    assert info["Digest"] == debian_arm64.result.manifest_digest
    config = json.loads(run(["skopeo", "inspect", "--config", f"oci:{layout}"]).stdout)
    assert config["variant"] == "v8"
    assert "--architectures=arm64" in config["history"][0]["created_by"]


def test_the_layout_index_names_the_platform(debian_arm64: Bootstrapped) -> None:
    index = json.loads((debian_arm64.result.layout / "index.json").read_text())

    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "arm64", "os": "linux", "variant": "v8"}
    ]


def test_its_programs_are_aarch64_binaries(debian_arm64: Bootstrapped) -> None:
    assert debian_arm64.result.architecture == "arm64"
    assert 20 <= debian_arm64.result.package_count <= 90
    with tarfile.open(debian_arm64.rootfs) as tar:
        member = tar.extractfile("./usr/bin/dpkg")
        assert member is not None
        header = member.read(20)

    # ELF, 64-bit, little-endian, e_machine 183 (EM_AARCH64).
    assert header[:6] == b"\x7fELF\x02\x01"
    assert int.from_bytes(header[18:20], "little") == 183


def test_it_runs_under_emulation_without_network(arm64_container: str) -> None:
    done = run(["buildah", "run", "--network", "none", arm64_container, "--", "uname", "-m"])
    arch = run(
        ["buildah", "run", "--network", "none", arm64_container, "--"]
        + ["dpkg", "--print-architecture"]
    )

    assert done.stdout.strip() == "aarch64"
    assert arch.stdout.strip() == "arm64"


def test_emulation_is_registered_here_and_missing_in_a_bare_proc(tmp_path: Path) -> None:
    assert native_arch() == "amd64"
    handler = require_emulation("arm64")
    assert handler is not None and handler.enabled and handler.fix_binary

    bare = tmp_path / "binfmt_misc"
    bare.mkdir()
    (bare / "status").write_text("enabled\n")
    with pytest.raises(SocleError) as caught:
        require_emulation("arm64", root=bare)
    assert caught.value.message == (
        "cannot run arm64 programs on this amd64 machine: no qemu-aarch64 handler in"
        " binfmt_misc (install qemu-user-static and binfmt-support)"
    )
