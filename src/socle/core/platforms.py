"""Architectures a catalog may ask for: Debian's names, and the OCI platform of each.

The catalog speaks Debian (`amd64`, `arm64`, `armhf`...), as mmdebstrap and
apt do; registries and builders speak OCI platforms (`linux/arm64/v8`). This
table is the one place the two meet.
"""

from __future__ import annotations

DEFAULT_ARCH = "amd64"  # an image whose catalog declares no architectures is built for this one

# Debian architecture -> (OCI architecture, OCI variant); every image is linux.
OCI_ARCH: dict[str, tuple[str, str]] = {
    "amd64": ("amd64", ""),
    "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v5"),
    "i386": ("386", ""),
    "ppc64el": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}
KNOWN_ARCHES = tuple(OCI_ARCH)


def platform_of(arch: str) -> str:
    """`linux/arm64/v8` for `arm64`: what builders' `--platform` and index entries name."""
    architecture, variant = OCI_ARCH[arch]
    return "/".join(p for p in ("linux", architecture, variant) if p)


def platform_json(arch: str) -> dict[str, str]:
    """The `platform` object of an OCI index entry for `arch`."""
    architecture, variant = OCI_ARCH[arch]
    found = {"architecture": architecture, "os": "linux"}
    if variant:
        found["variant"] = variant
    return found


def arch_of(architecture: str, variant: str = "") -> str | None:
    """The Debian name of an OCI architecture (and variant), or None when socle knows none."""
    for arch, (oci, oci_variant) in OCI_ARCH.items():
        if oci == architecture and (not variant or not oci_variant or variant == oci_variant):
            return arch
    return None
