"""Registry push notifications, parsed: CNCF distribution's `notifications.endpoints`
events and Harbor's webhooks, each manifest push a :class:`Pushed` (pure).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from socle.core.cascade import Pushed
from socle.errors import SocleError
from socle.oci.media import MANIFEST_TYPES
from socle.oci.reference import is_digest

log = logging.getLogger(__name__)

DISTRIBUTION_EVENTS = (
    "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json",  # distribution 3
)
HARBOR_EVENTS = "application/json"
# Old registries still announce schema1 manifests; they are manifests all the same.
_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MANIFEST_MEDIA_TYPES = frozenset((*MANIFEST_TYPES, *_SCHEMA1))


class BadNotification(SocleError):
    """A notification body that is not what a registry sends (answered with 400)."""


@dataclass(frozen=True)
class Delivery:
    """One push as a notification delivered it.

    `event` is the registry's id for the event (distribution's `id`), which a
    retry of the same notification repeats; None when the format has none (Harbor).
    """

    push: Pushed
    event: str | None = None


# -- parsing -------------------------------------------------------------------------


def parse_notification(content_type: str, body: bytes) -> list[Pushed]:
    """The pushes in a notification body; raise :class:`BadNotification` if it is malformed.

    `content_type` must be one of :data:`DISTRIBUTION_EVENTS` or
    :data:`HARBOR_EVENTS` (checked by the caller).
    """
    return [delivery.push for delivery in parse_deliveries(content_type, body)]


def parse_deliveries(content_type: str, body: bytes) -> list[Delivery]:
    """The pushes in a notification body, each with the registry's id for its event."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested too deep
        raise BadNotification(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadNotification("the body is not a JSON object")
    if "events" in payload or media_type(content_type) in DISTRIBUTION_EVENTS:
        return distribution_deliveries(payload)
    return [Delivery(push) for push in harbor_pushes(payload)]


def distribution_deliveries(payload: Mapping[str, Any]) -> list[Delivery]:
    """Manifest pushes in a CNCF distribution envelope `{"events": [...]}`, with their ids.

    Pulls, mounts, deletes and blob pushes are not pushes of an image: ignored.
    """
    events = payload.get("events")
    if not isinstance(events, list):
        raise BadNotification('a distribution notification needs an "events" list')
    return [found for event in events if (found := _distribution_push(event)) is not None]


def _distribution_push(event: object) -> Delivery | None:
    if not isinstance(event, dict) or event.get("action") != "push":
        return None
    target = event.get("target")
    if not isinstance(target, dict) or not _is_manifest_type(target.get("mediaType")):
        return None
    request = event.get("request")
    host = request.get("host") if isinstance(request, dict) else None
    push = _pushed(target.get("repository"), target.get("tag"), target.get("digest"), host)
    if push is None:
        return None
    event_id = event.get("id")
    return Delivery(push, event_id if isinstance(event_id, str) and event_id else None)


def _is_manifest_type(media_type: object) -> bool:
    """True for a manifest's media type (a list or an object is none: it is not hashable)."""
    return isinstance(media_type, str) and media_type in MANIFEST_MEDIA_TYPES


def harbor_pushes(payload: Mapping[str, Any]) -> list[Pushed]:
    """Artifact pushes in a Harbor webhook (`{"type": "PUSH_ARTIFACT", "event_data": ...}`).

    Other Harbor event types (pulls, deletes, scans, quotas...) are ignored.
    """
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise BadNotification('a Harbor webhook needs a "type"')
    if kind != "PUSH_ARTIFACT":
        return []
    data = payload.get("event_data")
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise BadNotification('a Harbor push needs "event_data" with a "resources" list')
    repository = data.get("repository")
    name = repository.get("repo_full_name") if isinstance(repository, dict) else None
    pushes = []
    for resource in data["resources"]:
        if not isinstance(resource, dict):
            raise BadNotification("a Harbor resource is not a JSON object")
        host = _registry_of(resource.get("resource_url"))
        push = _pushed(name, resource.get("tag"), resource.get("digest"), host)
        if push is not None:
            pushes.append(push)
    return pushes


def _registry_of(resource_url: object) -> str | None:
    """The registry host in a Harbor resource URL (`host/project/name:tag`), if it has one."""
    if not isinstance(resource_url, str):
        return None
    first, sep, _ = resource_url.partition("/")
    looks_like_host = "." in first or ":" in first or first == "localhost"
    return first if sep and looks_like_host else None


def _pushed(repository: object, tag: object, digest: object, host: object) -> Pushed | None:
    """A Pushed from loosely typed fields, or None (logged) when they do not make one."""
    if not isinstance(repository, str) or not repository:
        log.warning("ignored a push without a repository")
        return None
    if not isinstance(digest, str) or not is_digest(digest):
        log.warning("ignored a push to %s without a valid digest: %r", repository, digest)
        return None
    # Harbor names a push by digest with the digest as its tag.
    tag = tag if isinstance(tag, str) and tag and not is_digest(tag) else None
    return Pushed(repository, tag, digest, host if isinstance(host, str) and host else None)


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


# -- authentication ------------------------------------------------------------------
