"""Many manifest HEADs and GETs at once: the planner's hot path.

A steady-state plan is one HEAD per reference; a cold one is one GET. httpx's per-request overhead is
about half a millisecond of Python on top of the registry's own answer, which on
two cores is as much as the registry itself; so the batch goes through one
keep-alive `http.client` connection per worker thread instead. Anything but a
plain 200 or 404 (a 401 challenge, a 5xx, a connection error, a redirect) is
handed to the client's full path, which authenticates, retries and explains; a
registry that asked for credentials once is not tried the lean way again. A
GET's body is checked against the digest it was asked for (or announced
under) before it is trusted; a mismatch too takes the full path, which refuses.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from socle.canonical import sha256_digest
from socle.oci.content import Descriptor, Manifest
from socle.oci.errors import InvalidManifest
from socle.oci.media import MANIFEST_TYPES
from socle.oci.reference import Reference, is_digest
from socle.registry.errors import RegistryFailure

Lookup = Callable[[Reference], Descriptor | None]
Fetch = Callable[[Reference], Manifest | None]
WORKERS = 16


class BulkHeads:
    """HEADs manifests in parallel; falls back to `full` for anything unusual."""

    def __init__(
        self,
        url_of: Callable[[Reference], str],
        accept: str,
        full: Lookup,
        *,
        full_get: Fetch | None = None,
        lean: bool = True,
    ) -> None:
        """`full` HEADs and `full_get` GETs (None when absent) the client's full way."""
        self._url_of = url_of
        self._lean = lean
        self._accept = accept
        self._full = full
        self._full_get = full_get
        self._local = threading.local()
        self._guarded: set[str] = set()  # registries that answered 401: full path only
        self._tls: ssl.SSLContext | None = None  # made for the first https registry (40 ms)

    def heads(self, refs: Sequence[Reference], workers: int = WORKERS) -> list[Descriptor | None]:
        """The descriptor of each reference (None where nothing is published), in order."""
        if len(refs) < 2:
            return [self.head(ref) for ref in refs]
        with ThreadPoolExecutor(max_workers=min(workers, len(refs))) as pool:
            return list(pool.map(self.head, refs))

    def head(self, ref: Reference) -> Descriptor | None:
        if not self._lean or ref.registry in self._guarded:
            return self._full(ref)
        url = urlsplit(self._url_of(ref))
        try:
            status, headers, _ = self._send("HEAD", url.scheme, url.netloc, url.path)
        except (OSError, http.client.HTTPException):
            self._drop(url.scheme, url.netloc)
            return self._full(ref)
        if status == 404:
            return None
        digest = headers.get("docker-content-digest")
        if status != 200 or not digest:
            if status == 401:
                self._guarded.add(ref.registry)
            return self._full(ref)
        return announced(
            url.geturl(), headers.get("content-type", ""), digest, headers.get("content-length", "")
        )

    def get(self, ref: Reference) -> Manifest | None:
        """The manifest at `ref` (None where nothing is published), checked against its digest."""
        if self._full_get is None:
            raise TypeError("BulkHeads.get needs full_get")
        if not self._lean or ref.registry in self._guarded:
            return self._full_get(ref)
        url = urlsplit(self._url_of(ref))
        try:
            status, headers, body = self._send("GET", url.scheme, url.netloc, url.path)
        except (OSError, http.client.HTTPException):
            self._drop(url.scheme, url.netloc)
            return self._full_get(ref)
        if status == 404:
            return None
        if status == 401:
            self._guarded.add(ref.registry)
        manifest = received(headers.get("content-type", ""), body) if status == 200 else None
        expected = ref.digest or headers.get("docker-content-digest") or None
        if manifest is None or (expected is not None and expected != manifest.digest):
            return self._full_get(ref)  # explains the mismatch, the status or the challenge
        return manifest

    def _send(
        self, method: str, scheme: str, netloc: str, path: str
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self._connection(scheme, netloc)
        connection.request(method, path, headers={"Accept": self._accept})
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "pool", {}
        )
        key = (scheme, netloc)
        if key not in pool:
            if scheme == "https":
                if self._tls is None:
                    self._tls = ssl.create_default_context()
                pool[key] = http.client.HTTPSConnection(netloc, timeout=30, context=self._tls)
            else:
                pool[key] = http.client.HTTPConnection(netloc, timeout=30)
        return pool[key]

    def _drop(self, scheme: str, netloc: str) -> None:
        pool = self._local.__dict__.get("pool", {})
        connection = pool.pop((scheme, netloc), None)
        if connection is not None:
            connection.close()


def announced(url: str, media_type: str, digest: str, length: str) -> Descriptor:
    """The descriptor a manifest HEAD answer announces in its headers.

    The digest becomes a cache file name and a reference: one that is not a
    digest is the registry's fault, refused here. `"¹".isdigit()` is true, so
    the length must be ASCII digits too.
    """
    if not is_digest(digest):
        raise RegistryFailure(
            f"{url}: the registry announced Docker-Content-Digest {digest[:80]!r}, which is not a digest",
            hint="the registry or a proxy in front of it is misbehaving; report it to its operators",
        )
    size = int(length) if length.isascii() and length.isdigit() else 0
    return Descriptor(media_type, digest, size)


def received(content_type: str, data: bytes) -> Manifest:
    """A manifest from a GET answer: the header's media type unless it is a generic one."""
    media_type = content_type.split(";", 1)[0].strip()
    if media_type in MANIFEST_TYPES:
        return Manifest(media_type, sha256_digest(data), data)
    try:
        return Manifest.of(data)
    except InvalidManifest:
        return Manifest(media_type, sha256_digest(data), data)
