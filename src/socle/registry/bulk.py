"""Many manifest HEADs and GETs at once: the planner's hot path.

A steady-state plan is one HEAD per reference; a cold one is one GET. httpx's
per-request overhead is about half a millisecond of Python on top of the
registry's own answer, which on two cores is as much as the registry itself; so
the batch goes through one lean keep-alive connection (:mod:`socle.registry.wire`)
per worker thread instead. The workers and their connections live as long as
the client: every batch of a run (the plan, the tag journal, the tag phase)
reuses them, instead of starting threads and opening connections per batch.

Anything but a plain 200 or 404 (a 401 challenge, a 5xx, a connection error, a
redirect) is handed to the client's full path, which authenticates, retries and
explains; a registry that asked for credentials once is not tried the lean way
again. A GET's body is checked against the digest it was asked for (or
announced under) before it is trusted; a mismatch too takes the full path,
which refuses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import SplitResult, urlsplit

from socle.canonical import sha256_digest
from socle.oci.content import Descriptor, Manifest
from socle.oci.errors import InvalidManifest
from socle.oci.media import MANIFEST_TYPES
from socle.oci.reference import Reference, is_digest
from socle.registry.errors import RegistryFailure
from socle.registry.wire import Answer, Unusual, Wire

if TYPE_CHECKING:  # ssl is imported for the first https registry (6 ms)
    import ssl

Item = TypeVar("Item")
Result = TypeVar("Result")
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
        self._local = threading.local()  # whether this thread is one of the workers
        self._guarded: set[str] = set()  # registries that answered 401: full path only
        self._tls: ssl.SSLContext | None = None  # made for the first https registry (40 ms)
        self._lock = threading.Lock()
        self._workers: ThreadPoolExecutor | None = None
        # One connection per thread and registry: a Wire serves one request at a time.
        self._wires: dict[tuple[int, str, str], Wire] = {}

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """`fn` of each item on the persistent workers, in order.

        Called from a worker (a batch inside a batch), or for one item, it runs
        in the calling thread: a worker never waits for its own pool.
        """
        if len(items) < 2 or getattr(self._local, "worker", False):
            return [fn(item) for item in items]
        return list(self._pool().map(fn, items))

    def heads(self, refs: Sequence[Reference]) -> list[Descriptor | None]:
        """The descriptor of each reference (None where nothing is published), in order."""
        return self.map(self.head, refs)

    def close(self) -> None:
        """Stop the workers and close their connections (a later batch starts them again)."""
        with self._lock:
            workers, self._workers = self._workers, None
            wires, self._wires = self._wires, {}
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)
        for wire in wires.values():
            wire.close()

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._workers is None:
                # The initializer holds no reference to self: an unclosed client's
                # workers still end when it is collected.
                self._workers = ThreadPoolExecutor(
                    WORKERS,
                    thread_name_prefix="socle-registry",
                    initializer=_enlist,
                    initargs=(self._local,),
                )
            return self._workers

    def head(self, ref: Reference) -> Descriptor | None:
        if not self._lean or ref.registry in self._guarded:
            return self._full(ref)
        url = urlsplit(self._url_of(ref))
        try:
            status, headers, _ = self._send("HEAD", url)
        except (OSError, Unusual):
            self._drop(url)
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
            status, headers, body = self._send("GET", url)
        except (OSError, Unusual):
            self._drop(url)
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

    def _send(self, method: str, url: SplitResult) -> Answer:
        path = url.path + (f"?{url.query}" if url.query else "")
        return self._connection(url).exchange(method, path, self._accept)

    def _connection(self, url: SplitResult) -> Wire:
        key = (threading.get_ident(), url.scheme, url.netloc)
        wire = self._wires.get(key)
        if wire is None:
            tls = None
            if url.scheme == "https":
                if self._tls is None:
                    import ssl

                    self._tls = ssl.create_default_context()
                tls = self._tls
            port = url.port or (443 if url.scheme == "https" else 80)
            with self._lock:
                wire = self._wires.setdefault(key, Wire(url.netloc, url.hostname or "", port, tls))
        return wire

    def _drop(self, url: SplitResult) -> None:
        wire = self._wires.get((threading.get_ident(), url.scheme, url.netloc))
        if wire is not None:
            wire.close()  # reopened by the next request


def _enlist(local: threading.local) -> None:
    local.worker = True


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
