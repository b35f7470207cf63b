"""Inventory from layers (whiteouts, links, parsers), purls and CycloneDX output."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from socle.errors import InputError
from socle.sbom import Distro, Ecosystem, Inventory, Package, inventory, to_cyclonedx
from socle.sbom.bom import image_purl, purl, source_purl
from socle.sbom.debian import parse_copyright, parse_dpkg_status, parse_os_release
from socle.sbom.jars import parse_jar, parse_manifest
from socle.sbom.pypi import parse_metadata

DIGEST = "sha256:" + "ab" * 32
BOOKWORM = Distro("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")

# --- building images by hand ----------------------------------------------------------------


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Hardlink:
    target: str


Member = bytes | Symlink | Hardlink | None  # None: a folder


def tar_layer(members: dict[str, Member]) -> bytes:
    """An uncompressed layer tar with `members` in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, Symlink):
                info.type, info.linkname = tarfile.SYMTYPE, content.target
                tar.addfile(info)
            elif isinstance(content, Hardlink):
                info.type, info.linkname = tarfile.LNKTYPE, content.target
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def write_layout(root: Path, layers: list[bytes], *, compress: bool = True) -> str:
    """A one-image OCI layout of `layers` (bottom first); returns the manifest digest."""
    import hashlib

    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    kind = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    descs = [blob(gzip.compress(layer) if compress else layer, kind) for layer in layers]
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}
    manifest_type = "application/vnd.oci.image.manifest.v1+json"
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": descs,
    }
    top = blob(json.dumps(manifest).encode(), manifest_type)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return str(top["digest"])


def dpkg_entry(name: str, version: str, source: str = "", arch: str = "amd64") -> str:
    lines = [f"Package: {name}", "Status: install ok installed", f"Architecture: {arch}"]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", "Description: test package", " with a long description"]
    return "\n".join(lines) + "\n"


def dpkg_status(*entries: str) -> bytes:
    return "\n".join(entries).encode()


OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
DEP5 = b"""Format: machine-readable copyright-format 1.0 (DEP-5)
Upstream-Name: perl

Files: *
Copyright: 1987-2023 Larry Wall et al.
License: GPL-1+ or Artistic

Files: cpan/Digest-MD5/*
Copyright: 1998-2003 Gisle Aas
License: MIT

License: MIT
 Permission is hereby granted, free of charge, ...
"""
OLD_STYLE = b"""This is the Debian prepackaged version of the GNU C library.

On Debian systems, the complete text of the GNU Lesser General Public License
can be found in `/usr/share/common-licenses/LGPL-2.1'. Some parts are under
/usr/share/common-licenses/GPL-2.
"""


def jar_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as jar:
        for name, text in files.items():
            jar.writestr(name, text)
    return buf.getvalue()


# --- parsers --------------------------------------------------------------------------------


def test_dpkg_status_reads_source_names_and_versions() -> None:
    removed = "Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n"
    db = parse_dpkg_status(
        dpkg_status(
            dpkg_entry("perl-base", "5.36.0-7+deb12u1", "perl"),
            dpkg_entry("libgcc-s1", "12.2.0-14", "gcc-12 (12.2.0-14)"),
            dpkg_entry("libfoo1", "1.0-1+b1", "foo (1.0-1)"),
            dpkg_entry("base-files", "12.4+deb12u5"),
            removed,
        )
    )
    found = {r.name: (r.source_name, r.source_version, r.arch) for r in db.records}
    assert found == {
        "perl-base": ("perl", "5.36.0-7+deb12u1", "amd64"),
        "libgcc-s1": ("gcc-12", "12.2.0-14", "amd64"),
        "libfoo1": ("foo", "1.0-1", "amd64"),
        "base-files": ("base-files", "12.4+deb12u5", "amd64"),
    }


def test_dep5_copyright_gives_each_licence_once() -> None:
    assert parse_copyright(DEP5).licences == ("GPL-1+ or Artistic", "MIT")


def test_old_style_copyright_gives_the_common_licences_it_cites() -> None:
    assert parse_copyright(OLD_STYLE).licences == ("LGPL-2.1", "GPL-2")


def test_copyright_without_licences_gives_none() -> None:
    assert parse_copyright(b"\xff\xfe not text at all").licences == ()


def test_os_release_fields_are_unquoted() -> None:
    distro = parse_os_release(OS_RELEASE).distro()
    assert distro == BOOKWORM
    assert distro is not None and distro.label == "debian-12"


