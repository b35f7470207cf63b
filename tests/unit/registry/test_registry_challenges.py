"""The 401 dance: Basic and Bearer challenges, token cache, refusals."""

from __future__ import annotations

import base64

import httpx
import pytest

from socle.oci.reference import Reference
from socle.registry.auth import Credential, StaticCredentials
from socle.registry.errors import AuthenticationFailed
from tests.unit.registry.registry_fakes import HOST, FakeRegistry, MakeClient

REALM = "http://127.0.0.1:5001/token"
REF = Reference.parse(f"{HOST}/os/debian:12")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TokenServer:
    """A registry behind a distribution-style token service."""

    def __init__(self, fake: FakeRegistry, *, user: str | None = None, password: str = "") -> None:
        self.fake = fake
        self.expected = basic(user, password) if user else None
        self.token_requests: list[httpx.Request] = []
        self.refused: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(REALM):
            return self.token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer tok:"):
            self.refused.append(request)
            challenge = f'Bearer realm="{REALM}",service="fake",scope="repository:os/debian:pull"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return self.fake(request)

    def token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(request)
        if self.expected and request.headers.get("Authorization") != self.expected:
            return httpx.Response(401)
        scopes = " ".join(request.url.params.get_list("scope"))
        return httpx.Response(200, json={"token": f"tok:{scopes}", "expires_in": 300})


def test_bearer_token_fetched_with_credentials_then_cached(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    server = TokenServer(fake, user="ops", password="pw")
    creds = StaticCredentials({HOST: Credential("ops", "pw")})
    client = make_client(server, credentials=creds)

    assert client.head_manifest(REF) is None
    assert client.head_manifest(REF) is None

    assert len(server.token_requests) == 1
    token_request = server.token_requests[0]
    assert token_request.url.params["service"] == "fake"
    assert token_request.url.params.get_list("scope") == ["repository:os/debian:pull"]
    assert len(server.refused) == 1  # the second HEAD carried the cached token
    assert fake.requests[-1].headers["Authorization"] == "Bearer tok:repository:os/debian:pull"


def test_anonymous_bearer_token_has_no_authorization(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    server = TokenServer(fake)
    make_client(server).head_manifest(REF)
    assert "Authorization" not in server.token_requests[0].headers


def test_new_scope_gets_its_own_token_without_a_new_challenge(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    server = TokenServer(fake)
    client = make_client(server)
    client.head_manifest(REF)
    client.blob_exists(Reference.parse(f"{HOST}/os/other"), "sha256:" + "0" * 64)
    assert len(server.refused) == 1
    scopes = [r.url.params.get_list("scope") for r in server.token_requests]
    assert scopes == [["repository:os/debian:pull"], ["repository:os/other:pull"]]


def test_mount_asks_for_push_on_destination_and_pull_on_source(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    server = TokenServer(fake)
    make_client(server).mount_blob(REF, "sha256:" + "0" * 64, "os/base")
    scopes = set(server.token_requests[0].url.params.get_list("scope"))
    assert {"repository:os/debian:pull,push", "repository:os/base:pull"} <= scopes


def test_token_service_refusal_is_authentication_failed(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    server = TokenServer(fake, user="ops", password="right")
    client = make_client(server, credentials=StaticCredentials({HOST: Credential("ops", "wrong")}))
    with pytest.raises(AuthenticationFailed) as info:
        client.head_manifest(REF)
    assert info.value.hint == f"run `docker login {HOST}`"
    assert "wrong" not in info.value.diagnostics()


def test_identity_token_uses_the_oauth2_refresh_grant(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(REALM):
            seen.append(request)
            return httpx.Response(200, json={"access_token": "tok:x"})
        if request.headers.get("Authorization") != "Bearer tok:x":
            return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
        return fake(request)

    creds = StaticCredentials({HOST: Credential(identity_token="refresh-token")})
    make_client(handler, credentials=creds).head_manifest(REF)
    form = dict(httpx.QueryParams(seen[0].read().decode()))
    assert seen[0].method == "POST"
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "refresh-token"
    assert form["scope"] == "repository:os/debian:pull"


def basic_registry(fake: FakeRegistry, refused: list[httpx.Request]) -> object:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != basic("ops", "pw"):
            refused.append(request)
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="Registry"'})
        return fake(request)

    return handler


def test_basic_challenge_sends_credentials_then_preemptively(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    refused: list[httpx.Request] = []
    creds = StaticCredentials({HOST: Credential("ops", "pw")})
    client = make_client(basic_registry(fake, refused), credentials=creds)
    assert client.list_tags(REF) == []
    assert client.list_tags(REF) == []
    assert len(refused) == 1


def test_basic_challenge_without_credentials_fails_clearly(
    make_client: MakeClient, fake: FakeRegistry
) -> None:
    client = make_client(basic_registry(fake, []))
    with pytest.raises(AuthenticationFailed, match="none are configured"):
        client.list_tags(REF)


def test_refused_token_is_authentication_failed_not_a_loop(make_client: MakeClient) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if str(request.url).startswith(REALM):
            return httpx.Response(200, json={"token": "useless"})
        return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})

    with pytest.raises(AuthenticationFailed, match="wants credentials"):
        make_client(handler).head_manifest(REF)
    assert len(calls) == 3  # challenge, token, refused retry


def test_401_without_challenge(make_client: MakeClient) -> None:
    with pytest.raises(AuthenticationFailed, match="without a challenge"):
        make_client(lambda request: httpx.Response(401)).head_manifest(REF)


def test_403_is_access_denied(make_client: MakeClient) -> None:
    with pytest.raises(AuthenticationFailed, match="access denied"):
        make_client(lambda request: httpx.Response(403)).get_manifest(REF)
