"""The HTTP side of the registry client: URLs, retries, authentication, errors.

One :class:`Session` wraps one shared `httpx.Client` (thread-safe, pooled
keep-alive connections). Every request goes through :meth:`Session.send`,
which retries transient failures with exponential backoff, answers 401
challenges (Basic, or Bearer tokens cached per registry and scope) and
translates httpx errors into :mod:`socle.registry.errors`.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from socle.registry.auth import Credential, CredentialSource
from socle.registry.challenge import Challenge, parse_challenge
from socle.registry.errors import (
    AuthenticationFailed,
    RegistryError,
    RegistryFailure,
    RegistryUnreachable,
)

if TYPE_CHECKING:  # httpx is imported on the first request: a lean plan never needs it
    import httpx

MAX_RETRY_AFTER = 30.0
# Tokens are dropped this many seconds before the registry says they expire.
TOKEN_MARGIN = 10.0
DEFAULT_TOKEN_LIFETIME = 60.0
CLIENT_ID = "socle"

# A request body: bytes, or a factory of chunks so that a retry can send it again.
Content = bytes | Callable[[], Iterator[bytes]]


@dataclass(frozen=True)
class Call:
    """One registry request, as data, so it can be retried and re-authorized."""

    method: str
    registry: str
    url: str
    scopes: tuple[str, ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Sequence[tuple[str, str]] = ()
    content: Content | None = None
    # False when a failed attempt leaves the registry in an unknown state, so the same
    # request cannot simply be sent again: the PUT that completes an upload session
    # (cut off mid-body, the session sits at an offset only the registry knows). The
    # caller retries a larger unit instead (see :meth:`Session.tries`).
    retry: bool = True

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


def is_loopback(registry: str) -> bool:
    """True for `localhost` and 127.0.0.0/8 (or ::1) hosts, with or without a port."""
    if registry.startswith("["):
        host = registry[1 : registry.find("]")]
    else:
        host = registry.partition(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Session:
    """Sends :class:`Call` objects with retries, authentication and error translation."""

    def __init__(
        self,
        client: httpx.Client | Callable[[], httpx.Client],
        *,
        credentials: CredentialSource,
        retries: int,
        backoff: float,
        insecure: Collection[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._made = client if not callable(client) else None
        self._make = client if callable(client) else None
        self._credentials = credentials
        self._retries = max(retries, 0)
        self._backoff = backoff
        self._insecure = frozenset(insecure)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def url(self, registry: str, path: str) -> str:
        """`http(s)://registry/v2/path`: plain http for loopback and `insecure` hosts."""
        plain = registry in self._insecure or is_loopback(registry)
        return f"{'http' if plain else 'https'}://{registry}/v2/{path}"

    def send(self, call: Call, *, stream: bool = False) -> httpx.Response:
        """The response to `call` after retries and authentication (body read unless `stream`)."""
        return self._retrying(call, lambda: self._authorized(call, stream))

    @contextmanager
    def stream(self, call: Call) -> Iterator[httpx.Response]:
        """Like :meth:`send` with the body left unread; closed on exit."""
        response = self.send(call, stream=True)
        try:
            yield response
        finally:
            response.close()

    @property
    def _client(self) -> httpx.Client:
        """The httpx client, made on first use when the session was given a factory."""
        if self._made is None:
            with self._lock:
                if self._made is None and self._make is not None:
                    self._made = self._make()
        assert self._made is not None
        return self._made

    def close(self) -> None:
        """Close the pooled connections."""
        if self._made is not None:
            self._made.close()

    # -- retries ---------------------------------------------------------------

    def tries(self) -> Iterator[int]:
        """Attempt numbers 0, 1, ... with the backoff of one request slept before each retry.

        For a unit of requests that is safe to start over but whose last request is
        not safe to send again alone (a whole blob upload, see `Call.retry`).
        """
        for number in range(self._retries + 1):
            if number:
                self._sleep(self._delay(number - 1, None))
            yield number

    def _retrying(self, call: Call, attempt: Callable[[], httpx.Response]) -> httpx.Response:
        import httpx

        retries = self._retries if call.retry else 0
        for number in range(retries + 1):
            last = number == retries
            try:
                response = attempt()
            except httpx.TransportError as exc:
                if last:
                    raise RegistryUnreachable(call.url, describe_transport_error(exc)) from None
                self._sleep(self._delay(number, None))
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise RegistryError(
                    call.method, call.url, 0, describe_transport_error(exc)
                ) from None
            if last or not is_transient(response.status_code):
                return response
            response.close()
            self._sleep(self._delay(number, response))
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, number: int, response: httpx.Response | None) -> float:
        delay = self._backoff * 2.0**number
        retry_after = response.headers.get("Retry-After", "") if response is not None else ""
        if retry_after.isdigit():
            delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
        return delay

    # -- authentication --------------------------------------------------------

    def _authorized(self, call: Call, stream: bool) -> httpx.Response:
        response = self._transmit(call, self._authorization(call), stream)
        if response.status_code != 401:
            return response
        response.close()
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            raise AuthenticationFailed(call.registry, f"{call} answered 401 without a challenge")
        with self._lock:
            self._challenges[call.registry] = challenge
        response = self._transmit(call, self._authorization(call, fresh=challenge), stream)
        if response.status_code == 401:
            response.close()
            raise AuthenticationFailed(call.registry, self._refusal(call.registry))
        return response

    def _refusal(self, registry: str) -> str:
        if self._credentials.get(registry) is None:
            return "the registry wants credentials and none are configured"
        return "the registry refused the configured credentials"

    def _authorization(self, call: Call, *, fresh: Challenge | None = None) -> str | None:
        """The `Authorization` value for `call`, once the registry has challenged us.

        `fresh` is the challenge `call` itself just got: its token is renewed and
        covers the scopes it names; otherwise the registry's last challenge is reused.
        """
        with self._lock:
            challenge = fresh or self._challenges.get(call.registry)
        if challenge is None:
            return None
        credential = self._credentials.get(call.registry)
        if challenge.scheme == "basic":
            return basic_authorization(credential) if credential and credential.username else None
        if challenge.scheme == "bearer":
            scopes = {*call.scopes, *(fresh.scopes if fresh else ())}
            token = self._token(call.registry, challenge, scopes, credential, refresh=bool(fresh))
            return f"Bearer {token}"
        raise AuthenticationFailed(call.registry, f"unsupported scheme {challenge.scheme!r}")

    def _token(
        self,
        registry: str,
        challenge: Challenge,
        wanted: Collection[str],
        credential: Credential | None,
        *,
        refresh: bool,
    ) -> str:
        scopes = tuple(sorted(wanted))
        key = (registry, " ".join(scopes))
        with self._lock:
            cached = self._tokens.get(key)
        if cached and not refresh and cached[1] > time.monotonic():
            return cached[0]
        token, lifetime = self._fetch_token(registry, challenge, scopes, credential)
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + lifetime - TOKEN_MARGIN)
        return token

    def _fetch_token(
        self,
        registry: str,
        challenge: Challenge,
        scopes: Sequence[str],
        credential: Credential | None,
    ) -> tuple[str, float]:
        if not challenge.realm.startswith(("https://", "http://")):
            raise AuthenticationFailed(registry, f"bad token realm {challenge.realm!r}")
        request = token_request(self._client, challenge, scopes, credential)
        call = Call(request.method, registry, str(request.url), ())
        response = self._retrying(call, lambda: self._client.send(request))
        if response.status_code in (401, 403):
            raise AuthenticationFailed(
                registry, f"the token service refused: {self._refusal(registry)}"
            )
        if response.status_code != 200:
            raise RegistryError(
                request.method, challenge.realm, response.status_code, response.text
            )
        return parse_token(response, registry)

    def _transmit(self, call: Call, authorization: str | None, stream: bool) -> httpx.Response:
        import httpx

        headers = dict(call.headers)
        if authorization:
            headers["Authorization"] = authorization
        content = call.content() if callable(call.content) else call.content
        # Merged by hand: httpx replaces the query of a URL given `params`, and upload
        # locations carry their own state in the query.
        url = httpx.URL(call.url)
        if call.params:
            url = url.copy_merge_params(httpx.QueryParams(tuple(call.params)))
        request = self._client.build_request(call.method, url, headers=headers, content=content)
        return self._client.send(request, stream=stream)


def is_transient(status: int) -> bool:
    """Worth retrying: 429 and 5xx, except 501 (the registry does not implement it)."""
    return status == 429 or (status >= 500 and status != 501)


def basic_authorization(credential: Credential) -> str:
    """The `Authorization: Basic` value for a user name and password."""
    pair = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def token_request(
    client: httpx.Client,
    challenge: Challenge,
    scopes: Sequence[str],
    credential: Credential | None,
) -> httpx.Request:
    """The token request of the distribution token protocol (OAuth2 refresh for identity tokens)."""
    import httpx

    service = [("service", challenge.service)] if challenge.service else []
    if credential and credential.identity_token:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": credential.identity_token,
            "client_id": CLIENT_ID,
            "scope": " ".join(scopes),
            **dict(service),
        }
        return client.build_request("POST", challenge.realm, data=form)
    params = httpx.QueryParams(tuple(service + [("scope", scope) for scope in scopes]))
    headers = {"Authorization": basic_authorization(credential)} if credential else {}
    return client.build_request("GET", challenge.realm, params=params, headers=headers)


def parse_token(response: httpx.Response, registry: str) -> tuple[str, float]:
    """The token and its lifetime in seconds from a token service answer."""
    try:
        answer = response.json()
        token = str(answer.get("token") or answer["access_token"])
        lifetime = float(answer.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AuthenticationFailed(registry, "the token service answered without a token") from None
    return token, lifetime


def describe_transport_error(exc: Exception) -> str:
    """A one-line reason for an httpx failure, without its traceback."""
    reason = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {reason}" if reason != type(exc).__name__ else reason


def check(response: httpx.Response, call: Call, *expected: int) -> httpx.Response:
    """Return `response` if its status is expected; raise the matching error otherwise."""
    if response.status_code in expected:
        return response
    raise failure(response, call)


def failure(response: httpx.Response, call: Call) -> RegistryFailure:
    """The error an unexpected answer to `call` means (the response is closed)."""
    body = response.read().decode(errors="replace")
    response.close()
    if response.status_code == 403:
        return AuthenticationFailed(call.registry, f"access denied for {call}")
    return RegistryError(call.method, call.url, response.status_code, body)
