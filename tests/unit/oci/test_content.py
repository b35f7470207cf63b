from __future__ import annotations

import json

import pytest

from socle.canonical import canonical_json, sha256_digest
from socle.oci.content import Descriptor, Manifest, Platform, with_annotations
from socle.oci.errors import InvalidManifest
from socle.oci.media import OCI_INDEX, OCI_MANIFEST


def index_of(*platforms: str) -> Manifest:
    entries = [
        Descriptor(OCI_MANIFEST, "sha256:" + f"{i:064x}", 100 + i, platform=Platform.parse(p)).to_json()
        for i, p in enumerate(platforms)
    ]
    return Manifest.of(canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))


def test_platforms_parse_print_and_match() -> None:
    arm = Platform.parse("linux/arm64/v8")
    assert (arm.os, arm.architecture, arm.variant) == ("linux", "arm64", "v8")
    assert str(arm) == "linux/arm64/v8"
    assert arm.satisfies(Platform.parse("linux/arm64"))  # no variant asked: any variant
    assert not arm.satisfies(Platform.parse("linux/amd64"))
    assert not Platform.parse("linux/arm/v7").satisfies(Platform.parse("linux/arm/v6"))


def test_an_index_yields_the_manifest_of_the_wanted_platform() -> None:
    index = index_of("linux/amd64", "linux/arm64/v8")
    assert index.is_index
    chosen = index.for_platform(Platform.parse("linux/arm64"))
    assert chosen is not None and chosen.size == 101
    assert chosen.platform == Platform("linux", "arm64", "v8")
    assert index.for_platform(Platform.parse("linux/s390x")) is None


def test_descriptors_round_trip_with_platform_and_annotations() -> None:
    original = Descriptor(
        OCI_MANIFEST, "sha256:" + "a" * 64, 7, {"org.opencontainers.image.ref.name": "12"},
        Platform("linux", "amd64"),
    )
    again = Descriptor.from_json(json.loads(json.dumps(original.to_json())))
    assert again == original
    assert again.annotations == original.annotations
    assert "platform" not in Descriptor(OCI_MANIFEST, original.digest, 7).to_json()


def test_re_annotating_is_canonical_and_changes_the_digest() -> None:
    manifest = Manifest.of(b'{"schemaVersion":2,"mediaType":"%s","layers":[]}' % OCI_MANIFEST.encode())
    annotated = with_annotations(manifest, {"b": "2", "a": "1"})
    assert annotated.digest == sha256_digest(annotated.data) != manifest.digest
    assert annotated.data == canonical_json(json.loads(annotated.data))
    assert with_annotations(manifest, {"a": "1", "b": "2"}).digest == annotated.digest


def test_a_manifest_that_is_not_json_is_named_by_digest() -> None:
    broken = Manifest("", sha256_digest(b"nope"), b"nope")
    with pytest.raises(InvalidManifest, match=broken.digest):
        broken.json()
