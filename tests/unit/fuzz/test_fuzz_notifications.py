"""Fuzz registry push notifications and Harbor webhooks (the receiver answers 400 to a refusal).

The property: a body gives pushes whose fields are well-formed, or BadNotification.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from socle.core.cascade import Pushed
from socle.oci.reference import is_digest
from socle.watch.notifications import DISTRIBUTION_EVENTS, HARBOR_EVENTS, parse_notification
from tests.unit.fuzz.mutations import FUZZ, json_bytes, refuses_cleanly

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
DISTRIBUTION: dict[str, Any] = {
    "events": [
        {
            "id": "1",
            "timestamp": "2026-01-01T00:00:00Z",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": D1,
                "size": 100,
                "repository": "my/debian",
                "tag": "12",
            },
            "request": {"host": "127.0.0.1:5000", "method": "PUT"},
        },
        {"action": "pull", "target": {"repository": "my/java", "digest": D2}},
    ]
}
HARBOR: dict[str, Any] = {
    "type": "PUSH_ARTIFACT",
    "occur_at": 1767225600,
    "operator": "admin",
    "event_data": {
        "resources": [
            {"digest": D1, "tag": "12", "resource_url": "harbor.test:8443/base/debian:12"},
            {"digest": D2, "tag": D2, "resource_url": f"harbor.test:8443/base/debian@{D2}"},
        ],
        "repository": {"name": "debian", "namespace": "base", "repo_full_name": "base/debian"},
    },
}
CONTENT_TYPES = st.sampled_from([*DISTRIBUTION_EVENTS, HARBOR_EVENTS, f"{HARBOR_EVENTS}; charset=utf-8"])


def check(content_type: str, body: bytes) -> None:
    found = refuses_cleanly(lambda: parse_notification(content_type, body))
    if isinstance(found, list):
        for push in found:
            assert isinstance(push, Pushed)
            assert isinstance(push.repository, str) and push.repository
            assert is_digest(push.digest)
            assert push.tag is None or isinstance(push.tag, str)
            assert push.registry is None or isinstance(push.registry, str)
            str(push)


def test_the_seeds_are_pushes() -> None:
    assert len(parse_notification(DISTRIBUTION_EVENTS[0], json_seed(DISTRIBUTION))) == 1
    assert len(parse_notification(HARBOR_EVENTS, json_seed(HARBOR))) == 2


def json_seed(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


@FUZZ
@given(CONTENT_TYPES, json_bytes(DISTRIBUTION))
@example(DISTRIBUTION_EVENTS[0], b"[" * 100_000)  # RecursionError: nested too deep
@example(DISTRIBUTION_EVENTS[0], b'{"events": [{"action": "push", "target": {"mediaType": []}}]}')
# ^ TypeError: unhashable type 'list' (a media type looked up in a frozenset)
def test_distribution_notifications(content_type: str, body: bytes) -> None:
    check(content_type, body)


@FUZZ
@given(CONTENT_TYPES, json_bytes(HARBOR))
@example(HARBOR_EVENTS, b'{"type": "PUSH_ARTIFACT", "event_data": ' + b'{"a": ' * 50_000)
def test_harbor_webhooks(content_type: str, body: bytes) -> None:
    check(content_type, body)
