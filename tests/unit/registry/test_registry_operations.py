"""Manifest, blob and tag operations against the in-memory registry."""

from __future__ import annotations

import json

import httpx
import pytest

from socle.errors import InputError
from socle.oci.errors import DigestMismatch, InvalidManifest
from socle.oci.media import DOCKER_MANIFEST, MANIFEST_TYPES, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.registry.errors import ManifestNotFound
from socle.registry.session import is_loopback
from tests.unit.registry.registry_fakes import HOST, FakeRegistry, MakeClient, digest_of

REF = Reference.parse(f"{HOST}/os/debian:12")
CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"not really a tar"


def push_image(fake: FakeRegistry, media_type: str = OCI_MANIFEST, tag: str = "12") -> bytes:
    """Store blobs and a manifest straight into the fake; returns the manifest bytes."""
    repo = fake.repo("os/debian")
    repo.blobs.update({digest_of(CONFIG): CONFIG, digest_of(LAYER): LAYER})
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": "x/config", "digest": digest_of(CONFIG), "size": len(CONFIG)},
        "layers": [{"mediaType": "x/layer", "digest": digest_of(LAYER), "size": len(LAYER)}],
    }
    data = json.dumps(doc, indent=3).encode()
    repo.manifests[digest_of(data)] = (media_type, data)
    repo.tags[tag] = digest_of(data)
    return data


