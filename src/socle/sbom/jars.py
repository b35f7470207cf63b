"""Java archives: who they are, from `META-INF/MANIFEST.MF` and Maven's `pom.properties`."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass

JAR_SUFFIXES = (".jar", ".war", ".ear")
MANIFEST = "META-INF/MANIFEST.MF"
_POM_PROPERTIES = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")
# commons-lang3-3.12.0.jar → (commons-lang3, 3.12.0)
_FILE_NAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.+~-]*)$")


@dataclass(frozen=True)
class JavaArchive:
    """What a jar says about itself; `group` is the Maven groupId when it says so."""

    name: str
    version: str
    group: str | None = None
    licences: tuple[str, ...] = ()


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a jar manifest (72-byte lines continued by a leading space)."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            break  # the main section ends at the first blank line
        if line.startswith(" ") and key:
            fields[key] += line[1:]
            continue
        key, sep, value = line.partition(":")
        key = key.strip() if sep else ""
        if key:
            fields[key] = value.strip()
    return fields


def parse_properties(text: str) -> dict[str, str]:
    """A Java `.properties` file's simple `key=value` lines."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip()
    return fields


def parse_jar(path: str, data: bytes) -> JavaArchive | None:
    """Identify the jar at `path` from its bytes; None when it is not a readable zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as jar:
            names = jar.namelist()
            manifest = parse_manifest(_text(jar, MANIFEST)) if MANIFEST in names else {}
            poms = [parse_properties(_text(jar, n)) for n in names if _POM_PROPERTIES.match(n)]
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
        return None
    return identify(posixpath.basename(path), manifest, poms)


def _text(jar: zipfile.ZipFile, name: str) -> str:
    return jar.read(name).decode("utf-8", errors="replace")


def identify(
    file_name: str, manifest: dict[str, str], poms: list[dict[str, str]]
) -> JavaArchive | None:
    """Name, version and group of a jar: Maven coordinates first, then the manifest,
    then the file name."""
    stem = posixpath.splitext(file_name)[0]
    pom = _own_pom(stem, poms)
    from_name = _FILE_NAME.match(stem)
    name = (
        pom.get("artifactId")
        or manifest.get("Implementation-Title")
        or _bundle_name(manifest)
        or (from_name["name"] if from_name else stem)
    )
    version = (
        pom.get("version")
        or manifest.get("Implementation-Version")
        or manifest.get("Bundle-Version")
        or (from_name["version"] if from_name else "")
    )
    group = pom.get("groupId") or manifest.get("Implementation-Vendor-Id") or None
    licences = tuple(
        part.strip().split(";", 1)[0]
        for part in manifest.get("Bundle-License", "").split(",")
        if part.strip()
    )
    return JavaArchive(name, version, group, licences) if name else None


def _own_pom(stem: str, poms: list[dict[str, str]]) -> dict[str, str]:
    """The jar's own Maven coordinates (a shaded jar carries its dependencies' too)."""
    if len(poms) == 1:
        return poms[0]
    own = [p for p in poms if p.get("artifactId") and stem.startswith(p["artifactId"])]
    return max(own, key=lambda p: len(p["artifactId"])) if own else {}


def _bundle_name(manifest: dict[str, str]) -> str:
    return manifest.get("Bundle-SymbolicName", "").split(";", 1)[0].strip()
