"""Fuzz OCI manifests and indexes as a registry serves them.

Two levels: the content model (`socle.oci.content`) on any bytes, and the
registry client and the published state reading a registry whose answers
(body, Content-Type, Docker-Content-Digest, Content-Length) are fuzzed. The
property: a value, or socle's error; nothing else reaches the user.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from socle.core.state import FINGERPRINT, INPUTS
from socle.oci.content import Descriptor, Manifest, Platform, with_annotations
from socle.oci.media import CREATED, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.registry.errors import RegistryFailure
from socle.registry.state import RegistryState
from tests.unit.fuzz.mutations import FUZZ, json_bytes, refuses_cleanly

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
IMAGE: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 10},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 20}],
    "annotations": {
        FINGERPRINT: D3,
        INPUTS: json.dumps({"dockerfile": D1}),
        CREATED: "2026-01-01T00:00:00Z",
    },
}
INDEX: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": OCI_INDEX,
    "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": D1, "size": 100, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": D2, "size": 100, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ],
    "annotations": {FINGERPRINT: D3},
}
MEDIA_TYPES = st.sampled_from(["", OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST, "application/json"])
DOCUMENTS = st.one_of(json_bytes(IMAGE), json_bytes(INDEX))
HOST = "127.0.0.1:5000"


def use(manifest: Manifest) -> None:
    """What socle does with a manifest it fetched: children, blobs, a platform, annotations."""
    for descriptor in (*manifest.children(), *manifest.blobs()):
        json.dumps(descriptor.to_json())
    manifest.for_platform(Platform("linux", "amd64"))
    with_annotations(manifest, {"a": "b"})


@FUZZ
@given(DOCUMENTS, MEDIA_TYPES)
@example(b'{"mediaType": "' + OCI_MANIFEST.encode() + b'", "layers": 1}', "")  # TypeError: list(1)
@example(json.dumps({**IMAGE, "annotations": []}).encode(), OCI_MANIFEST)  # TypeError: {**[]}
@example(json.dumps({**INDEX, "manifests": [{"digest": D1, "size": 1e400}]}).encode(), OCI_INDEX)
# ^ OverflowError: int(inf) for a size
@example(b"[" * 100_000, "")  # RecursionError: nested too deep
def test_manifest_content(data: bytes, media_type: str) -> None:
    manifest = refuses_cleanly(lambda: Manifest.of(data, media_type or None))
    if isinstance(manifest, Manifest):
        refuses_cleanly(lambda: use(manifest))


HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=20
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A registry's answer to a manifest request: its body and headers."""
    body = draw(DOCUMENTS)
    headers = {"Content-Type": draw(st.one_of(MEDIA_TYPES, HEADER_TEXT))}
    digest = draw(st.sampled_from(["right", "other", "none", "text"]))
    if digest == "right":
        headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
    elif digest == "other":
        headers["Docker-Content-Digest"] = D3
    elif digest == "text":
        headers["Docker-Content-Digest"] = draw(HEADER_TEXT | st.just("../../../outside"))
    if draw(st.booleans()):
        headers["X-Content-Length"] = draw(HEADER_TEXT | st.sampled_from(["-1", "¹", "1e3"]))
    return body, headers


def registry(body: bytes, headers: dict[str, str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tags/list"):
            return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
        # Header bytes as a registry could send them (httpx would encode str as ASCII).
        sent = {name: value.encode("latin-1") for name, value in headers.items()}
        # httpx sets Content-Length from the body: the fuzzed one replaces it on HEAD.
        length = sent.pop("X-Content-Length", str(len(body)).encode())
        if request.method != "HEAD":
            return httpx.Response(200, content=body, headers=sent)
        return httpx.Response(200, headers=[*sent.items(), (b"Content-Length", length)])

    return httpx.MockTransport(answer)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("manifests")


def read_registry(answer: tuple[bytes, dict[str, str]], cache: Path) -> None:
    body, headers = answer
    client = RegistryClient(transport=registry(body, headers), retries=0, sleep=lambda _: None)
    with client:
        ref = Reference.parse(f"{HOST}/my/java:17")
        state = RegistryState(client, cache=cache)
        refuses_cleanly(lambda: state.lookup([str(ref)]))
        fetched = refuses_cleanly(lambda: client.get_manifest(ref))
        if isinstance(fetched, Manifest):
            refuses_cleanly(lambda: use(fetched))
        found = refuses_cleanly(lambda: client.head_manifest(ref))
        if isinstance(found, Descriptor):
            refuses_cleanly(lambda: client.get_manifest(ref.with_digest(found.digest)))
        refuses_cleanly(lambda: client.list_tags(ref))


@pytest.fixture(autouse=True)
def fresh_cache(cache: Path) -> Iterator[None]:
    yield
    for path in cache.iterdir():
        path.unlink()


@FUZZ
@given(answers())
@example((json.dumps(IMAGE).encode(), {"Docker-Content-Digest": D3, "X-Content-Length": "¹"}))
# ^ ValueError: "¹".isdigit() is True, int("¹") fails
@example((json.dumps(IMAGE).encode(), {"Docker-Content-Digest": "../../../outside"}))
# ^ a digest header that is not a digest, used as a cache path and a reference
@example((b"[1]", {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": "sha256:" + hashlib.sha256(b"[1]").hexdigest()}))
# ^ AttributeError: the published state read a JSON list as a manifest
@example((json.dumps({**IMAGE, "annotations": {INPUTS: "[" * 100_000}}).encode(), {}))
# ^ RecursionError: socle's inputs annotation nested too deep
def test_registry_answers(cache: Path, answer: tuple[bytes, dict[str, str]]) -> None:
    read_registry(answer, cache)


def test_the_seeds_are_read(cache: Path) -> None:
    body = json.dumps(IMAGE).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    client = RegistryClient(
        transport=registry(body, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest}),
        sleep=lambda _: None,
    )
    with client:
        published = RegistryState(client, cache=cache).lookup([f"{HOST}/my/java:17"])
    found = published[f"{HOST}/my/java:17"]
    assert found is not None and found.fingerprint == D3 and found.inputs == (("dockerfile", D1),)
    assert [d.digest for d in Manifest.of(json.dumps(INDEX).encode()).children()] == [D1, D2]


def test_a_digest_header_that_is_not_a_digest_is_the_registry_fault(cache: Path) -> None:
    body = json.dumps(IMAGE).encode()
    client = RegistryClient(
        transport=registry(body, {"Docker-Content-Digest": "../../../outside"}), sleep=lambda _: None
    )
    with client, pytest.raises(RegistryFailure) as caught:
        RegistryState(client, cache=cache).lookup([f"{HOST}/my/java:17"])
    assert caught.value.exit_code == 1
    assert "announced Docker-Content-Digest '../../../outside', which is not a digest" in str(caught.value)
    assert list(cache.iterdir()) == [] and not (cache.parent.parent / "outside").exists()
