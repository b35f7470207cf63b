"""qemu-user emulation through binfmt_misc, judged on fake /proc/sys/fs/binfmt_misc trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.emulation import (
    KNOWN_ARCHES,
    OCI_ARCH,
    QEMU_CPU,
    BinfmtHandler,
    binfmt_handler,
    native_arch,
    require_emulation,
)
from socle.errors import InputError, SocleError

# What Debian 12's qemu-user-static registers (through binfmt-support) for arm64.
AARCH64 = """\
enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def binfmt_root(tmp_path: Path, *, status: str = "enabled", **handlers: str) -> Path:
    root = tmp_path / "binfmt_misc"
    root.mkdir()
    (root / "status").write_text(f"{status}\n")
    (root / "register").write_text("")
    for name, text in handlers.items():
        (root / name.replace("_", "-")).write_text(text)
    return root


@pytest.mark.parametrize(
    ("machine", "arch"),
    [
        ("x86_64", "amd64"),
        ("aarch64", "arm64"),
        ("armv7l", "armhf"),
        ("i686", "i386"),
        ("ppc64le", "ppc64el"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
    ],
)
def test_the_native_architecture_has_its_debian_name(machine: str, arch: str) -> None:
    assert native_arch(machine) == arch
    assert arch in KNOWN_ARCHES


def test_an_unknown_machine_is_a_socle_error() -> None:
    with pytest.raises(SocleError, match="'mips' machine"):
        native_arch("mips")


def test_every_known_arch_has_an_oci_platform_and_a_qemu_cpu() -> None:
    assert OCI_ARCH["arm64"] == ("arm64", "v8")
    assert OCI_ARCH["armhf"] == ("arm", "v7")
    assert OCI_ARCH["i386"] == ("386", "")
    assert OCI_ARCH["ppc64el"] == ("ppc64le", "")
    assert set(QEMU_CPU) == set(KNOWN_ARCHES)


def test_a_handler_file_is_parsed() -> None:
    handler = BinfmtHandler.parse("qemu-aarch64", AARCH64)

    assert handler.enabled
    assert handler.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert handler.flags == "PF"
    assert handler.fix_binary
    assert not BinfmtHandler.parse("qemu-arm", "disabled\ninterpreter /x\nflags: \n").enabled


def test_the_native_architecture_needs_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"

    assert require_emulation("amd64", root=missing, native="amd64") is None
    assert require_emulation("i386", root=missing, native="amd64") is None
    assert require_emulation("arm64", root=missing, native="arm64") is None


def test_a_registered_handler_with_the_f_flag_passes(tmp_path: Path) -> None:
    root = binfmt_root(tmp_path, qemu_aarch64=AARCH64)

    handler = require_emulation("arm64", root=root, native="amd64")

    assert handler is not None and handler.name == "qemu-aarch64"
    assert binfmt_handler("arm64", root=root) == handler
    assert binfmt_handler("s390x", root=root) is None


def _one_line_error(arch: str, root: Path) -> SocleError:
    with pytest.raises(SocleError) as caught:
        require_emulation(arch, root=root, native="amd64")
    error = caught.value
    assert "\n" not in error.message
    assert error.message.startswith(f"cannot run {arch} programs on this amd64 machine: ")
    return error


def test_an_unregistered_architecture_names_the_packages(tmp_path: Path) -> None:
    error = _one_line_error("arm64", binfmt_root(tmp_path))

    assert "no qemu-aarch64 handler" in error.message
    assert "qemu-user-static and binfmt-support" in error.message
    assert "make setup" in (error.hint or "")


def test_binfmt_misc_not_mounted(tmp_path: Path) -> None:
    error = _one_line_error("arm64", tmp_path / "empty")

    assert "binfmt_misc is not mounted" in error.message
    assert "mount -t binfmt_misc" in (error.hint or "")
    assert "qemu-user-static" in (error.hint or "")


def test_binfmt_misc_disabled_as_a_whole(tmp_path: Path) -> None:
    error = _one_line_error("arm64", binfmt_root(tmp_path, status="disabled"))

    assert "binfmt_misc is disabled" in error.message


def test_a_disabled_handler_says_how_to_enable_it(tmp_path: Path) -> None:
    root = binfmt_root(tmp_path, qemu_aarch64=AARCH64.replace("enabled", "disabled", 1))

    error = _one_line_error("arm64", root)

    assert "qemu-aarch64 handler is disabled" in error.message
    assert error.hint == "as root: `update-binfmts --enable qemu-aarch64`"


def test_without_the_f_flag_the_interpreter_must_exist(tmp_path: Path) -> None:
    interpreter = tmp_path / "qemu-aarch64-static"
    gone = AARCH64.replace("flags: PF", "flags: P").replace(
        "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", str(interpreter)
    )
    error = _one_line_error("arm64", binfmt_root(tmp_path, qemu_aarch64=gone))
    assert f"interpreter {interpreter} is missing" in error.message

    interpreter.write_text("")
    present = gone
    (tmp_path / "second").mkdir()
    root = binfmt_root(tmp_path / "second", qemu_aarch64=present)
    assert require_emulation("arm64", root=root, native="amd64") is not None


def test_an_unknown_architecture_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown architecture 'aarch64'"):
        require_emulation("aarch64", root=tmp_path, native="amd64")
