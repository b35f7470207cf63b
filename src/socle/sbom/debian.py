"""Debian's own records in an image: the dpkg database, copyright files, os-release."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from debian.deb822 import Deb822

from socle.sbom.model import Distro

# dpkg states whose files are not (all) on disk: nothing to inventory.
ABSENT_STATES = frozenset({"not-installed", "config-files", "half-installed"})
_SOURCE = re.compile(r"^\s*(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?\s*$")
_COMMON_LICENCE = re.compile(r"/usr/share/common-licenses/(?P<name>[A-Za-z0-9][A-Za-z0-9.+_-]*)")
DEP5_MARKERS = ("copyright-format", "dep5", "dep-5")


@dataclass(frozen=True)
class DpkgRecord:
    """One binary package as the dpkg database lists it."""

    name: str
    version: str
    arch: str
    source_name: str
    source_version: str


@dataclass(frozen=True)
class DpkgDatabase:
    """The packages of one dpkg status file (or one `status.d/` file)."""

    records: tuple[DpkgRecord, ...]


@dataclass(frozen=True)
class Copyright:
    """The licences a `/usr/share/doc/PKG/copyright` file names."""

    licences: tuple[str, ...]


@dataclass(frozen=True)
class OsRelease:
    """The `KEY=value` fields of an os-release file."""

    fields: Mapping[str, str]

    def distro(self) -> Distro | None:
        """The distribution these fields describe (None without an `ID`)."""
        distro_id = self.fields.get("ID")
        if not distro_id:
            return None
        return Distro(
            id=distro_id.lower(),
            version_id=self.fields.get("VERSION_ID") or None,
            codename=self.fields.get("VERSION_CODENAME") or None,
            pretty_name=self.fields.get("PRETTY_NAME") or None,
        )


def _paragraphs(data: bytes) -> Iterator[Deb822]:
    yield from Deb822.iter_paragraphs(data.splitlines(keepends=True), use_apt_pkg=False)


def parse_dpkg_status(data: bytes) -> DpkgDatabase:
    """The installed packages of a dpkg status file.

    Paragraphs without `Status` (distroless `status.d/` files) count as installed.
    """
    records = []
    for paragraph in _paragraphs(data):
        record = _record(paragraph)
        if record is not None:
            records.append(record)
    return DpkgDatabase(tuple(records))


def _record(paragraph: Deb822) -> DpkgRecord | None:
    name = paragraph.get("Package", "").strip()
    version = paragraph.get("Version", "").strip()
    state = paragraph.get("Status", "install ok installed").split()
    if not name or not version or (state and state[-1] in ABSENT_STATES):
        return None
    source_name, source_version = name, version
    match = _SOURCE.match(paragraph.get("Source", ""))
    if match:
        source_name = match["name"]
        source_version = match["version"] or version
    arch = paragraph.get("Architecture", "").strip() or "all"
    return DpkgRecord(name, version, arch, source_name, source_version)


def parse_copyright(data: bytes) -> Copyright:
    """The licence names of a copyright file.

    A machine-readable (DEP-5) file gives the first line of each `License:`
    field; any other file gives the `/usr/share/common-licenses/NAME` it cites.
    """
    text = data.decode("utf-8", errors="replace")
    try:
        paragraphs = list(_paragraphs(data))
    except ValueError:
        paragraphs = []
    fmt = paragraphs[0].get("Format", "").lower() if paragraphs else ""
    if any(marker in fmt for marker in DEP5_MARKERS):
        names = (_first_line(p.get("License", "")) for p in paragraphs)
    else:
        names = (m["name"].rstrip(".") for m in _COMMON_LICENCE.finditer(text))
    return Copyright(tuple(dict.fromkeys(name for name in names if name)))


def _first_line(field: str) -> str:
    return field.strip().split("\n", 1)[0].strip()


def parse_os_release(data: bytes) -> OsRelease:
    """The fields of an os-release file (shell-quoted `KEY=value` lines)."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        fields[key.strip()] = " ".join(words)
    return OsRelease(fields)
