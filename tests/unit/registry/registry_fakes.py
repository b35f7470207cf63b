"""An in-memory distribution registry for `httpx.MockTransport`, for protocol unit tests.

It keeps the rules of CNCF distribution 2.8 that the client depends on: manifests
answered only for the media types in `Accept`, blob mounts (201) or fallback
uploads (202), monolithic uploads checked against their digest, Link pagination.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from socle.oci.media import INDEX_TYPES
from socle.registry.client import RegistryClient

HOST = "127.0.0.1:5000"
_ROUTE = re.compile(r"/v2/(?P<name>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags)/?(?P<rest>.*)")
_uuids = itertools.count(1)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{"code": code, "message": code.lower()}]})


@dataclass
class Repo:
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeRegistry:
    """One registry host: repositories, pending uploads and every request it saw."""

    repos: dict[str, Repo] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    page_size: int = 100

    def repo(self, name: str) -> Repo:
        return self.repos.setdefault(name, Repo())

    def seen(self, method: str, fragment: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and fragment in str(r.url)]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        match = _ROUTE.fullmatch(request.url.path)
        if not match:
            return error(404, "NOT_FOUND")
        name, kind, rest = match["name"], match["kind"], match["rest"]
        handler = getattr(self, f"_{kind.replace('/', '_')}_{request.method.lower()}", None)
        if handler is None:
            return error(405, "UNSUPPORTED")
        response: httpx.Response = handler(request, name, rest)
        return response

    # manifests
    def _manifests_head(self, request: httpx.Request, name: str, ref: str) -> httpx.Response:
        found = self._manifests_get(request, name, ref)
        return httpx.Response(found.status_code, headers=found.headers)

    def _manifests_get(self, request: httpx.Request, name: str, ref: str) -> httpx.Response:
        repo = self.repo(name)
        digest = repo.tags.get(ref, ref)
        if digest not in repo.manifests:
            return error(404, "MANIFEST_UNKNOWN")
        media_type, data = repo.manifests[digest]
        if media_type not in request.headers.get("Accept", ""):
            return error(404, "MANIFEST_UNKNOWN")  # what distribution 2.8 does for OCI types
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
        return httpx.Response(200, headers=headers, content=data)

    def _manifests_put(self, request: httpx.Request, name: str, ref: str) -> httpx.Response:
        repo, data = self.repo(name), request.read()
        media_type, digest = request.headers["Content-Type"], digest_of(data)
        doc = json.loads(data)
        needed = [d["digest"] for d in [doc.get("config", {}), *doc.get("layers", [])] if d]
        if media_type in INDEX_TYPES:
            needed = [d["digest"] for d in doc["manifests"]]
        if any(n not in repo.blobs and n not in repo.manifests for n in needed):
            return error(400, "MANIFEST_BLOB_UNKNOWN")
        repo.manifests[digest] = (media_type, data)
        if not ref.startswith("sha256:"):
            repo.tags[ref] = digest
        elif ref != digest:
            return error(400, "DIGEST_INVALID")
        return httpx.Response(201, headers={"Docker-Content-Digest": digest})

    def _manifests_delete(self, request: httpx.Request, name: str, ref: str) -> httpx.Response:
        repo = self.repo(name)
        if repo.manifests.pop(ref, None) is None:
            return error(404, "MANIFEST_UNKNOWN")
        repo.tags = {t: d for t, d in repo.tags.items() if d != ref}
        return httpx.Response(202)

    # blobs
    def _blobs_head(self, request: httpx.Request, name: str, digest: str) -> httpx.Response:
        data = self.repo(name).blobs.get(digest)
        if data is None:
            return httpx.Response(404)
        return httpx.Response(200, headers={"Content-Length": str(len(data))})

    def _blobs_get(self, request: httpx.Request, name: str, digest: str) -> httpx.Response:
        data = self.repo(name).blobs.get(digest)
        return httpx.Response(200, content=data) if data is not None else error(404, "BLOB_UNKNOWN")

    def _blobs_uploads_post(self, request: httpx.Request, name: str, _: str) -> httpx.Response:
        mount, source = request.url.params.get("mount"), request.url.params.get("from")
        if mount and source and mount in self.repo(source).blobs:
            self.repo(name).blobs[mount] = self.repo(source).blobs[mount]
            return httpx.Response(201, headers={"Docker-Content-Digest": mount})
        uuid = str(next(_uuids))
        self.uploads[uuid] = name
        return httpx.Response(
            202, headers={"Location": f"/v2/{name}/blobs/uploads/{uuid}?_state=s{uuid}"}
        )

    def _blobs_uploads_put(self, request: httpx.Request, name: str, uuid: str) -> httpx.Response:
        if self.uploads.pop(uuid, None) != name or request.url.params.get("_state") != f"s{uuid}":
            return error(404, "BLOB_UPLOAD_INVALID")
        data, digest = request.read(), request.url.params.get("digest", "")
        if digest_of(data) != digest:
            return error(400, "DIGEST_INVALID")
        self.repo(name).blobs[digest] = data
        return httpx.Response(201, headers={"Docker-Content-Digest": digest})

    def _blobs_uploads_delete(self, request: httpx.Request, name: str, uuid: str) -> httpx.Response:
        return httpx.Response(204 if self.uploads.pop(uuid, None) else 404)

    # tags
    def _tags_get(self, request: httpx.Request, name: str, _: str) -> httpx.Response:
        if name not in self.repos:
            return error(404, "NAME_UNKNOWN")
        size = int(request.url.params.get("n", self.page_size))
        last = request.url.params.get("last", "")
        tags = sorted(t for t in self.repos[name].tags if t > last)
        headers = {}
        if len(tags) > size:
            headers["Link"] = f'</v2/{name}/tags/list?n={size}&last={tags[size - 1]}>; rel="next"'
        return httpx.Response(200, json={"name": name, "tags": tags[:size]}, headers=headers)


@dataclass
class FakeHosts:
    """Several fake registries routed by host."""

    hosts: dict[str, FakeRegistry] = field(default_factory=dict)

    def __getitem__(self, host: str) -> FakeRegistry:
        return self.hosts.setdefault(host, FakeRegistry())

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return self[request.url.netloc.decode()](request)


MakeClient = Callable[..., RegistryClient]