def test_jar_manifest_continuation_lines_and_main_section_only() -> None:
    text = "Manifest-Version: 1.0\r\nImplementation-Title: a-very-long-na\r\n me\r\n\r\nName: x\r\nImplementation-Title: other\r\n"
    assert parse_manifest(text) == {
        "Manifest-Version": "1.0",
        "Implementation-Title": "a-very-long-name",
    }


def test_jar_with_pom_properties_has_maven_coordinates() -> None:
    data = jar_bytes(
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nBundle-SymbolicName: org.apache.commons.lang3\nBundle-Version: 3.12.0\nBundle-License: Apache-2.0\n",
            "META-INF/maven/org.apache.commons/commons-lang3/pom.properties": "#generated\ngroupId=org.apache.commons\nartifactId=commons-lang3\nversion=3.12.0\n",
        }
    )
    jar = parse_jar("opt/app/lib/commons-lang3-3.12.0.jar", data)
    assert jar is not None
    assert (jar.group, jar.name, jar.version) == ("org.apache.commons", "commons-lang3", "3.12.0")
    assert jar.licences == ("Apache-2.0",)


def test_jar_with_a_manifest_only_has_no_group() -> None:
    data = jar_bytes(
        {"META-INF/MANIFEST.MF": "Implementation-Title: tool\nImplementation-Version: 2.1\n"}
    )
    jar = parse_jar("usr/share/java/tool.jar", data)
    assert jar is not None and (jar.group, jar.name, jar.version) == (None, "tool", "2.1")


def test_jar_without_metadata_is_named_by_its_file() -> None:
    jar = parse_jar("app/libs/guava-32.1.2-jre.jar", jar_bytes({"a/B.class": ""}))
    assert jar is not None and (jar.name, jar.version) == ("guava", "32.1.2-jre")


def test_shaded_jar_uses_its_own_pom() -> None:
    pom = "META-INF/maven/{g}/{a}/pom.properties"
    data = jar_bytes(
        {
            pom.format(g="com.acme", a="app"): "groupId=com.acme\nartifactId=app\nversion=1.0\n",
            pom.format(g="org.x", a="dep"): "groupId=org.x\nartifactId=dep\nversion=9\n",
        }
    )
    jar = parse_jar("app-1.0.jar", data)
    assert jar is not None and (jar.group, jar.name, jar.version) == ("com.acme", "app", "1.0")


def test_python_metadata_licence_sources() -> None:
    expression = parse_metadata(b"Name: a\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\n")
    declared = parse_metadata(b"Name: b\nVersion: 2\nLicense: BSD-3-Clause\n")
    classified = parse_metadata(
        b"Name: c\nVersion: 3\nLicense: " + b"x" * 200 + b"\n"
        b"Classifier: License :: OSI Approved :: MIT License\n"
        b"Classifier: Programming Language :: Python\n"
    )
    assert expression is not None and expression.licences == ("MIT OR Apache-2.0",)
    assert declared is not None and declared.licences == ("BSD-3-Clause",)
    assert classified is not None and classified.licences == ("MIT License",)
    assert parse_metadata(b"Summary: no name\n") is None


# --- the layer walk ---------------------------------------------------------------------------


def base_layer() -> bytes:
    return tar_layer(
        {
            "./": None,
            "./etc/": None,
            "./usr/lib/os-release": OS_RELEASE,
            "./etc/os-release": Symlink("../usr/lib/os-release"),
            "./var/lib/dpkg/status": dpkg_status(
                dpkg_entry("perl-base", "5.36.0-7+deb12u1", "perl"),
                dpkg_entry("libc6", "2.36-9+deb12u4", "glibc"),
                dpkg_entry("libc-bin", "2.36-9+deb12u4", "glibc"),
            ),
            "./usr/share/doc/perl-base/copyright": DEP5,
            "./usr/share/doc/libc6/copyright": OLD_STYLE,
            "./usr/share/doc/libc-bin": Symlink("libc6"),
            "./opt/app/lib/tool.jar": jar_bytes(
                {"META-INF/MANIFEST.MF": "Implementation-Title: tool\nImplementation-Version: 1\n"}
            ),
            "./opt/app/old/": None,
            "./opt/app/old/old-1.0.jar": jar_bytes({}),
            "./opt/app/cache/": None,
            "./opt/app/cache/cached-2.0.jar": jar_bytes({}),
            "./srv/thing/": None,
            "./srv/thing/thing-3.jar": jar_bytes({}),
            "./usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nLicense: Apache 2.0\n",
        }
    )


