"""Many manifest HEADs at once: the planner's hot path.

A steady-state plan is one HEAD per reference. httpx's per-request overhead is
about half a millisecond of Python on top of the registry's own answer, which on
two cores is as much as the registry itself; so the batch goes through one
keep-alive `http.client` connection per worker thread instead. Anything but a
plain 200 or 404 (a 401 challenge, a 5xx, a connection error, a redirect) is
handed to the client's full path, which authenticates, retries and explains; a
registry that asked for credentials once is not tried the lean way again.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from socle.oci.content import Descriptor
from socle.oci.reference import Reference, is_digest
from socle.registry.errors import RegistryFailure

Lookup = Callable[[Reference], Descriptor | None]
WORKERS = 16


class BulkHeads:
    """HEADs manifests in parallel; falls back to `full` for anything unusual."""

    def __init__(
        self, url_of: Callable[[Reference], str], accept: str, full: Lookup, *, lean: bool = True
    ) -> None:
        self._url_of = url_of
        self._lean = lean
        self._accept = accept
        self._full = full
        self._local = threading.local()
        self._guarded: set[str] = set()  # registries that answered 401: full path only
        self._tls = ssl.create_default_context()

    def heads(self, refs: Sequence[Reference], workers: int = WORKERS) -> list[Descriptor | None]:
        """The descriptor of each reference (None where nothing is published), in order."""
        if not refs:
            return []
        with ThreadPoolExecutor(max_workers=min(workers, len(refs))) as pool:
            return list(pool.map(self.head, refs))

    def head(self, ref: Reference) -> Descriptor | None:
        if not self._lean or ref.registry in self._guarded:
            return self._full(ref)
        url = urlsplit(self._url_of(ref))
        try:
            status, headers = self._send(url.scheme, url.netloc, url.path)
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

    def _send(self, scheme: str, netloc: str, path: str) -> tuple[int, dict[str, str]]:
        connection = self._connection(scheme, netloc)
        connection.request("HEAD", path, headers={"Accept": self._accept})
        response = connection.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "pool", {}
        )
        key = (scheme, netloc)
        if key not in pool:
            if scheme == "https":
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
