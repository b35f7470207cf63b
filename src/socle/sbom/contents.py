"""Inventory an image from its OCI layout: distribution, Debian packages, jars, Python."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from socle.oci.layout import read_image_layout
from socle.sbom import debian, jars, pypi
from socle.sbom.cache import LayerCache
from socle.sbom.layers import Found, LayerChange, Node, TooLarge, lookup, read_layer
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

    @property
    def version(self) -> str:
        """A hash of the code that decides what is kept and how it is parsed."""
        return _parsers_version()

    def encode(self, value: object) -> object:
        """A parsed value as JSON, for the layer cache."""
        if isinstance(value, debian.DpkgDatabase):
            return {"dpkg": [list(_record_fields(r)) for r in value.records]}
        if isinstance(value, debian.OsRelease):
            return {"os-release": dict(value.fields)}
        if isinstance(value, debian.Copyright):
            return {"copyright": list(value.licences)}
        if isinstance(value, jars.JavaArchive):
            return {"jar": [value.name, value.version, value.group, list(value.licences)]}
        if isinstance(value, pypi.PythonDist):
            return {"python": [value.name, value.version, list(value.licences)]}
        if isinstance(value, Unreadable):
            return {"unreadable": True}
        raise TypeError(f"no JSON form for {value!r}")

    def decode(self, doc: object) -> object:
        """The value :meth:`encode` turned into `doc`."""
        if not isinstance(doc, dict) or len(doc) != 1:
            raise ValueError("a parsed value is an object with one key")
        [(kind, data)] = doc.items()
        if kind == "dpkg":
            return debian.DpkgDatabase(tuple(debian.DpkgRecord(*map(str, r)) for r in data))
        if kind == "os-release":
            return debian.OsRelease({str(k): str(v) for k, v in dict(data).items()})
        if kind == "copyright":
            return debian.Copyright(_strings(data))
        if kind == "jar":
            name, version, group, licences = data
            group = None if group is None else str(group)
            return jars.JavaArchive(str(name), str(version), group, _strings(licences))
        if kind == "python":
            name, version, licences = data
            return pypi.PythonDist(str(name), str(version), _strings(licences))
        if kind == "unreadable":
            return Unreadable()
        raise ValueError(f"unknown parsed value {kind!r}")


def _record_fields(record: debian.DpkgRecord) -> tuple[str, ...]:
    return (record.name, record.version, record.arch, record.source_name, record.source_version)


def _strings(items: object) -> tuple[str, ...]:
    if not isinstance(items, list):
        raise ValueError("expected a list of strings")
    return tuple(str(item) for item in items)


_PARSERS = ("layers.py", "contents.py", "debian.py", "jars.py", "pypi.py", "cache.py")


@functools.cache
def _parsers_version() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _PARSERS:
        digest.update((here / name).read_bytes())
    # python-debian parses the dpkg database and the copyright files
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        digest.update(importlib.metadata.version("python-debian").encode())
    return "p" + digest.hexdigest()[:16]


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


@dataclass(frozen=True)
class Reading:
    """An inventory, with how many of the image's layers were read and how many came cached."""

    inventory: Inventory
    layers: int
    cached: int


def inventory(layout_dir: Path, cache: LayerCache | None = None) -> Inventory:
    """Inventory the image of the OCI layout at `layout_dir` without running it."""
    return read(layout_dir, cache).inventory


def read(layout_dir: Path, cache: LayerCache | None = None) -> Reading:
    """Inventory the image at `layout_dir`, taking the layers `cache` has from it."""
    image = read_image_layout(layout_dir)
    manifest = image.manifest.json()
    digests = [str(layer["digest"]) for layer in manifest.get("layers") or []]
    diff_ids = [str(d) for d in image.diff_ids]
    if len(diff_ids) != len(digests):
        diff_ids = [""] * len(digests)  # an odd config: key the cache by the blobs alone
    probe = ImageProbe()
    files: dict[str, Node] = {}
    cached = 0
    for digest, diff_id in zip(digests, diff_ids, strict=True):
        blob = image.blob_path(digest)
        change: LayerChange
        if cache is None:
            change, hit = read_layer(blob, probe), False
        else:
            change, hit = cache.read_layer(blob, digest, probe, diff_id=diff_id or None)
        cached += hit
        change.apply(files)
    config = _json(image.blob_path(str(manifest.get("config", {}).get("digest", ""))))
    architecture = config.get("architecture")
    found = assemble(files, architecture=architecture if isinstance(architecture, str) else None)
    return Reading(found, len(digests), cached)


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
