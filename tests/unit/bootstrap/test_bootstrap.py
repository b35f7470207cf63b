from __future__ import annotations

import dataclasses
import functools
import json
import tarfile
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from socle.bootstrap.image import count_installed, image_config
from socle.bootstrap.mmdebstrap import (
    _record_platform,
    bootstrap,
    explain_failure,
    mmdebstrap_command,
)
from socle.bootstrap.sources import host_sources, mirror_sources
from socle.bootstrap.spec import BootstrapSpec
from socle.emulation import native_arch, require_emulation
from socle.errors import InputError, SocleError
from socle.oci.layout import read_image_layout, write_image_layout
from socle.process import CommandError
from socle.timestamps import rfc3339

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

ONE_LINE = """\
# the Debian archive
deb http://mirror.example/debian bookworm main contrib
deb-src http://mirror.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
http://mirror.example/debian bookworm-updates main  # trailing comment
deb http://mirror.example/debian-security bookworm-security main
deb http://mirror.example/debian bookworm-backports main
deb http://mirror.example/debian trixie main
"""

DEB822 = f"""\
Types: deb deb-src
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: {KEYRING}

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: {KEYRING}

Types: deb
URIs: http://mirror.example/old
Suites: bookworm
Components: main
Enabled: no
"""

THIRD_PARTY = """\
Types: deb
URIs: https://vendor.example/node_20.x
Suites: nodistro
Components: main
Architectures: amd64
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
 -----END PGP PUBLIC KEY BLOCK-----
"""

# What mmdebstrap 1.3.5 printed for a mirror on a port that refuses connections.
REFUSED_LOG = """\
I: running apt-get update...
Ign:1 http://127.0.0.1:9/debian bookworm InRelease
Err:1 http://127.0.0.1:9/debian bookworm InRelease
  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)
E: Failed to fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease  Could not connect
E: apt-get update --error-on=any -oAPT::Status-Fd=<$fd> -oDpkg::Use-Pty=false failed
E: mmdebstrap failed to run
"""


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "etc-apt"
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


# --- host sources ------------------------------------------------------------------------