def names(found: Inventory, ecosystem: Ecosystem) -> list[str]:
    return [p.name for p in found.of(ecosystem)]


def test_inventory_of_one_layer(tmp_path: Path) -> None:
    write_layout(tmp_path, [base_layer()])
    found = inventory(tmp_path)
    assert found.distro == BOOKWORM
    assert found.architecture == "amd64"
    assert names(found, Ecosystem.DEB) == ["libc-bin", "libc6", "perl-base"]
    debs = {p.name: p for p in found.of(Ecosystem.DEB)}
    assert debs["perl-base"].licences == ("GPL-1+ or Artistic", "MIT")
    assert debs["libc-bin"].licences == ("LGPL-2.1", "GPL-2")  # through the doc folder link
    assert names(found, Ecosystem.JAVA) == ["cached", "old", "thing", "tool"]
    python = found.of(Ecosystem.PYTHON)
    assert [(p.name, p.version, p.licences, p.path) for p in python] == [
        (
            "requests",
            "2.28.1",
            ("Apache 2.0",),
            "/usr/lib/python3/dist-packages/requests-2.28.1.dist-info",
        )
    ]


def test_whiteouts_hide_files_folders_and_opaque_content(tmp_path: Path) -> None:
    upper = tar_layer(
        {
            "opt/app/lib/.wh.tool.jar": b"",  # one file
            "opt/app/.wh.old": b"",  # a folder and all it holds
            "opt/app/cache/": None,
            "opt/app/cache/.wh..wh..opq": b"",  # the folder emptied, then refilled
            "opt/app/cache/fresh-3.0.jar": jar_bytes({}),
            "srv/thing": b"now a file",  # a file replacing a folder
            "var/lib/dpkg/status": dpkg_status(dpkg_entry("perl-base", "5.36.0-7+deb12u2", "perl")),
        }
    )
    write_layout(tmp_path, [base_layer(), upper])
    found = inventory(tmp_path)
    assert names(found, Ecosystem.JAVA) == ["fresh"]
    assert [(p.name, p.version) for p in found.of(Ecosystem.DEB)] == [
        ("perl-base", "5.36.0-7+deb12u2")
    ]


def test_a_folder_replacing_a_link_hides_the_link(tmp_path: Path) -> None:
    upper = tar_layer({"usr/share/doc/libc-bin/": None})
    write_layout(tmp_path, [base_layer(), upper])
    debs = {p.name: p for p in inventory(tmp_path).of(Ecosystem.DEB)}
    assert debs["libc-bin"].licences == ()


def test_a_deleted_dpkg_database_leaves_no_debian_packages(tmp_path: Path) -> None:
    write_layout(tmp_path, [base_layer(), tar_layer({"var/lib/dpkg/.wh.status": b""})])
    assert inventory(tmp_path).of(Ecosystem.DEB) == ()


def test_distroless_status_d_and_hardlinks(tmp_path: Path) -> None:
    layer = tar_layer(
        {
            "etc/os-release": OS_RELEASE,
            "var/lib/dpkg/status.d/libssl3": dpkg_entry("libssl3", "3.0.11-1~deb12u2", "openssl")
            .replace("Status: install ok installed\n", "")
            .encode(),
            "var/lib/dpkg/status.d/libssl3.md5sums": b"0123 usr/lib/libssl.so.3\n",
            "var/lib/dpkg/status.d/tzdata": dpkg_entry(
                "tzdata", "2024a-0+deb12u1", arch="all"
            ).encode(),
            "usr/share/doc/tzdata/copyright": b"Format: machine-readable copyright-format 1.0 (DEP-5)\n\nFiles: *\nLicense: public-domain\n",
            "usr/share/doc/libssl3/copyright": Hardlink("usr/share/doc/tzdata/copyright"),
        }
    )
    write_layout(tmp_path, [layer], compress=False)
    debs = {p.name: p for p in inventory(tmp_path).of(Ecosystem.DEB)}
    assert debs["libssl3"].source_name == "openssl"
    assert debs["tzdata"].arch == "all"
    assert debs["libssl3"].licences == ("public-domain",)


def test_zstd_layers_are_refused_with_a_hint(tmp_path: Path) -> None:
    write_layout(tmp_path, [b"\x28\xb5\x2f\xfd" + b"\0" * 64], compress=False)
    with pytest.raises(InputError, match="zstd"):
        inventory(tmp_path)


def test_a_corrupt_layer_is_an_input_error(tmp_path: Path) -> None:
    write_layout(tmp_path, [b"\x1f\x8b\x08\x00" + b"garbage" * 20], compress=False)
    with pytest.raises(InputError, match="cannot read the layer"):
        inventory(tmp_path)


