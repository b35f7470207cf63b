"""The registry client against a real CNCF distribution registry, checked with skopeo."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from socle.oci.content import Manifest
from socle.oci.media import DOCKER_MANIFEST, OCI_INDEX
from socle.oci.reference import Reference
from socle.process import run
from socle.registry.client import RegistryClient
from socle.registry.errors import RegistryUnreachable
from tests.integration.conftest import LocalRegistry, free_port
from tests.unit.registry.registry_images import (
    TinyImage,
    digest_of,
    index_of,
    tiny_image,
    write_layout,
)

pytestmark = pytest.mark.integration

_ACCESS = re.compile(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')


@pytest.fixture(scope="module")
def client() -> Iterator[RegistryClient]:
    with RegistryClient(retries=1, backoff=0.05) as shared:
        yield shared


class AccessLog:
    """The registry's access log lines written since this object was made."""

    def __init__(self, registry: LocalRegistry) -> None:
        self.registry = registry
        self.start = len(registry.log())

    def requests(self, repository: str) -> list[tuple[str, str, int]]:
        """(method, uri, status) of the requests to `repository` since the start."""
        found = []
        for method, uri, status in _ACCESS.findall(self.registry.log()[self.start :]):
            if uri.startswith(f"/v2/{repository}/"):
                found.append((method, uri, int(status)))
        return found


def ref(registry: LocalRegistry, text: str) -> Reference:
    return Reference.parse(f"{registry.host}/{text}")


def push(client: RegistryClient, target: Reference, image: TinyImage) -> str:
    for digest, data in image.blobs.items():
        client.upload_blob(target, digest, data)
    return client.put_manifest(target, image.manifest, image.media_type)


def skopeo_digest(target: Reference) -> str:
    out = run(["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"], timeout=60).stdout
    return str(json.loads(out)["Digest"])


def test_oci_manifest_round_trip_by_tag_and_digest(
    registry: LocalRegistry, client: RegistryClient
) -> None:
    image = tiny_image("oci round trip")
    target = ref(registry, "it/oci:1")
    assert push(client, target, image) == image.digest

    by_tag = client.get_manifest(target)
    assert by_tag.data == image.manifest
    by_digest = RegistryClient().get_manifest(target.with_digest(image.digest))  # no cache
    assert by_digest == by_tag == Manifest(image.media_type, image.digest, image.manifest)
    head = client.head_manifest(target)
    assert head is not None and (head.digest, head.size) == (image.digest, len(image.manifest))
    assert client.get_blob(target, digest_of(image.layer)) == image.layer
    assert skopeo_digest(target) == image.digest


def test_docker_v2_manifest_keeps_its_digest_by_tag(
    registry: LocalRegistry, client: RegistryClient
) -> None:
    image = tiny_image("docker v2", DOCKER_MANIFEST)
    target = ref(registry, "it/docker:1")
    push(client, target, image)
    fetched = client.get_manifest(target)
    assert (fetched.media_type, fetched.digest, fetched.data) == (
        DOCKER_MANIFEST,
        image.digest,
        image.manifest,
    )
    assert skopeo_digest(target) == image.digest


def test_push_layout_with_annotations(
    registry: LocalRegistry, client: RegistryClient, tmp_path: Path
) -> None:
    image = tiny_image("from a layout")
    layout = write_layout(tmp_path / "layout", image)
    annotations = {"org.opencontainers.image.base.digest": image.digest}
    log = AccessLog(registry)

    pushed = client.push_layout(layout, ref(registry, "it/layout"), annotations=annotations)

    assert pushed.json()["annotations"] == annotations
    assert client.get_manifest(ref(registry, "it/layout").with_digest(pushed.digest)) == pushed
    assert client.list_tags(ref(registry, "it/layout")) == []  # pushed by digest only
    uploads = [r for r in log.requests("it/layout") if r[0] == "PUT" and "/blobs/uploads/" in r[1]]
    assert len(uploads) == 2

    client.tag(ref(registry, "it/layout").with_digest(pushed.digest), "1")
    assert skopeo_digest(ref(registry, "it/layout:1")) == pushed.digest

    log = AccessLog(registry)
    client.push_layout(layout, ref(registry, "it/layout-sibling"), mount_from=["it/layout"])
    sibling = log.requests("it/layout-sibling")
    assert [s for m, u, s in sibling if m == "POST" and "mount=" in u] == [201, 201]
    assert not [u for m, u, _ in sibling if m == "PUT" and "/blobs/" in u]


