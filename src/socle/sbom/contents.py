"""Inventory an image from its OCI layout: distribution, Debian packages, jars, Python."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from socle.oci.layout import read_image_layout
from socle.sbom import debian, jars, pypi
from socle.sbom.layers import Found, Node, TooLarge, lookup, read_files
from socle.sbom.model import Distro, Ecosystem, Inventory, Package

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
DOC = "usr/share/doc/"
_DOC_FOLDER = re.compile(r"^usr/share/doc/[^/]+$")
_COPYRIGHT = re.compile(r"^usr/share/doc/[^/]+/copyright$")
MIB = 1 << 20
TEXT_LIMIT = 4 * MIB
STATUS_LIMIT = 64 * MIB
JAR_LIMIT = 256 * MIB  # a jar is read into memory to open it as a zip


class ImageProbe:
    """The files an inventory needs, and how to read each."""

    def limit(self, path: str) -> int | None:
        """How much of the file at `path` to read, or None to skip it."""
        if path == DPKG_STATUS:
            return STATUS_LIMIT
        if path.endswith(jars.JAR_SUFFIXES):
            return JAR_LIMIT
        if (
            path in OS_RELEASE
            or _COPYRIGHT.match(path)
            or _is_status_d(path)
            or pypi.DIST_INFO_METADATA.search(path)
        ):
            return TEXT_LIMIT
        return None

    def parse(self, path: str, data: bytes) -> object | None:
        """The parsed content of a file :meth:`limit` accepted."""
        if path == DPKG_STATUS or _is_status_d(path):
            return debian.parse_dpkg_status(data)
        if path in OS_RELEASE:
            return debian.parse_os_release(data)
        if _COPYRIGHT.match(path):
            return debian.parse_copyright(data)
        if path.endswith(jars.JAR_SUFFIXES):
            return jars.parse_jar(path, data) or Unreadable()
        return pypi.parse_metadata(data)

    def keeps_link(self, path: str) -> bool:
        """Links that lookups follow: os-release and package doc folders."""
        return path in OS_RELEASE or bool(_DOC_FOLDER.match(path) or _COPYRIGHT.match(path))


@dataclass(frozen=True)
class Unreadable:
    """A file that matched but could not be parsed (reported as a warning)."""


def _is_status_d(path: str) -> bool:
    # distroless writes one file per package, plus PKG.md5sums beside it
    return (
        path.startswith(DPKG_STATUS_D)
        and "/" not in path[len(DPKG_STATUS_D) :]
        and (not path.endswith(".md5sums"))
    )


def inventory(layout_dir: Path) -> Inventory:
    """Inventory the image of the OCI layout at `layout_dir` without running it."""
    image = read_image_layout(layout_dir)
    manifest = image.manifest.json()
    layers = [image.blob_path(str(layer["digest"])) for layer in manifest.get("layers") or []]
    files = read_files(layers, ImageProbe())
    config = _json(image.blob_path(str(manifest.get("config", {}).get("digest", ""))))
    architecture = config.get("architecture")
    return assemble(files, architecture=architecture if isinstance(architecture, str) else None)


def _json(path: Path) -> dict[str, object]:
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, OSError):
        return {}
    return doc if isinstance(doc, dict) else {}


def assemble(files: dict[str, Node], *, architecture: str | None = None) -> Inventory:
    """Turn the files read from the layers into a sorted inventory."""
    distro = _distro(files)
    packages = [*_debs(files), *_others(files)]
    packages.sort(key=lambda p: (p.ecosystem.value, p.name, p.version, p.arch or "", p.path or ""))
    return Inventory(distro, tuple(packages), architecture, tuple(_warnings(files)))


def _warnings(files: dict[str, Node]) -> Iterator[str]:
    for path, node in sorted(files.items()):
        value = node.value if isinstance(node, Found) else None
        if isinstance(value, Unreadable):
            yield f"{path}: not a readable Java archive"
        elif isinstance(value, TooLarge):
            yield f"{path}: not read, {value.size} bytes is over the {value.limit}-byte limit"


def _distro(files: dict[str, Node]) -> Distro | None:
    for path in OS_RELEASE:
        found = lookup(files, path)
        if isinstance(found, debian.OsRelease):
            return found.distro()
    return None


def _debs(files: dict[str, Node]) -> Iterator[Package]:
    records: dict[tuple[str, str], debian.DpkgRecord] = {}
    status_d = sorted(p for p in files if _is_status_d(p))
    for path in [*status_d, DPKG_STATUS]:  # the main database wins
        found = lookup(files, path)
        if isinstance(found, debian.DpkgDatabase):
            records.update(((r.name, r.arch), r) for r in found.records)
    for record in records.values():
        copyright = lookup(files, f"{DOC}{record.name}/copyright")
        licences = copyright.licences if isinstance(copyright, debian.Copyright) else ()
        yield Package(
            Ecosystem.DEB,
            record.name,
            record.version,
            record.source_name,
            record.source_version,
            arch=record.arch,
            licences=licences,
        )


def _others(files: dict[str, Node]) -> Iterator[Package]:
    for path, node in files.items():
        if not isinstance(node, Found):
            continue
        value = node.value
        if isinstance(value, jars.JavaArchive):
            yield Package(
                Ecosystem.JAVA, value.name, value.version, value.name, value.version,
                licences=value.licences, group=value.group, path="/" + path,
            )  # fmt: skip
        elif isinstance(value, pypi.PythonDist):
            yield Package(
                Ecosystem.PYTHON, value.name, value.version, value.name, value.version,
                licences=value.licences, path="/" + posixpath.dirname(path),
            )  # fmt: skip
