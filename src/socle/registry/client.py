"""socle's OCI distribution client: manifests, blobs, tags, layouts and copies.

All methods take a :class:`~socle.oci.reference.Reference` and speak the
distribution API over one pooled, thread-safe :class:`~socle.registry.session.Session`.
Manifests are immutable by digest, so they are cached in memory by
(repository, digest): tagging the same manifest again costs one PUT.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from socle.canonical import sha256_digest
from socle.errors import InputError
from socle.oci.content import Descriptor, Manifest, matches, with_annotations
from socle.oci.errors import DigestMismatch
from socle.oci.layout import read_image_layout
from socle.oci.media import MANIFEST_TYPES
from socle.oci.reference import Reference, check_digest
from socle.registry.auth import Anonymous, CredentialSource, DockerConfig
from socle.registry.bulk import BulkHeads, announced, received
from socle.registry.cache import ManifestCache, TagsSeen
from socle.registry.errors import (
    ManifestNotFound,
    RegistryError,
    RegistryFailure,
    RegistryUnreachable,
)
from socle.registry.interface import BlobSource
from socle.registry.session import (
    Call,
    Content,
    Session,
    check,
    describe_transport_error,
    failure,
    is_transient,
)

if TYPE_CHECKING:  # imported with the first request the lean paths leave to httpx
    import httpx

log = logging.getLogger(__name__)

USER_AGENT = "socle"
DEFAULT_TIMEOUT = 60.0  # seconds per request; connecting: CONNECT_TIMEOUT
CONNECT_TIMEOUT = 10.0
MAX_CONNECTIONS = 32
MANIFEST_CACHE_SIZE = 4096
TAGS_PAGE_SIZE = 1000
CHUNK_SIZE = 1 << 20
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES)
Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class _Payload:
    content: Content
    size: int

    @classmethod
    def of(cls, source: BlobSource) -> _Payload:
        if isinstance(source, bytes):
            return cls(source, len(source))
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read the blob file {source}: {exc.strerror}") from None
        return cls(partial(_file_chunks, source), size)


class RegistryClient:
    """A client for OCI distribution registries (CNCF distribution, Harbor, and others).

    Thread-safe: one instance is meant to be shared by the build executor's threads.
    """

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        credentials: CredentialSource | None = None,
        retries: int = 4,
        backoff: float = 0.2,
        timeout: float | httpx.Timeout | None = None,
        insecure: Collection[str] = (),
        max_connections: int = MAX_CONNECTIONS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`insecure` hosts use plain http, as loopback hosts always do; `sleep` is for tests."""

        def connect() -> httpx.Client:
            import httpx

            limits = httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            )
            return httpx.Client(
                transport=transport,
                timeout=httpx.Timeout(DEFAULT_TIMEOUT, connect=CONNECT_TIMEOUT)
                if timeout is None
                else timeout,
                limits=limits,
                follow_redirects=True,
                headers={"User-Agent": USER_AGENT},
            )

        self._session = Session(
            connect,
            credentials=credentials or Anonymous(),
            retries=retries,
            backoff=backoff,
            insecure=insecure,
            sleep=sleep,
        )
        self._manifests = ManifestCache(MANIFEST_CACHE_SIZE)
        self._seen = TagsSeen()
        # An injected transport (tests, proxies) sees every request: no lean path then.
        self._bulk = BulkHeads(
            self._manifest_url,
            ACCEPT_MANIFESTS,
            self.head_manifest,
            full_get=self._full_manifest,
            lean=transport is None,
        )

    @classmethod
    def from_config(
        cls, docker_config: Path | None = None, *, insecure: Collection[str] = ()
    ) -> RegistryClient:
        """A client using the credentials of the docker config (file, folder, or the default)."""
        return cls(credentials=DockerConfig.load(docker_config), insecure=insecure)

    def close(self) -> None:
        """Stop the batch workers and close the pooled connections."""
        self._bulk.close()
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- manifests ---------------------------------------------------------------

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        """The descriptor of the manifest at `ref`, or None if there is none."""
        call = self._manifest_call("HEAD", ref)
        response = self._session.send(call)
        if response.status_code == 404:
            return None
        check(response, call, 200)
        digest = response.headers.get("Docker-Content-Digest") or ref.digest
        if not digest:
            return self.get_manifest(ref).descriptor
        length = str(response.headers.get("Content-Length", ""))
        return announced(call.url, _content_type(response), digest, length)

    def head_manifests(
        self, refs: Sequence[Reference], *, recent: bool = False
    ) -> list[Descriptor | None]:
        """:meth:`head_manifest` of many references in parallel (the planner's batch).

        With `recent`, a tag this client already read or wrote is answered from
        what it saw (no request): for the tag phase of the run whose plan read
        those tags, which must see the run's own pushes but need not ask again.
        """
        known = [
            self._seen.get(r.name, r.tag or "") if recent and _by_tag(r) else _UNSEEN for r in refs
        ]
        asked = [ref for ref, (seen, _) in zip(refs, known, strict=True) if not seen]
        since = self._seen.now()
        answers = self._bulk.heads(asked)
        for ref, found in zip(asked, answers, strict=True):
            if _by_tag(ref):
                self._seen.read(ref.name, ref.tag or "", found, since)
        fresh = iter(answers)
        return [found if seen else next(fresh) for seen, found in known]

    def find_manifests(self, refs: Sequence[Reference]) -> list[Manifest | None]:
        """:meth:`find_manifest` of many references in parallel, in order."""
        return self._bulk.map(self.find_manifest, refs)

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """`fn` of each item, in order, on the workers every batch of this client shares.

        For callers whose work per item is mostly registry requests (the
        published state's lookup): they reuse the workers' keep-alive
        connections instead of starting threads and connections of their own.
        """
        return self._bulk.map(fn, items)

    def get_manifest(self, ref: Reference) -> Manifest:
        """The manifest or index at `ref`, byte-exact; checked against the digest asked for."""
        manifest = self.find_manifest(ref)
        if manifest is None:
            raise ManifestNotFound(str(ref))
        return manifest

    def find_manifest(self, ref: Reference) -> Manifest | None:
        """The manifest at `ref`, or None if there is none.

        A plain answer comes over the keep-alive pool of :meth:`head_manifests`
        (the planner's cold path); anything else takes the full path, which
        authenticates, retries, and refuses content that is not its digest.
        """
        if ref.digest and (cached := self._manifests.get(ref.name, ref.digest)):
            return cached
        since = self._seen.now()
        manifest = self._bulk.get(ref)
        if manifest is not None:
            self._manifests.put(ref.name, manifest)
        if _by_tag(ref):
            found = manifest.descriptor if manifest else None
            self._seen.read(ref.name, ref.tag or "", found, since)
        return manifest

    def _full_manifest(self, ref: Reference) -> Manifest | None:
        call = self._manifest_call("GET", ref)
        response = self._session.send(call)
        if response.status_code == 404:
            return None
        check(response, call, 200)
        manifest = _manifest_from(response)
        header = response.headers.get("Docker-Content-Digest")
        if ref.digest:
            _verify_digest(manifest.data, ref.digest, str(ref))
            if header and header != ref.digest:
                raise DigestMismatch(str(ref), ref.digest, header)
        elif header:
            # A tag's answer announces what it is: refused unless it is a digest, and this one.
            claimed = announced(call.url, manifest.media_type, header, "").digest
            if claimed != manifest.digest:
                raise DigestMismatch(str(ref), claimed, manifest.digest)
        return manifest

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """Store `data` at `ref`'s tag (else its digest) with Content-Type `media_type`.

        Returns the digest. Putting bytes already stored under another tag is a retag:
        no blob moves.
        """
        digest = sha256_digest(data)
        if ref.digest and ref.digest != digest:
            raise InputError(f"the manifest bytes have digest {digest}, not the {ref} asked for")
        pin = ref.tag or ref.digest
        if not pin:
            raise InputError(f"{ref} has neither a tag nor a digest to put a manifest at")
        call = Call(
            "PUT",
            ref.registry,
            self._session.url(ref.registry, f"{ref.repository}/manifests/{pin}"),
            (_push(ref),),
            headers={"Content-Type": media_type},
            content=data,
        )
        response = check(self._session.send(call), call, 201, 200)
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise DigestMismatch(str(ref), digest, announced)
        self._manifests.put(ref.name, Manifest(media_type, digest, data))
        if ref.tag:
            self._seen.wrote(ref.name, ref.tag, Descriptor(media_type, digest, len(data)))
        return digest

    def delete_manifest(self, ref: Reference) -> None:
        """Delete the manifest at `ref` (a tag is resolved to its digest first)."""
        digest = ref.digest
        if digest is None:
            found = self.head_manifest(ref)
            if found is None:
                raise ManifestNotFound(str(ref))
            digest = found.digest
        target = ref.with_digest(digest)
        call = Call("DELETE", ref.registry, self._manifest_url(target), (_scope(ref, "delete"),))
        response = self._session.send(call)
        if response.status_code == 404:
            raise ManifestNotFound(str(target))
        check(response, call, 202, 200)
        self._manifests.discard(ref.name, digest)
        self._seen.forget(ref.name, digest)

    def tag(self, ref: Reference, tag: str) -> str:
        """Put the manifest at `ref` (which must have a digest) under `tag`; returns the digest."""
        if not ref.digest:
            raise InputError(f"tagging needs a reference by digest, got {ref}")
        manifest = self.get_manifest(ref.with_digest(ref.digest))
        return self.put_manifest(ref.with_tag(tag), manifest.data, manifest.media_type)

    def list_tags(self, ref: Reference) -> list[str]:
        """Every tag of `ref`'s repository, sorted, following Link pagination.

        An unknown repository has no tags ([]).
        """
        url = self._session.url(ref.registry, f"{ref.repository}/tags/list")
        params: Sequence[tuple[str, str]] = [("n", str(TAGS_PAGE_SIZE))]
        tags: list[str] = []
        while True:
            call = Call("GET", ref.registry, url, (_pull(ref),), params=params)
            response = self._session.send(call)
            if response.status_code == 404 and not tags:
                return []
            check(response, call, 200)
            tags.extend(_tags_of(response, call))
            following = response.links.get("next", {}).get("url")
            if not following:
                return sorted(set(tags))
            url, params = str(response.url.join(following)), ()

    # -- blobs -------------------------------------------------------------------

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        """True if `ref`'s repository has the blob `digest`."""
        call = self._blob_call("HEAD", ref, digest)
        response = self._session.send(call)
        if response.status_code == 404:
            return False
        check(response, call, 200)
        return True

    def get_blob(self, ref: Reference, digest: str) -> bytes:
        """The content of blob `digest`, checked against it."""
        call = self._blob_call("GET", ref, digest)
        data = check(self._session.send(call), call, 200).content
        _verify_digest(data, digest, f"blob {digest} of {ref.name}")
        return data

    def upload_blob(self, ref: Reference, digest: str, source: BlobSource) -> None:
        """Upload a blob in one PUT (a file is streamed, not read into memory)."""
        check_digest(digest)
        self._upload(ref, digest, partial(_Payload.of, source))

    def mount_blob(self, ref: Reference, digest: str, from_repository: str) -> bool:
        """Mount blob `digest` from another repository of the same registry; False if refused."""
        check_digest(digest)
        location = self._mount(ref, digest, from_repository)
        if location is None:
            return True
        self._cancel_upload(ref, location)
        return False

    def ensure_blob(
        self,
        ref: Reference,
        digest: str,
        source: BlobSource,
        *,
        mount_from: Sequence[str] = (),
    ) -> bool:
        """Make sure `ref`'s repository has the blob: HEAD, then mount, then upload.

        Returns True only if bytes were uploaded.
        """
        check_digest(digest)
        return self._ensure(ref, digest, partial(_Payload.of, source), mount_from)

    # -- images --------------------------------------------------------------------

    def push_layout(
        self,
        layout_dir: Path,
        dst: Reference,
        *,
        annotations: Mapping[str, str] | None = None,
        mount_from: Sequence[str] = (),
    ) -> Manifest:
        """Push the one image of an OCI layout folder to `dst`'s repository, by digest only.

        Missing blobs are mounted from `mount_from` repositories when they have them,
        uploaded otherwise. `annotations` are merged into the manifest (a new digest).
        Any tag on `dst` is ignored: move tags with :meth:`tag` once the image is accepted.
        """
        image = read_image_layout(layout_dir)

        def blobs() -> None:
            for blob in image.manifest.blobs():
                payload = partial(_Payload.of, image.blob_path(blob.digest))
                self._ensure(dst, blob.digest, payload, mount_from)

        manifest = image.manifest
        if annotations:
            manifest = with_annotations(manifest, annotations)
        self._put_after_blobs(dst.with_digest(manifest.digest), manifest, blobs)
        return manifest

    def copy(self, src: Reference, dst: Reference) -> Manifest:
        """Copy an image or a whole index with its blobs to `dst`, keeping the digest.

        Within one registry blobs are mounted across repositories; between registries
        they are streamed from GET to upload. Manifests are put by digest, then under
        `dst`'s tag if it has one.
        """
        manifest = self.get_manifest(src)
        if dst.digest and dst.digest != manifest.digest:
            raise InputError(f"{src} has digest {manifest.digest}, not the one {dst} asks for")
        self._copy_tree(manifest, src, dst)
        if dst.tag:
            self.put_manifest(dst.with_tag(dst.tag), manifest.data, manifest.media_type)
        return manifest

    # -- internals -------------------------------------------------------------------

    def _copy_tree(self, manifest: Manifest, src: Reference, dst: Reference) -> None:
        target = dst.with_digest(manifest.digest)
        if self.head_manifest(target) is not None:
            return  # a registry only holds a manifest whose content it holds
        for child in manifest.children():
            self._copy_tree(self.get_manifest(src.with_digest(child.digest)), src, dst)
        same_registry = src.registry == dst.registry and src.repository != dst.repository
        mount_from = (src.repository,) if same_registry else ()

        def blobs() -> None:
            for blob in manifest.blobs():
                if not _is_foreign(blob):
                    self._ensure(dst, blob.digest, partial(self._remote, src, blob), mount_from)

        self._put_after_blobs(target, manifest, blobs)

    def _put_after_blobs(
        self, target: Reference, manifest: Manifest, blobs: Callable[[], None]
    ) -> None:
        """Send `manifest`'s blobs, then the manifest; when the registry does not see a blob
        it has just accepted, check them all again and put the manifest once more.

        distribution writes a blob's link in a repository in place, so a concurrent
        push of the same layer into the same repository can leave it unreadable for
        a moment, and the manifest is refused (`MANIFEST_BLOB_UNKNOWN`, with
        `DIGEST_INVALID`); object-store back ends are eventually consistent the same
        way. A manifest PUT by digest is idempotent, so it is retried with the
        session's backoff after the blobs were checked (and re-sent if missing).
        """
        refused: RegistryError | None = None
        for number in self._session.tries():
            blobs()
            try:
                self.put_manifest(target, manifest.data, manifest.media_type)
                return
            except RegistryError as exc:
                if exc.status != 400 or "MANIFEST_BLOB_UNKNOWN" not in exc.body:
                    raise
                refused = exc
                log.info("%s: the registry did not see a blob yet (try %d)", target, number + 1)
        assert refused is not None
        raise refused

    def _ensure(
        self,
        ref: Reference,
        digest: str,
        payload: Callable[[], _Payload],
        mount_from: Sequence[str],
    ) -> bool:
        if self.blob_exists(ref, digest):
            return False
        location: str | None = None
        for repository in mount_from:
            if repository == ref.repository:
                continue
            if location is not None:
                self._cancel_upload(ref, location)
            location = self._mount(ref, digest, repository)
            if location is None:
                return False
        self._upload(ref, digest, payload, location)
        return True

    def _upload(
        self,
        ref: Reference,
        digest: str,
        payload: Callable[[], _Payload],
        location: str | None = None,
    ) -> None:
        """Upload a blob in one session (`location`, or a new one), started over if it is lost.

        A PUT cut off mid-body leaves its session at an offset only the registry knows,
        so that PUT is never sent again as it is; a new session for the same digest is
        always safe (a blob is addressed by its content), and when only the answer was
        lost, the blob is there on the next attempt.
        """
        lost: RegistryFailure | None = None
        for number in self._session.tries():
            if number and self.blob_exists(ref, digest):
                return
            where = location if location and not number else self._start_upload(ref)
            lost = self._finish_upload(ref, where, digest, payload())
            if lost is None:
                return
        assert lost is not None
        raise lost

    def _start_upload(self, ref: Reference) -> str:
        call = self._uploads_call(ref, (), (_push(ref),))
        return _location(check(self._session.send(call), call, 202), call)

    def _mount(self, ref: Reference, digest: str, from_repository: str) -> str | None:
        """None when mounted (201); the upload location when the registry declined (202)."""
        source = Reference(ref.registry, from_repository)
        params = (("mount", digest), ("from", from_repository))
        call = self._uploads_call(ref, params, (_push(ref), _pull(source)))
        response = check(self._session.send(call), call, 201, 202)
        return None if response.status_code == 201 else _location(response, call)

    def _finish_upload(
        self, ref: Reference, location: str, digest: str, payload: _Payload
    ) -> RegistryFailure | None:
        """Complete an upload session in one PUT: None when stored, else why the session was lost.

        Lost means worth a new session: cut off, a 5xx, or a session the registry no
        longer knows (404: restarted, expired). Any other refusal is raised.
        """
        call = Call(
            "PUT",
            ref.registry,
            location,
            (_push(ref),),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(payload.size),
            },
            params=(("digest", digest),),
            content=payload.content,
            retry=False,
        )
        try:
            response = self._session.send(call)
        except RegistryUnreachable as exc:
            return exc
        if response.status_code == 201:
            return None
        error = failure(response, call)
        if is_transient(response.status_code) or response.status_code == 404:
            return error
        raise error

    def _cancel_upload(self, ref: Reference, location: str) -> None:
        """Abandon an upload session; the registry expires it anyway, so failures are ignored."""
        call = Call("DELETE", ref.registry, location, (_push(ref),))
        self._session.send(call).close()

    def _remote(self, ref: Reference, blob: Descriptor) -> _Payload:
        """A payload streamed from `ref`'s repository, one GET per attempt."""
        return _Payload(partial(self._remote_chunks, ref, blob.digest), blob.size)

    def _remote_chunks(self, ref: Reference, digest: str) -> Iterator[bytes]:
        import httpx

        call = self._blob_call("GET", ref, digest)
        with self._session.stream(call) as response:
            check(response, call, 200)
            try:
                yield from response.iter_bytes(CHUNK_SIZE)
            except httpx.HTTPError as exc:
                reason = describe_transport_error(exc)
                raise RegistryError(call.method, call.url, 0, reason) from None

    def _manifest_url(self, ref: Reference) -> str:
        pin = ref.digest or ref.tag
        if not pin:
            raise InputError(f"{ref} has neither a tag nor a digest")
        return self._session.url(ref.registry, f"{ref.repository}/manifests/{pin}")

    def _manifest_call(self, method: str, ref: Reference) -> Call:
        headers = {"Accept": ACCEPT_MANIFESTS}
        return Call(method, ref.registry, self._manifest_url(ref), (_pull(ref),), headers=headers)

    def _blob_call(self, method: str, ref: Reference, digest: str) -> Call:
        url = self._session.url(ref.registry, f"{ref.repository}/blobs/{check_digest(digest)}")
        return Call(method, ref.registry, url, (_pull(ref),))

    def _uploads_call(
        self, ref: Reference, params: Sequence[tuple[str, str]], scopes: tuple[str, ...]
    ) -> Call:
        url = self._session.url(ref.registry, f"{ref.repository}/blobs/uploads/")
        return Call("POST", ref.registry, url, scopes, params=params)