def test_one_line_sources_keep_the_suite_updates_and_security(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list": ONE_LINE})

    text = host_sources("bookworm", security=True, apt_dir=root, lists_dir=None)

    assert text == (
        "deb http://mirror.example/debian bookworm main contrib\n"
        f"deb [arch=amd64 signed-by={KEYRING}] http://mirror.example/debian bookworm-updates main\n"
        "deb http://mirror.example/debian-security bookworm-security main\n"
    )


def test_a_foreign_bootstrap_is_not_hidden_by_the_hosts_arch_option(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list": ONE_LINE})

    arm64 = host_sources(
        "bookworm", security=True, apt_dir=root, lists_dir=None, architecture="arm64"
    )
    amd64 = host_sources(
        "bookworm", security=True, apt_dir=root, lists_dir=None, architecture="amd64"
    )

    assert (
        f"deb [arch=arm64 signed-by={KEYRING}] http://mirror.example/debian bookworm-updates"
        in arm64
    )
    assert amd64 == host_sources("bookworm", security=True, apt_dir=root, lists_dir=None)


def test_deb822_sources_become_one_line_entries(tmp_path: Path) -> None:
    root = apt_dir(
        tmp_path,
        {"sources.list.d/debian.sources": DEB822, "sources.list.d/vendor.sources": THIRD_PARTY},
    )

    text = host_sources("bookworm", security=True, apt_dir=root, lists_dir=None)

    assert text.splitlines() == [
        f"deb [signed-by={KEYRING}] http://mirror.example/debian bookworm main",
        f"deb [signed-by={KEYRING}] http://mirror.example/debian bookworm-updates main",
        f"deb [signed-by={KEYRING}] http://mirror.example/debian-security bookworm-security main",
    ]


def test_without_security_only_the_suite_itself_is_kept(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEB822})

    text = host_sources("bookworm", security=False, apt_dir=root, lists_dir=None)

    assert text == f"deb [signed-by={KEYRING}] http://mirror.example/debian bookworm main\n"


def test_components_can_replace_the_hosts(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list": ONE_LINE})

    text = host_sources(
        "bookworm", security=False, apt_dir=root, lists_dir=None, components=("main",)
    )

    assert text == "deb http://mirror.example/debian bookworm main\n"


def test_disabled_files_and_other_extensions_are_ignored(tmp_path: Path) -> None:
    root = apt_dir(
        tmp_path,
        {
            "sources.list.d/debian.sources.disabled": DEB822,
            "sources.list.d/debian.list.save": ONE_LINE,
        },
    )

    with pytest.raises(SocleError):
        host_sources("bookworm", security=False, apt_dir=root, lists_dir=None)


def test_a_third_party_repository_reusing_the_suite_name_is_skipped(tmp_path: Path) -> None:
    root = apt_dir(
        tmp_path,
        {
            "sources.list": "deb https://vendor.example/debian/12/prod bookworm main\n"
            "deb http://mirror.example/debian bookworm main\n"
        },
    )
    lists = tmp_path / "lists"
    lists.mkdir()
    signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: {}\nSuite: x\n"
    (lists / "vendor.example_debian_12_prod_dists_bookworm_InRelease").write_text(
        signed.format("vendor-bookworm-prod bookworm")
    )
    (lists / "mirror.example_debian_dists_bookworm_InRelease").write_text(signed.format("Debian"))

    text = host_sources("bookworm", security=False, apt_dir=root, lists_dir=lists)

    assert text == "deb http://mirror.example/debian bookworm main\n"


def test_no_entry_for_the_suite_is_an_error_with_a_hint(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list.d/vendor.sources": THIRD_PARTY})

    with pytest.raises(SocleError) as caught:
        host_sources("bookworm", security=True, apt_dir=root, lists_dir=None)

    assert "bookworm" in caught.value.message
    assert caught.value.hint and "mirror" in caught.value.hint


def test_a_missing_security_archive_is_an_error_unless_security_is_off(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list": "deb http://mirror.example/debian bookworm main\n"})

    with pytest.raises(SocleError, match="bookworm-security") as caught:
        host_sources("bookworm", security=True, apt_dir=root, lists_dir=None)
    assert caught.value.hint and "security=False" in caught.value.hint
    assert host_sources("bookworm", security=False, apt_dir=root, lists_dir=None)


def test_the_organisations_mirror_gets_its_security_archive_next_door() -> None:
    text = mirror_sources(
        "http://127.0.0.1:9/debian/", "bookworm", components=("main", "contrib"), security=True
    )

    assert text.splitlines() == [
        "deb http://127.0.0.1:9/debian bookworm main contrib",
        "deb http://127.0.0.1:9/debian bookworm-updates main contrib",
        "deb http://127.0.0.1:9/debian-security bookworm-security main contrib",
    ]
    assert mirror_sources("http://m/d", "sid", components=("main",), security=False) == (
        "deb http://m/d sid main\n"
    )


# --- the spec ----------------------------------------------------------------------------


def test_parameters_are_canonical() -> None:
    a = BootstrapSpec(
        "bookworm",
        packages=("curl", "ca-certificates", "curl"),
        mirror="http://m/debian/",
        source_date_epoch=0,
    )
    b = BootstrapSpec(
        "bookworm",
        packages=("ca-certificates", "curl"),
        mirror="http://m/debian",
        source_date_epoch=0,
    )

    assert a.parameters() == b.parameters()
    assert json.dumps(a.parameters(), sort_keys=True) == json.dumps(b.parameters(), sort_keys=True)
    assert a.parameters()["packages"] == ["ca-certificates", "curl"]


def test_parameters_name_every_field_and_change_with_each() -> None:
    base = BootstrapSpec("bookworm")
    changes = {
        "suite": "trixie",
        "packages": ("curl",),
        "variant": "apt",
        "components": ("main", "contrib"),
        "architecture": "arm64",
        "mirror": "http://m/debian",
        "security": False,
        "source_date_epoch": 1,
    }
    assert set(changes) == {f.name for f in dataclasses.fields(BootstrapSpec)}
    for name, value in changes.items():
        assert name in base.parameters() or name == "architecture"
        changed = dataclasses.replace(base, **{name: value})
        assert changed.parameters() != base.parameters(), name


def test_the_architecture_is_a_parameter_only_when_declared() -> None:
    native = BootstrapSpec("bookworm")

    assert "architecture" not in native.parameters()
    assert BootstrapSpec("bookworm", architecture="arm64").parameters()["architecture"] == "arm64"
    assert BootstrapSpec("bookworm", architecture="amd64").parameters() == {
        **native.parameters(),
        "architecture": "amd64",
    }


def test_no_architecture_means_this_machines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("socle.bootstrap.spec.native_arch", lambda: "arm64")
    spec = BootstrapSpec("bookworm")
    cmd = mmdebstrap_command(spec, "", rootfs=tmp_path / "r", status_dir=tmp_path)

    assert spec.effective_architecture() == "arm64"
    assert "--architectures=arm64" in cmd
    assert image_config(spec, 0, {}) == image_config(
        BootstrapSpec("bookworm", architecture="arm64"), 0, {}
    )


def test_a_foreign_bootstrap_without_emulation_fails_before_mmdebstrap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unmounted = functools.partial(require_emulation, root=tmp_path / "none", native="amd64")
    monkeypatch.setattr("socle.bootstrap.mmdebstrap.require_emulation", unmounted)
    monkeypatch.setattr("socle.bootstrap.mmdebstrap.run", _no_run)

    with pytest.raises(SocleError, match="cannot run s390x programs on this amd64 machine"):
        bootstrap(BootstrapSpec("bookworm", architecture="s390x"), tmp_path / "layout")
    assert not (tmp_path / "layout").exists()


def _no_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("mmdebstrap must not run")


@pytest.mark.parametrize(
    "fields",
    [
        {"suite": ""},
        {"suite": "Bookworm"},
        {"packages": ("curl;rm",)},
        {"packages": ("a,b",)},
        {"variant": "tiny"},
        {"components": ()},
        {"architecture": "x86_64"},
        {"mirror": "mirror.example/debian"},
        {"source_date_epoch": -1},
    ],
)
def test_bad_specs_are_input_errors(fields: dict[str, object]) -> None:
    with pytest.raises(InputError):
        BootstrapSpec(**{"suite": "bookworm", **fields})  # type: ignore[arg-type]


def test_the_default_epoch_is_today_at_midnight_utc() -> None:
    spec = BootstrapSpec("bookworm")
    now = datetime(2024, 5, 6, 23, 59, tzinfo=UTC)

    assert spec.effective_epoch(now) == int(datetime(2024, 5, 6, tzinfo=UTC).timestamp())
    assert spec.effective_epoch(now.replace(hour=0, minute=1)) == spec.effective_epoch(now)
    assert BootstrapSpec("bookworm", source_date_epoch=42).effective_epoch(now) == 42


# --- command, errors and metadata -----------------------------------------------------------


def test_the_mmdebstrap_command_reads_sources_from_stdin(tmp_path: Path) -> None:
    spec = BootstrapSpec("bookworm", packages=("curl",))
    cmd = mmdebstrap_command(
        spec, "deb http://m/debian bookworm main\n", rootfs=tmp_path / "r.tar", status_dir=tmp_path
    )

    assert cmd[0] == "mmdebstrap"
    assert cmd[-3:] == ["bookworm", str(tmp_path / "r.tar"), "-"]
    for option in (
        "--variant=minbase",
        "--format=tar",
        "--skip=output/dev",
        f"--architectures={native_arch()}",
        "--components=main",
        "--include=curl",
    ):
        assert option in cmd


def test_https_sources_bring_ca_certificates_for_apt_in_the_image(tmp_path: Path) -> None:
    spec = BootstrapSpec("bookworm", packages=("curl",))
    cmd = mmdebstrap_command(
        spec, "deb https://m/debian bookworm main\n", rootfs=tmp_path / "r", status_dir=tmp_path
    )

    assert "--include=ca-certificates,curl" in cmd


def test_an_unreachable_mirror_is_named_with_the_log_tail() -> None:
    error = CommandError(["mmdebstrap"], 25, "", REFUSED_LOG)

    explained = explain_failure(error, None, "deb http://127.0.0.1:9/debian bookworm main\n")

    assert explained.message.startswith("the mirror http://127.0.0.1:9/debian could not be reached")
    assert "Connection refused" in explained.message
    assert explained.hint


def test_other_failures_keep_the_command_error() -> None:
    error = CommandError(["mmdebstrap"], 1, "", "E: dpkg failed")

    assert explain_failure(error, None, "") is error
    assert error.hint


def test_the_image_config_describes_the_platform_and_the_epoch() -> None:
    config = image_config(
        BootstrapSpec("bookworm", architecture="arm64"), 1706659200, {"team": "platform"}
    )

    assert config["architecture"] == "arm64"
    assert config["variant"] == "v8"
    assert config["os"] == "linux"
    assert config["created"] == "2024-01-31T00:00:00Z"
    assert config["config"] == {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["bash"],
        "Labels": {"team": "platform"},
    }


def test_rfc3339_and_installed_package_count() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    status = (
        "Package: a\nStatus: install ok installed\n\n"
        "Package: b\nStatus: deinstall ok config-files\n\n"
        "Package: c\nStatus: install ok installed\n"
    )
    assert count_installed(status) == 2


def test_the_layout_index_names_the_platform(tmp_path: Path) -> None:
    tar = tmp_path / "empty.tar"
    with tarfile.open(tar, "w"):
        pass
    layout = tmp_path / "layout"
    config = image_config(BootstrapSpec("bookworm", architecture="armhf"), 0, {})
    digest = write_image_layout(layout, layers=[tar], config=config)

    _record_platform(layout, "armhf")

    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["platform"] == {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
    }
    assert read_image_layout(layout).config["architecture"] == "arm"