def test_every_manifest_request_accepts_the_four_types(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    data = push_image(fake)
    client = make_client(fake)
    client.head_manifest(REF)
    client.get_manifest(REF)
    make_client(fake).get_manifest(REF.with_digest(digest_of(data)))  # a fresh, empty cache
    client.delete_manifest(REF)
    manifest_requests = fake.seen("HEAD", "/manifests/") + fake.seen("GET", "/manifests/")
    assert len(manifest_requests) == 4
    for request in manifest_requests:
        accepted = {t.strip() for t in request.headers["Accept"].split(",")}
        assert accepted == set(MANIFEST_TYPES)


def test_head_manifest(make_client: MakeClient, fake: FakeRegistry) -> None:
    data = push_image(fake, DOCKER_MANIFEST)
    client = make_client(fake)
    found = client.head_manifest(REF)
    assert found is not None
    assert (found.media_type, found.digest) == (DOCKER_MANIFEST, digest_of(data))
    assert client.head_manifest(REF.with_tag("absent")) is None


def test_get_manifest_is_byte_exact(make_client: MakeClient, fake: FakeRegistry) -> None:
    data = push_image(fake)
    manifest = make_client(fake).get_manifest(REF)
    assert manifest.data == data
    assert manifest.digest == digest_of(data)
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.json()["layers"][0]["digest"] == digest_of(LAYER)


def test_missing_manifest(make_client: MakeClient, fake: FakeRegistry) -> None:
    with pytest.raises(ManifestNotFound) as info:
        make_client(fake).get_manifest(REF)
    assert str(REF) in info.value.message


def test_manifest_fetched_by_digest_is_verified(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    data = push_image(fake)
    wanted = digest_of(data)

    def tampering(request: httpx.Request) -> httpx.Response:
        answer = fake(request)
        headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": wanted}
        return httpx.Response(answer.status_code, headers=headers, content=data + b" ")

    with pytest.raises(DigestMismatch):
        make_client(tampering).get_manifest(REF.with_digest(wanted))


def test_put_manifest_sends_its_media_type_and_returns_the_digest(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    data = push_image(fake)
    client = make_client(fake)
    assert client.put_manifest(REF.with_tag("13"), data, OCI_MANIFEST) == digest_of(data)
    assert fake.seen("PUT")[-1].headers["Content-Type"] == OCI_MANIFEST
    assert fake.repo("os/debian").tags["13"] == digest_of(data)
    with pytest.raises(InputError, match="not the"):
        client.put_manifest(REF.with_digest(digest_of(b"other")), data, OCI_MANIFEST)
    with pytest.raises(InputError, match="neither a tag nor a digest"):
        client.put_manifest(Reference(HOST, "os/debian"), data, OCI_MANIFEST)


def test_tagging_again_costs_one_put(make_client: MakeClient, fake: FakeRegistry) -> None:
    data = push_image(fake)
    client = make_client(fake)
    pinned = REF.with_digest(digest_of(data))
    for number in range(5):
        assert client.tag(pinned, f"t{number}") == digest_of(data)
    assert len(fake.seen("GET", "/manifests/")) == 1
    assert len(fake.seen("PUT", "/manifests/")) == 5
    assert not fake.seen("POST")
    with pytest.raises(InputError, match="by digest"):
        client.tag(REF, "x")


def test_list_tags_follows_link_pagination(
    make_client: MakeClient, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_image(fake)
    fake.repo("os/debian").tags.update({f"v{n}": "sha256:x" for n in range(7)})
    fake.page_size = 3
    monkeypatch.setattr("socle.registry.client.TAGS_PAGE_SIZE", 3)
    assert make_client(fake).list_tags(REF) == ["12"] + [f"v{n}" for n in range(7)]
    assert len(fake.seen("GET", "/tags/list")) == 3
    assert make_client(fake).list_tags(Reference.parse(f"{HOST}/unknown/repo")) == []


def test_delete_manifest_by_tag_resolves_the_digest(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    data = push_image(fake)
    client = make_client(fake)
    client.delete_manifest(REF)
    assert fake.seen("DELETE")[-1].url.path.endswith(digest_of(data))
    assert client.head_manifest(REF) is None
    with pytest.raises(ManifestNotFound):
        client.delete_manifest(REF)


def test_blobs(make_client: MakeClient, fake: FakeRegistry) -> None:
    client = make_client(fake)
    assert not client.blob_exists(REF, digest_of(b"abc"))
    client.upload_blob(REF, digest_of(b"abc"), b"abc")
    assert client.blob_exists(REF, digest_of(b"abc"))
    assert client.get_blob(REF, digest_of(b"abc")) == b"abc"
    post, put = fake.seen("POST")[0], fake.seen("PUT")[0]
    assert post.url.path == "/v2/os/debian/blobs/uploads/"
    assert put.url.params["_state"] and put.url.params["digest"] == digest_of(b"abc")


def test_mount_201_means_mounted(make_client: MakeClient, fake: FakeRegistry) -> None:
    fake.repo("os/base").blobs[digest_of(LAYER)] = LAYER
    client = make_client(fake)
    assert client.mount_blob(REF, digest_of(LAYER), "os/base")
    assert fake.repo("os/debian").blobs[digest_of(LAYER)] == LAYER
    assert len(fake.requests) == 1


def test_mount_202_is_declined_and_the_upload_cancelled(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    assert not make_client(fake).mount_blob(REF, digest_of(LAYER), "os/base")
    assert [r.method for r in fake.requests] == ["POST", "DELETE"]
    assert not fake.uploads


def test_ensure_blob_uploads_into_the_declined_mount(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    client = make_client(fake)
    assert client.ensure_blob(REF, digest_of(LAYER), LAYER, mount_from=["os/base"])
    assert [r.method for r in fake.requests] == ["HEAD", "POST", "PUT"]
    assert fake.requests[1].url.params["mount"] == digest_of(LAYER)
    assert fake.repo("os/debian").blobs[digest_of(LAYER)] == LAYER


def test_ensure_blob_tries_each_source_then_mounts(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    fake.repo("os/second").blobs[digest_of(LAYER)] = LAYER
    client = make_client(fake)
    sources = ["os/debian", "os/first", "os/second"]
    assert not client.ensure_blob(REF, digest_of(LAYER), LAYER, mount_from=sources)
    assert [r.method for r in fake.requests] == ["HEAD", "POST", "DELETE", "POST"]
    assert not fake.seen("PUT")


def test_ensure_blob_present_costs_one_head(make_client: MakeClient, fake: FakeRegistry) -> None:
    fake.repo("os/debian").blobs[digest_of(LAYER)] = LAYER
    assert not make_client(fake).ensure_blob(REF, digest_of(LAYER), LAYER, mount_from=["os/base"])
    assert [r.method for r in fake.requests] == ["HEAD"]


def test_bad_digest_argument_is_input_error(make_client: MakeClient, fake: FakeRegistry) -> None:
    with pytest.raises(InputError, match="invalid digest"):
        make_client(fake).blob_exists(REF, "sha256:nothex")


def test_get_blob_is_verified(make_client: MakeClient) -> None:
    client = make_client(lambda request: httpx.Response(200, content=b"evil"))
    with pytest.raises(DigestMismatch):
        client.get_blob(REF, digest_of(b"good"))


def test_scheme_plain_http_only_for_loopback_and_insecure(make_client: MakeClient) -> None:
    urls: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(404)

    client = make_client(record, insecure={"registry.lan:5000"})
    for text in [
        "localhost:5000/a",
        "127.1.2.3/a",
        "[::1]:5000/a",
        "registry.lan:5000/a",
        "registry.lan/a",
    ]:
        client.head_manifest(Reference.parse(text + ":t"))
    assert [u.split("://")[0] for u in urls] == ["http", "http", "http", "http", "https"]
    assert not is_loopback("127.example:5000")


def test_context_manager_closes(fake: FakeRegistry) -> None:
    with RegistryClient(transport=httpx.MockTransport(fake)) as client:
        client.head_manifest(REF)
    with pytest.raises(RuntimeError):
        client.head_manifest(REF)


def test_head_without_digest_header_falls_back_to_get(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    data = push_image(fake)

    def no_digest_header(request: httpx.Request) -> httpx.Response:
        answer = fake(request)
        answer.headers.pop("Docker-Content-Digest", None)
        return answer

    found = make_client(no_digest_header).head_manifest(REF)
    assert found is not None and found.digest == digest_of(data)


def test_garbage_manifest_is_invalid_manifest(make_client: MakeClient, fake: FakeRegistry) -> None:
    garbage = (
        b'{"mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [{"size": 1}]}'
    )
    fake.repo("os/debian").manifests[digest_of(garbage)] = (OCI_MANIFEST, garbage)
    fake.repo("os/debian").tags["bad"] = digest_of(garbage)
    client = make_client(fake)
    with pytest.raises(InvalidManifest, match="bad descriptor"):
        client.copy(REF.with_tag("bad"), Reference.parse(f"{HOST}/os/copy"))