def test_retagging_50_times_moves_no_blob(registry: LocalRegistry, client: RegistryClient) -> None:
    image = tiny_image("retag me")
    pinned = ref(registry, "it/retag").with_digest(push(client, ref(registry, "it/retag:0"), image))
    log = AccessLog(registry)

    for number in range(1, 51):
        assert client.tag(pinned, f"t{number}") == image.digest

    requests = log.requests("it/retag")
    assert not [r for r in requests if r[0] == "POST" and "/blobs/uploads/" in r[1]]
    assert not [r for r in requests if "/blobs/" in r[1]]
    assert len([r for r in requests if r[0] == "PUT" and "/manifests/t" in r[1]]) == 50
    assert len([r for r in requests if r[0] == "GET"]) <= 1
    tags = client.list_tags(pinned)
    assert set(tags) == {"0"} | {f"t{n}" for n in range(1, 51)}


def test_list_tags_returns_every_tag_sorted(
    registry: LocalRegistry, client: RegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """distribution 2.8 ignores `n` and answers in storage order; Link paging is unit-tested."""
    image = tiny_image("paged")
    pinned = ref(registry, "it/paged").with_digest(
        push(client, ref(registry, "it/paged:t00"), image)
    )
    expected = [f"t{n:02}" for n in range(23)]
    for tag in expected[1:]:
        client.tag(pinned, tag)
    monkeypatch.setattr("socle.registry.client.TAGS_PAGE_SIZE", 4)
    assert client.list_tags(pinned) == expected


def test_cross_repository_copy_mounts(registry: LocalRegistry, client: RegistryClient) -> None:
    images = [tiny_image("amd64 side"), tiny_image("arm64 side", architecture="arm64")]
    for number, image in enumerate(images):
        push(client, ref(registry, f"it/staging:p{number}"), image)
    index = index_of(images)
    index_digest = client.put_manifest(ref(registry, "it/staging:multi"), index, OCI_INDEX)
    log = AccessLog(registry)

    copied = client.copy(ref(registry, "it/staging:multi"), ref(registry, "it/release:multi"))

    assert copied.digest == index_digest
    release = log.requests("it/release")
    mounts = [
        s for m, u, s in release if m == "POST" and "mount=" in u and "from=it%2Fstaging" in u
    ]
    assert mounts == [201] * 4
    assert not [u for m, u, _ in release if m == "PUT" and "/blobs/" in u]
    assert not [u for m, u, _ in log.requests("it/staging") if m == "GET" and "/blobs/" in u]
    for image in images:
        assert (
            client.head_manifest(ref(registry, "it/release").with_digest(image.digest)) is not None
        )
    assert skopeo_digest(ref(registry, "it/release:multi")) == index_digest


def test_copy_between_registry_names_streams_the_blobs(
    registry: LocalRegistry, client: RegistryClient
) -> None:
    """`localhost:PORT` and `127.0.0.1:PORT` are two registries to the client: no mount, a stream."""
    image = tiny_image("streamed")
    push(client, ref(registry, "it/origin:1"), image)
    other = Reference.parse(f"localhost:{registry.port}/it/mirror:1")
    log = AccessLog(registry)

    copied = client.copy(ref(registry, "it/origin:1"), other)

    assert copied.digest == image.digest
    mirror = log.requests("it/mirror")
    assert not [u for m, u, _ in mirror if "mount=" in u]
    assert len([u for m, u, s in mirror if m == "PUT" and "/blobs/uploads/" in u and s == 201]) == 2
    assert len([u for m, u, _ in log.requests("it/origin") if m == "GET" and "/blobs/" in u]) == 2
    assert client.get_manifest(other).data == image.manifest


def test_delete_manifest(registry: LocalRegistry, client: RegistryClient) -> None:
    target = ref(registry, "it/delete:1")
    push(client, target, tiny_image("to delete"))
    client.delete_manifest(target)
    assert client.head_manifest(target) is None


def test_shared_client_from_many_threads(registry: LocalRegistry, client: RegistryClient) -> None:
    image = tiny_image("threads")
    target = ref(registry, "it/threads:1")
    push(client, target, image)
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda _: client.head_manifest(target), range(200)))
    assert {d.digest for d in found if d is not None} == {image.digest}
    assert None not in found


def test_unreachable_port_is_registry_unreachable() -> None:
    target = Reference.parse(f"127.0.0.1:{free_port()}/it/nothing:1")
    with (
        RegistryClient(retries=1, backoff=0.01) as client,
        pytest.raises(RegistryUnreachable) as info,
    ):
        client.head_manifest(target)
    assert f"http://{target.registry}/v2/it/nothing/manifests/1" in info.value.message
    assert "socle up" in (info.value.hint or "")