def test_an_unreadable_jar_is_a_warning(tmp_path: Path) -> None:
    write_layout(tmp_path, [tar_layer({"app/broken.jar": b"not a zip"})])
    found = inventory(tmp_path)
    assert found.warnings == ("app/broken.jar: not a readable Java archive",)
    assert found.packages == ()


def test_files_over_their_limit_are_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("socle.sbom.contents.TEXT_LIMIT", 64)
    write_layout(tmp_path, [base_layer()])
    found = inventory(tmp_path)
    assert found.distro is None  # os-release is 121 bytes
    assert "usr/lib/os-release: not read, 121 bytes is over the 64-byte limit" in found.warnings


# --- purls and CycloneDX --------------------------------------------------------------------


def deb(name: str, version: str, source: str, source_version: str, arch: str = "amd64") -> Package:
    return Package(Ecosystem.DEB, name, version, source, source_version, arch=arch)


def test_deb_purls_encode_versions_and_name_the_distro() -> None:
    zlib = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1")
    perl = deb("perl-base", "5.36.0-7+deb12u1", "perl", "5.36.0-7+deb12u1")
    tz = deb("tzdata", "2024a-0+deb12u1", "tzdata", "2024a-0+deb12u1", arch="all")
    assert str(purl(zlib, BOOKWORM)) == (
        "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12"
    )
    assert str(purl(perl, BOOKWORM)) == (
        "pkg:deb/debian/perl-base@5.36.0-7%2Bdeb12u1?arch=amd64&distro=debian-12"
    )
    assert str(purl(tz, None)) == "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all"
    assert str(source_purl(perl, BOOKWORM)) == (
        "pkg:deb/debian/perl@5.36.0-7%2Bdeb12u1?arch=source&distro=debian-12"
    )


def test_java_and_python_purls() -> None:
    maven = Package(Ecosystem.JAVA, "commons-lang3", "3.12.0", "", "", group="org.apache.commons")
    plain = Package(Ecosystem.JAVA, "tool", "2.1", "", "")
    wheel = Package(Ecosystem.PYTHON, "Typing_Extensions", "4.9.0", "", "")
    assert str(purl(maven, None)) == "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
    assert str(purl(plain, None)) == "pkg:generic/tool@2.1"
    assert str(purl(wheel, None)) == "pkg:pypi/typing-extensions@4.9.0"


def test_image_purl_names_repository_tag_and_arch() -> None:
    assert str(image_purl("127.0.0.1:5000/my/java:17-debian12", DIGEST, "amd64")) == (
        f"pkg:oci/java@{DIGEST}?arch=amd64&repository_url=127.0.0.1:5000/my/java&tag=17-debian12"
    )


def sbom_of(tmp_path: Path) -> dict[str, object]:
    write_layout(tmp_path, [base_layer()])
    text = to_cyclonedx(inventory(tmp_path), "127.0.0.1:5000/my/base:12", DIGEST)
    problem = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert problem is None, problem
    doc: dict[str, object] = json.loads(text)
    return doc


def test_cyclonedx_output_validates_and_describes_the_image(tmp_path: Path) -> None:
    doc = sbom_of(tmp_path)
    assert doc["specVersion"] == "1.6"
    metadata = doc["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["component"]["type"] == "container"
    assert metadata["component"]["purl"].startswith(f"pkg:oci/base@{DIGEST}?")
    components = doc["components"]
    assert isinstance(components, list)
    kinds = {c["type"] for c in components}
    assert kinds == {"operating-system", "library"}


def test_cyclonedx_components_carry_licences_and_source_packages(tmp_path: Path) -> None:
    components = sbom_of(tmp_path)["components"]
    assert isinstance(components, list)
    by_name = {c["name"]: c for c in components}
    perl = by_name["perl-base"]
    properties = {p["name"]: p["value"] for p in perl["properties"]}
    assert properties["socle:deb:source_name"] == "perl"
    assert properties["socle:deb:source_purl"].startswith("pkg:deb/debian/perl@")
    licences = [entry["license"] for entry in perl["licenses"]]
    assert sorted(licences, key=str) == [{"id": "MIT"}, {"name": "GPL-1+ or Artistic"}]
    requests = by_name["requests"]
    assert requests["purl"] == "pkg:pypi/requests@2.28.1"
    assert requests["evidence"]["occurrences"][0]["location"].endswith(".dist-info")
