"""The trusted OS image, bootstrapped for real from the host's Debian sources.

The bootstrap (about 30 s) runs once per module; the other tests look at its
rootfs tar, its layout, and the image pushed to the session's registry.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import time
from pathlib import Path, PurePosixPath
from typing import Protocol

import pytest

from socle.bootstrap.mmdebstrap import bootstrap
from socle.bootstrap.spec import BootstrapSpec
from socle.errors import SocleError
from socle.oci.layout import read_image_layout
from socle.process import run
from socle.timestamps import rfc3339
from tests.integration.conftest import BOOTSTRAP_LABELS, Bootstrapped

pytestmark = pytest.mark.integration


class Registry(Protocol):
    """The session's registry (tests/integration/conftest.py)."""

    host: str


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: run `make setup` (or .ci/run) first")


LABELS = BOOTSTRAP_LABELS


@pytest.fixture
def debian(debian_bookworm: Bootstrapped) -> Bootstrapped:
    """The session's bootstrap (tests/integration/conftest.py): one per run."""
    return debian_bookworm


def test_the_result_describes_the_layout(debian: Bootstrapped) -> None:
    result = debian.result
    image = read_image_layout(result.layout)

    assert image.digest == result.manifest_digest
    assert image.diff_ids == (result.diff_id,)
    assert result.diff_id == "sha256:" + _sha256_file(debian.rootfs)
    assert 60 <= result.package_count <= 150
    assert result.duration > 0
    assert image.config["architecture"] == "amd64"
    assert image.config["created"] == rfc3339(result.source_date_epoch)
    assert image.config["config"]["Labels"] == LABELS
    assert result.source_date_epoch % 86400 == 0, "the default epoch is a day's midnight"


def test_the_rootfs_tar_is_sorted_and_clamped_to_the_epoch(debian: Bootstrapped) -> None:
    epoch = debian.result.source_date_epoch
    children: dict[PurePosixPath, list[str]] = {}
    for member in debian.members:
        path = PurePosixPath(member.name)
        if str(path) != ".":
            children.setdefault(path.parent, []).append(path.name)

    assert max(member.mtime for member in debian.members) <= epoch
    # numeric owners only: the build host's user names cannot leak in
    assert not [m.name for m in debian.members if m.uname or m.gname]
    for parent, names in children.items():
        as_bytes = [name.encode() for name in names]
        assert as_bytes == sorted(as_bytes), f"{parent} is not sorted"


def test_the_rootfs_fits_a_container(debian: Bootstrapped) -> None:
    by_name = {member.name.rstrip("/"): member for member in debian.members}

    assert not [m.name for m in debian.members if m.ischr() or m.isblk() or m.isfifo()]
    assert "./dev" not in by_name
    for gone in (
        "./etc/resolv.conf",
        "./etc/hostname",
        "./etc/apt/apt.conf.d/99mmdebstrap",
        "./var/cache/ldconfig/aux-cache",
        "./var/log/dpkg.log",
    ):
        assert gone not in by_name, gone
    machine_id = by_name.get("./etc/machine-id")
    assert machine_id is None or machine_id.size == 0
    lists = [n for n in by_name if n.startswith("./var/lib/apt/lists/")]
    assert set(lists) <= {"./var/lib/apt/lists/lock", "./var/lib/apt/lists/partial"}
    assert not [n for n in by_name if n.startswith("./var/cache/apt/") and n.endswith(".bin")]
    # merged /usr through usr-is-merged, without the usrmerge package (and perl)
    assert "./usr/share/doc/usr-is-merged" in by_name
    assert "./usr/share/doc/usrmerge" not in by_name


def test_the_image_apt_sources_are_the_bootstrap_sources(debian: Bootstrapped) -> None:
    with tarfile.open(debian.rootfs) as tar:
        extracted = tar.extractfile("./etc/apt/sources.list")
        assert extracted is not None
        sources = extracted.read().decode()

    assert sources == debian.result.sources
    assert "bookworm-security" in sources


def test_apt_get_update_works_inside_the_image(debian: Bootstrapped, tmp_path: Path) -> None:
    # What a child Dockerfile's `RUN apt-get update` does, in a chroot with the
    # runtime's /dev, /proc and resolv.conf; it talks to the host-configured mirror.
    root = tmp_path / "root"
    root.mkdir()
    run(["tar", "-xf", str(debian.rootfs), "-C", str(root)])
    script = (
        'set -e; mkdir -p "$1/dev"; mount --rbind /dev "$1/dev"; '
        'mount -t proc proc "$1/proc"; cp /etc/resolv.conf "$1/etc/resolv.conf"; '
        'chroot "$1" apt-get update; chroot "$1" apt-get install --simulate --yes hello'
    )
    done = run(["unshare", "--mount", "--fork", "sh", "-c", script, "sh", str(root)], timeout=300)

    assert "Inst hello" in done.stdout


def test_the_layout_pushes_to_a_registry_and_inspects(
    debian: Bootstrapped, registry: Registry
) -> None:
    require("skopeo")
    ref = f"docker://{registry.host}/test/debian:12"
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{debian.result.layout}", ref])

    raw = json.loads(run(["skopeo", "inspect", "--tls-verify=false", ref]).stdout)
    config = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "--config", ref]).stdout)

    assert raw["Digest"] == debian.result.manifest_digest
    assert raw["Os"] == "linux"
    assert raw["Architecture"] == "amd64"
    assert raw["Created"] == rfc3339(debian.result.source_date_epoch)
    assert raw["Labels"] == LABELS
    assert config["rootfs"]["diff_ids"] == [debian.result.diff_id]
    assert config["config"]["Cmd"] == ["bash"]


def test_an_unreachable_mirror_fails_fast_and_names_it(tmp_path: Path) -> None:
    spec = BootstrapSpec("bookworm", mirror="http://127.0.0.1:9/debian")
    started = time.monotonic()

    with pytest.raises(SocleError) as caught:
        bootstrap(spec, tmp_path / "layout")

    elapsed = time.monotonic() - started
    message = caught.value.message
    assert message.startswith("the mirror http://127.0.0.1:9/debian could not be reached")
    assert "Connection refused" in message
    assert caught.value.hint
    assert elapsed < 15, f"took {elapsed:.1f} s"
    assert not (tmp_path / "layout" / "index.json").exists()


def _sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