_UNSEEN: tuple[bool, Descriptor | None] = (False, None)


def _by_tag(ref: Reference) -> bool:
    """True when `ref` names a tag the registry resolves (not a digest, which cannot move)."""
    return bool(ref.tag) and not ref.digest


def _scope(ref: Reference, actions: str) -> str:
    return f"repository:{ref.repository}:{actions}"


def _pull(ref: Reference) -> str:
    return _scope(ref, "pull")


def _push(ref: Reference) -> str:
    return _scope(ref, "pull,push")


def _content_type(response: httpx.Response) -> str:
    return str(response.headers.get("Content-Type", "")).split(";", 1)[0].strip()


def _manifest_from(response: httpx.Response) -> Manifest:
    """A manifest from a GET answer: the header's media type unless it is a generic one."""
    return received(_content_type(response), response.content)


def _tags_of(response: httpx.Response, call: Call) -> list[str]:
    try:
        return [str(tag) for tag in response.json().get("tags") or []]
    except (ValueError, AttributeError, TypeError, RecursionError):
        raise RegistryError(call.method, call.url, response.status_code, response.text) from None


def _verify_digest(data: bytes, digest: str, what: str) -> None:
    if not matches(data, digest):
        raise DigestMismatch(what, digest, sha256_digest(data))


def _location(response: httpx.Response, call: Call) -> str:
    location = response.headers.get("Location")
    if not location:
        raise RegistryError(call.method, call.url, response.status_code, "no Location header")
    return str(response.url.join(location))


def _is_foreign(blob: Descriptor) -> bool:
    """Non-distributable layers (Windows bases) stay where they are."""
    return "foreign" in blob.media_type or "nondistributable" in blob.media_type


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            yield chunk
