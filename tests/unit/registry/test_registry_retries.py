"""Retries with exponential backoff on 5xx, 429 and connection errors, then a clear error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from socle.oci.reference import Reference
from socle.registry.errors import RegistryError, RegistryUnreachable
from tests.unit.registry.registry_fakes import HOST, FakeRegistry, MakeClient, digest_of
from tests.unit.registry.registry_images import tiny_image, write_layout

REF = Reference.parse(f"{HOST}/os/debian:12")
Handler = Callable[[httpx.Request], httpx.Response]


def failing_first(handler: Handler, failures: Iterator[httpx.Response | Exception]) -> Handler:
    """`handler`, after the given failures (responses returned, exceptions raised)."""

    def answer(request: httpx.Request) -> httpx.Response:
        failure = next(failures, None)
        if failure is None:
            return handler(request)
        if isinstance(failure, Exception):
            raise failure
        return failure

    return answer


def recorder() -> tuple[list[float], Callable[[float], None]]:
    slept: list[float] = []
    return slept, slept.append


def test_5xx_then_success(make_client: MakeClient, fake: FakeRegistry) -> None:
    slept, sleep = recorder()
    handler = failing_first(fake, iter([httpx.Response(503), httpx.Response(502)]))
    assert make_client(handler, sleep=sleep).head_manifest(REF) is None
    assert slept == [0.2, 0.4]


def test_connection_error_then_success(make_client: MakeClient, fake: FakeRegistry) -> None:
    slept, sleep = recorder()
    handler = failing_first(fake, iter([httpx.ConnectError("connection refused")]))
    assert make_client(handler, sleep=sleep).list_tags(REF) == []
    assert slept == [0.2]


def test_429_honours_retry_after(make_client: MakeClient, fake: FakeRegistry) -> None:
    slept, sleep = recorder()
    handler = failing_first(fake, iter([httpx.Response(429, headers={"Retry-After": "3"})]))
    make_client(handler, sleep=sleep).head_manifest(REF)
    assert slept == [3.0]


def test_giving_up_on_connection_errors_is_registry_unreachable(make_client: MakeClient) -> None:
    slept, sleep = recorder()
    attempts: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(RegistryUnreachable) as info:
        make_client(refuse, sleep=sleep, retries=3, backoff=0.5).head_manifest(REF)
    assert len(attempts) == 4
    assert slept == [0.5, 1.0, 2.0]
    error = info.value
    assert f"http://{HOST}/v2/os/debian/manifests/12" in error.message
    assert "Connection refused" in error.message
    assert error.hint and "socle up" in error.hint
    assert error.__cause__ is None and error.__suppress_context__  # no httpx traceback


def test_giving_up_on_5xx_is_registry_error_with_the_body(make_client: MakeClient) -> None:
    body = {"errors": [{"code": "UNAVAILABLE", "message": "storage is down"}]}
    client = make_client(lambda request: httpx.Response(500, json=body), retries=2)
    with pytest.raises(RegistryError) as info:
        client.get_manifest(REF)
    assert info.value.status == 500
    assert info.value.message == (
        f"GET http://{HOST}/v2/os/debian/manifests/12 failed with HTTP 500:"
        " UNAVAILABLE: storage is down"
    )


def test_client_errors_are_not_retried(make_client: MakeClient) -> None:
    slept, sleep = recorder()
    client = make_client(lambda request: httpx.Response(400, text="bad"), sleep=sleep)
    with pytest.raises(RegistryError, match="HTTP 400: bad"):
        client.get_manifest(REF)
    assert slept == []


def test_a_streamed_file_is_sent_whole_again_on_retry(
    make_client: MakeClient, fake: FakeRegistry, tmp_path: Path
) -> None:
    data = b"layer bytes " * 100_000
    path = tmp_path / "layer"
    path.write_bytes(data)
    put_failures = iter([httpx.Response(503)])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and next(put_failures, None) is not None:
            request.read()
            return httpx.Response(503)
        return fake(request)

    make_client(handler).upload_blob(REF, digest_of(data), path)
    assert fake.repo("os/debian").blobs[digest_of(data)] == data
    put = fake.seen("PUT")[-1]
    assert put.headers["Content-Length"] == str(len(data))
    assert "Transfer-Encoding" not in put.headers


def test_timeouts_are_retried_then_unreachable(make_client: MakeClient) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    with pytest.raises(RegistryUnreachable, match="ReadTimeout: timed out"):
        make_client(slow, retries=1).blob_exists(REF, digest_of(b""))


def cut_off_uploads(fake: FakeRegistry, count: int, *, stored: bool = False) -> Handler:
    """`fake`, whose first `count` upload PUTs die mid-body, as a connection reset does.

    The session is used up as distribution leaves it: written up to an offset, so the
    same PUT again is refused (BLOB_UPLOAD_INVALID). With `stored`, the blob did land
    and only the answer was lost.
    """
    left = iter(range(count))

    def answer(request: httpx.Request) -> httpx.Response:
        is_upload = request.method == "PUT" and "/blobs/uploads/" in request.url.path
        if not is_upload or next(left, None) is None:
            return fake(request)
        if stored:
            fake(request)
        else:
            fake.requests.append(request)
            fake.uploads.pop(request.url.path.rsplit("/", 1)[-1], None)
        raise httpx.RemoteProtocolError("peer closed connection without response")

    return answer


def test_an_upload_cut_off_mid_body_starts_a_new_session(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    slept, sleep = recorder()
    data = b"layer" * 1000
    make_client(cut_off_uploads(fake, 1), sleep=sleep).upload_blob(REF, digest_of(data), data)
    assert fake.repo("os/debian").blobs[digest_of(data)] == data
    puts = fake.seen("PUT", "/blobs/uploads/")
    assert len(puts) == 2 and puts[0].url.path != puts[1].url.path  # never the same session
    assert len(fake.seen("POST", "/blobs/uploads/")) == 2
    assert slept == [0.2]


def test_an_upload_whose_answer_was_lost_is_not_sent_again(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    data = b"config"
    client = make_client(cut_off_uploads(fake, 1, stored=True))
    assert client.ensure_blob(REF, digest_of(data), data) is True
    assert len(fake.seen("PUT", "/blobs/uploads/")) == 1  # the HEAD found it
    assert fake.repo("os/debian").blobs[digest_of(data)] == data


def test_uploads_cut_off_every_time_end_in_one_unreachable_error(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    slept, sleep = recorder()
    data = b"layer"
    client = make_client(cut_off_uploads(fake, 99), sleep=sleep, retries=2)
    with pytest.raises(RegistryUnreachable, match="RemoteProtocolError"):
        client.upload_blob(REF, digest_of(data), data)
    assert len(fake.seen("PUT", "/blobs/uploads/")) == 3  # one per session, no repeats
    assert slept == [0.2, 0.4]


def test_an_upload_refused_for_its_content_is_not_retried(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    slept, sleep = recorder()
    with pytest.raises(RegistryError, match="HTTP 400: DIGEST_INVALID"):
        make_client(fake, sleep=sleep).upload_blob(REF, digest_of(b"other"), b"layer")
    assert len(fake.seen("PUT", "/blobs/uploads/")) == 1
    assert slept == []


class ForgetfulRegistry(FakeRegistry):
    """Loses the repository's link to the first layer once, right after accepting it.

    What distribution does when two pushes of one layer into one repository race on
    its link file: the next manifest PUT is refused with MANIFEST_BLOB_UNKNOWN.
    """

    def __init__(self) -> None:
        super().__init__()
        self.forgot: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        is_manifest_put = request.method == "PUT" and "/manifests/" in request.url.path
        if is_manifest_put and not self.forgot:
            layers = httpx.Response(200, content=request.read()).json()["layers"]
            name = request.url.path.split("/v2/", 1)[1].split("/manifests/")[0]
            self.repo(name).blobs.pop(layers[0]["digest"])
            self.forgot.append(layers[0]["digest"])
        return super().__call__(request)


def test_a_blob_the_registry_lost_is_sent_again_and_the_manifest_put_retried(
    make_client: MakeClient, tmp_path: Path
) -> None:
    fake = ForgetfulRegistry()
    layout = write_layout(tmp_path / "layout", tiny_image("racy"))
    manifest = make_client(fake).push_layout(layout, REF)
    assert fake.forgot, "the registry did lose the layer once"
    assert fake.forgot[0] in fake.repo("os/debian").blobs, "the layer was sent again"
    assert manifest.digest in fake.repo("os/debian").manifests
    assert len(fake.seen("PUT", "/manifests/")) == 2


def test_a_manifest_still_refused_after_the_retries_is_one_clear_error(
    make_client: MakeClient, tmp_path: Path
) -> None:
    fake = FakeRegistry()

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/manifests/" in request.url.path:
            fake.requests.append(request)
            body = '{"errors": [{"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown"}]}'
            return httpx.Response(400, content=body)
        return fake(request)

    layout = write_layout(tmp_path / "layout", tiny_image("never"))
    with pytest.raises(RegistryError, match="MANIFEST_BLOB_UNKNOWN"):
        make_client(refuse).push_layout(layout, REF)
    assert len(fake.seen("PUT", "/manifests/")) == 5  # the first try and 4 retries
