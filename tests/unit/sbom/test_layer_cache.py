"""The layer cache: a child image reads only its own layers, and finds what it found uncached."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from socle.errors import InputError
from socle.gates import SbomGate, Subject
from socle.sbom import inventory, to_cyclonedx
from socle.sbom.cache import LayerCache
from socle.sbom.contents import ImageProbe, read
from socle.validate import validate
from tests.conftest import CatalogWriter
from tests.unit.sbom.test_sbom import (
    DEP5,
    OLD_STYLE,
    OS_RELEASE,
    Hardlink,
    Member,
    Symlink,
    dpkg_entry,
    dpkg_status,
    jar_bytes,
    tar_layer,
    write_layout,
)

POM = "META-INF/maven/org.example/{0}/pom.properties"
REF = "127.0.0.1:5000/my/app:1.0"
DIGEST = "sha256:" + "cd" * 32


def jar(name: str, version: str) -> bytes:
    pom = f"groupId=org.example\nartifactId={name}\nversion={version}\n"
    return jar_bytes({"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n", POM.format(name): pom})


def metadata(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: MIT\n".encode()


BASE: dict[str, Member] = {
    "etc/": None,
    "etc/os-release": Symlink("../usr/lib/os-release"),
    "usr/lib/os-release": OS_RELEASE,
    "var/lib/dpkg/status": dpkg_status(
        dpkg_entry("libc6", "2.36-9", source="glibc"),
        dpkg_entry("perl-base", "5.36.0-7"),
        dpkg_entry("oldlib", "1.0"),
    ),
    "usr/share/doc/libc6/copyright": OLD_STYLE,
    "usr/share/doc/perl-base/copyright": DEP5,
    "usr/share/doc/oldlib/copyright": OLD_STYLE,
    "opt/app/lib/gone-1.0.jar": jar("gone", "1.0"),
    "opt/app/lib/kept-2.0.jar": jar("kept", "2.0"),
    "opt/app/plugins/": None,
    "opt/app/plugins/p.jar": jar("plugin", "0.1"),
    "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA": metadata("six", "1.16.0"),
    "usr/lib/python3/dist-packages/old-1.0.dist-info/METADATA": metadata("old", "1.0"),
    "srv/status-copy": b"not wanted",
}
# The parent's top: a new dpkg database, whiteouts, an opaque folder, a file over a folder,
# a hard link to a file of the layer below.
UPDATE: dict[str, Member] = {
    "var/lib/dpkg/status": dpkg_status(
        dpkg_entry("libc6", "2.36-9+deb12u4", source="glibc"),
        dpkg_entry("perl-base", "5.36.0-7"),
        dpkg_entry("openjdk-17-jre-headless", "17.0.12+7-2~deb12u1", source="openjdk-17"),
    ),
    "usr/share/doc/.wh.oldlib": b"",
    "usr/share/doc/openjdk-17-jre-headless": Symlink("libc6"),
    "opt/app/lib/.wh.gone-1.0.jar": b"",
    "opt/app/plugins": b"a file where the folder was",
    "usr/lib/python3/dist-packages/.wh..wh..opq": b"",
    "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA": metadata("six", "1.17.0"),
    "opt/app/lib/linked-2.0.jar": Hardlink("opt/app/lib/kept-2.0.jar"),
}
# The child's own layer: the dpkg database deleted and put back, a folder over a file.
CHILD: dict[str, Member] = {
    "var/lib/dpkg/.wh.status": b"",
    "var/lib/dpkg/status": dpkg_status(
        dpkg_entry("libc6", "2.36-9+deb12u4", source="glibc"),
        dpkg_entry("tomcat10", "10.1.6-1"),
    ),
    "opt/app/plugins/": None,
    "opt/app/plugins/q.jar": jar("plugin-q", "0.2"),
    "webapps/ROOT.war": jar("root", "1.0"),
    "webapps/copy.war": Hardlink("opt/app/lib/kept-2.0.jar"),
}


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    """A parent (two layers) and its child (the same two layers and one of its own)."""
    parent, child = tmp_path / "parent", tmp_path / "child"
    layers = [tar_layer(BASE), tar_layer(UPDATE)]
    write_layout(parent, layers)
    write_layout(child, [*layers, tar_layer(CHILD)])
    return parent, child


def document(sbom: str) -> dict[str, object]:
    """A CycloneDX document without what differs on every rendering (serial number, time)."""
    doc = json.loads(sbom)
    doc.pop("serialNumber")
    doc["metadata"].pop("timestamp")
    return doc


def test_a_child_reads_only_its_own_layers_and_finds_the_same(
    images: tuple[Path, Path], tmp_path: Path
) -> None:
    parent, child = images
    uncached_parent, uncached_child = inventory(parent), inventory(child)
    cache = LayerCache(tmp_path / "cache")

    cold = read(parent, cache)
    warm = read(child, cache)

    assert (cold.layers, cold.cached) == (2, 0)
    assert (warm.layers, warm.cached) == (3, 2)
    assert cold.inventory == uncached_parent
    assert warm.inventory == uncached_child
    assert document(to_cyclonedx(warm.inventory, REF, DIGEST)) == document(
        to_cyclonedx(uncached_child, REF, DIGEST)
    )
    again = read(child, cache)
    assert (again.cached, again.inventory) == (3, uncached_child)


def test_the_cached_child_sees_every_overwrite_and_whiteout(
    images: tuple[Path, Path], tmp_path: Path
) -> None:
    parent, child = images
    cache = LayerCache(tmp_path / "cache")
    read(parent, cache)
    found = read(child, cache).inventory
    names = {(p.ecosystem.value, p.name, p.version, p.path) for p in found.packages}

    assert names == {
        ("deb", "libc6", "2.36-9+deb12u4", None),
        ("deb", "tomcat10", "10.1.6-1", None),
        ("java", "kept", "2.0", "/opt/app/lib/kept-2.0.jar"),
        ("java", "kept", "2.0", "/opt/app/lib/linked-2.0.jar"),
        ("java", "kept", "2.0", "/webapps/copy.war"),
        ("java", "plugin-q", "0.2", "/opt/app/plugins/q.jar"),
        ("java", "root", "1.0", "/webapps/ROOT.war"),
        ("python", "six", "1.17.0", "/usr/lib/python3/dist-packages/six-1.16.0.dist-info"),
    }
    assert found.distro is not None and found.distro.version_id == "12"
    libc6 = next(p for p in found.packages if p.name == "libc6")
    assert libc6.licences == ("LGPL-2.1", "GPL-2")


def test_cached_layers_are_not_read_again(images: tuple[Path, Path], tmp_path: Path) -> None:
    parent, child = images
    cache = LayerCache(tmp_path / "cache")
    expected = read(parent, cache).inventory
    for blob in (parent / "blobs" / "sha256").iterdir():
        if blob.stat().st_size > 1000:  # the layers, not the manifest or the config
            blob.write_bytes(b"not a tar any more")

    assert read(parent, cache).inventory == expected
    with pytest.raises(InputError, match="cannot read the layer"):
        inventory(parent)


def test_entries_are_keyed_by_digest_and_parser_version(
    images: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, _ = images
    cache = LayerCache(tmp_path / "cache")
    read(parent, cache)
    version = ImageProbe().version
    entries = sorted((tmp_path / "cache" / version / "sha256").glob("*.json"))
    manifest = json.loads((parent / "index.json").read_text())["manifests"][0]["digest"]
    layers = json.loads((parent / "blobs" / "sha256" / manifest.split(":")[1]).read_text())
    assert [e.stem for e in entries] == sorted(
        str(layer["digest"]).split(":")[1] for layer in layers["layers"]
    )

    monkeypatch.setattr(ImageProbe, "version", property(lambda self: "p-a-newer-parser"))
    assert read(parent, cache).cached == 0
    assert len(list((tmp_path / "cache" / "p-a-newer-parser" / "sha256").glob("*.json"))) == 2


def test_a_torn_entry_is_read_from_the_layer_again(
    images: tuple[Path, Path], tmp_path: Path
) -> None:
    parent, _ = images
    cache = LayerCache(tmp_path / "cache")
    expected = read(parent, cache).inventory
    entries = list((tmp_path / "cache").rglob("*.json"))
    entries[0].write_text('{"format": 1, "added": ')
    entries[1].write_text(json.dumps({**json.loads(entries[1].read_text()), "added": {"x": 1}}))

    reading = read(parent, cache)

    assert (reading.cached, reading.inventory) == (0, expected)
    assert read(parent, cache).cached == 2  # and written again


def test_an_unwritable_cache_costs_time_not_the_inventory(
    images: tuple[Path, Path], tmp_path: Path
) -> None:
    parent, _ = images
    (tmp_path / "cache").write_text("a file where the cache folder should be")

    reading = read(parent, LayerCache(tmp_path / "cache"))

    assert (reading.cached, reading.inventory) == (0, inventory(parent))


def test_the_sbom_gate_says_how_many_layers_came_cached(
    images: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_catalog: CatalogWriter,
) -> None:
    parent, child = images
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    gate = SbomGate()  # the default cache: socle's data folder
    catalog = """\
        registry: 127.0.0.1:5000
        images:
          app:
            upstream: 127.0.0.1:5000/up/app
            versions: {"1": {digest: "sha256:%s"}}
        """ % ("ab" * 32)
    variant = validate(write_catalog(catalog))[1].variants[0]

    gate.check(Subject(variant, parent, "parent", lambda: None))
    subject = Subject(variant, child, "child", lambda: None)
    gate.check(subject)

    assert subject.notes == ["sbom: 8 packages (2 of 3 layers cached)"]
    assert subject.inventory == inventory(child)
    assert (tmp_path / "data" / "socle" / "cache" / "sbom-layers").is_dir()
    shutil.rmtree(tmp_path / "data")
    subject = Subject(variant, child, "child", lambda: None)
    gate.check(subject)
    assert subject.notes == ["sbom: 8 packages (0 of 3 layers cached)"]


# --- keyed by diff_id: the same content compressed again -------------------------------------


def write_image(
    root: Path, layers: list[bytes], *, mtime: int, diff_ids: list[str] | None = None
) -> None:
    """An OCI layout whose config names the layers' diff_ids; `mtime` changes the gzip bytes."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    kind = "application/vnd.oci.image.layer.v1.tar+gzip"
    descs = [blob(gzip.compress(layer, mtime=mtime), kind) for layer in layers]
    if diff_ids is None:
        diff_ids = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
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


