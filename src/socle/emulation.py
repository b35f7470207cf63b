"""Running programs of another architecture on this machine: qemu-user through binfmt_misc.

A foreign-architecture bootstrap (mmdebstrap's maintainer scripts) and a foreign
build's `RUN` steps execute that architecture's binaries. The Linux kernel hands
them to an interpreter registered in binfmt_misc: Debian's `qemu-user-static`
registers one `qemu-<cpu>` handler per architecture through `binfmt-support`,
with the F flag (the kernel opens the interpreter once, at registration, so it
also works inside a chroot or a container that has no qemu binary).

Architecture names are Debian's (`amd64`, `arm64`, `armhf`...), as in the
catalog; :data:`OCI_ARCH` (from :mod:`socle.core.platforms`) gives the OCI
platform of each.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from socle.core.platforms import KNOWN_ARCHES, OCI_ARCH
from socle.errors import InputError, SocleError

__all__ = [
    "BINFMT_MISC",
    "KNOWN_ARCHES",
    "OCI_ARCH",
    "QEMU_CPU",
    "BinfmtHandler",
    "binfmt_handler",
    "native_arch",
    "require_emulation",
]

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
PACKAGES = "install qemu-user-static and binfmt-support"
SETUP_HINT = "`make setup` installs both and registers their handlers (`update-binfmts --display`)"

# Debian architecture -> qemu's CPU name, as in binfmt handler names (`qemu-aarch64`).
QEMU_CPU: Mapping[str, str] = MappingProxyType(
    {
        "amd64": "x86_64",
        "arm64": "aarch64",
        "armhf": "arm",
        "armel": "arm",
        "i386": "i386",
        "ppc64el": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }
)
# platform.machine() (the kernel's `uname -m`) -> Debian architecture.
_MACHINES: Mapping[str, str] = MappingProxyType(
    {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "armhf",
        "armv8l": "armhf",
        "armv6l": "armel",
        "armv5tel": "armel",
        "i386": "i386",
        "i486": "i386",
        "i586": "i386",
        "i686": "i386",
        "ppc64le": "ppc64el",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }
)
# Architectures the CPU of a native one runs without emulation (x86-64 kernels run i386).
_RUNS_NATIVELY: Mapping[str, frozenset[str]] = MappingProxyType({"amd64": frozenset({"i386"})})


def native_arch(machine: str | None = None) -> str:
    """The Debian name of this machine's architecture (`machine`: a `uname -m`, for tests)."""
    found = machine if machine is not None else platform.machine()
    try:
        return _MACHINES[found]
    except KeyError:
        raise SocleError(
            f"socle does not know the Debian architecture of this {found!r} machine",
            hint=f"socle knows {', '.join(KNOWN_ARCHES)}",
        ) from None


@dataclass(frozen=True)
class BinfmtHandler:
    """One binfmt_misc registration, as the kernel shows it in `/proc/sys/fs/binfmt_misc`."""

    name: str
    enabled: bool
    interpreter: str
    flags: str

    @property
    def fix_binary(self) -> bool:
        """F flag: the interpreter was opened at registration and works in any mount namespace."""
        return "F" in self.flags

    @classmethod
    def parse(cls, name: str, text: str) -> BinfmtHandler:
        """Read a handler file: `enabled`, `interpreter PATH`, `flags: PF`, `offset`, `magic`..."""
        lines = text.splitlines()
        fields = {}
        for line in lines[1:]:
            key, _, value = line.partition(" ")
            fields[key.rstrip(":")] = value.strip()
        return cls(
            name=name,
            enabled=bool(lines) and lines[0].strip() == "enabled",
            interpreter=fields.get("interpreter", ""),
            flags=fields.get("flags", ""),
        )


def binfmt_handler(arch: str, *, root: Path = BINFMT_MISC) -> BinfmtHandler | None:
    """The qemu handler registered for Debian architecture `arch`, or None."""
    name = f"qemu-{QEMU_CPU[_known(arch)]}"
    try:
        text = (root / name).read_text()
    except OSError:
        return None
    return BinfmtHandler.parse(name, text)


def require_emulation(
    arch: str, *, root: Path = BINFMT_MISC, native: str | None = None
) -> BinfmtHandler | None:
    """Check that this machine can run `arch` programs; return the handler used, if any.

    Nothing is needed for the native architecture (`native`, default
    :func:`native_arch`) or one its CPU runs itself (i386 on amd64). Otherwise
    binfmt_misc must be mounted at `root` and enabled, with an enabled
    `qemu-<cpu>` handler carrying the F flag (so it also runs inside the
    builders' containers) or, without it, an interpreter present on this host.
    Raises SocleError with one line saying what is missing and what to install.
    """
    here = native if native is not None else native_arch()
    if _known(arch) == here or arch in _RUNS_NATIVELY.get(here, frozenset()):
        return None
    cannot = f"cannot run {arch} programs on this {here} machine"
    status = root / "status"
    if not status.is_file():
        raise SocleError(
            f"{cannot}: binfmt_misc is not mounted at {root}",
            hint=f"as root: `mount -t binfmt_misc binfmt_misc {root}`, then {PACKAGES}",
        )
    if status.read_text().strip() != "enabled":
        raise SocleError(
            f"{cannot}: binfmt_misc is disabled at {root}",
            hint=f"as root: `echo 1 > {status}`",
        )
    handler = binfmt_handler(arch, root=root)
    name = f"qemu-{QEMU_CPU[arch]}"
    if handler is None:
        raise SocleError(
            f"{cannot}: no {name} handler in binfmt_misc ({PACKAGES})", hint=SETUP_HINT
        )
    if not handler.enabled:
        raise SocleError(
            f"{cannot}: the {name} handler is disabled",
            hint=f"as root: `update-binfmts --enable {name}`",
        )
    if not handler.fix_binary and not Path(handler.interpreter).is_file():
        raise SocleError(
            f"{cannot}: {name}'s interpreter {handler.interpreter or '(none)'} is missing"
            f" ({PACKAGES})",
            hint=SETUP_HINT,
        )
    return handler


def _known(arch: str) -> str:
    if arch not in OCI_ARCH:
        raise InputError(f"unknown architecture {arch!r}", hint=f"one of {', '.join(KNOWN_ARCHES)}")
    return arch