def test_a_parent_layer_compressed_again_is_still_found(tmp_path: Path) -> None:
    base, update, own = tar_layer(BASE), tar_layer(UPDATE), tar_layer(CHILD)
    write_image(tmp_path / "parent", [base, update], mtime=1)
    write_image(tmp_path / "child", [base, update, own], mtime=2)  # as buildah pushes a child
    cache = LayerCache(tmp_path / "cache")
    read(tmp_path / "parent", cache)

    warm = read(tmp_path / "child", cache)

    assert (warm.layers, warm.cached) == (3, 2)
    assert warm.inventory == inventory(tmp_path / "child")


def test_a_config_naming_another_layer_neither_fools_nor_poisons_the_cache(
    tmp_path: Path,
) -> None:
    base, update = tar_layer(BASE), tar_layer(UPDATE)
    base_id = f"sha256:{hashlib.sha256(base).hexdigest()}"
    # a layer whose config claims it is the base layer: read for what it is, and not kept
    write_image(tmp_path / "liar", [update], mtime=1, diff_ids=[base_id])
    write_image(tmp_path / "honest", [base], mtime=1)
    cache = LayerCache(tmp_path / "cache")

    lying = read(tmp_path / "liar", cache)
    assert lying.inventory == inventory(tmp_path / "liar")
    assert read(tmp_path / "liar", cache).cached == 0
    honest = read(tmp_path / "honest", cache)
    assert (honest.cached, honest.inventory) == (0, inventory(tmp_path / "honest"))
    assert read(tmp_path / "honest", cache).cached == 1
