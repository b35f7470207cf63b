"""Errors of the registry client, each with a message and a hint for the user.

httpx errors are translated where they arise (in :mod:`socle.registry.session`),
so callers only ever see these.
"""

from __future__ import annotations

import json

from socle.errors import SocleError

BODY_EXCERPT = 300


class RegistryFailure(SocleError):
    """Base of every error the registry client raises."""


class RegistryUnreachable(RegistryFailure):
    """The registry did not answer (connection refused, DNS, timeout...)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the registry at {url}: {reason}",
            hint="start the local registry with `socle up`, or check --registry / SOCLE_REGISTRY",
        )
        self.url = url


class AuthenticationFailed(RegistryFailure):
    """The registry refused our credentials, or we had none and it wants some."""

    def __init__(self, registry: str, detail: str) -> None:
        super().__init__(
            f"authentication to {registry} failed: {detail}", hint=f"run `docker login {registry}`"
        )
        self.registry = registry


class ManifestNotFound(RegistryFailure):
    """No manifest under this tag or digest."""

    def __init__(self, reference: str) -> None:
        super().__init__(
            f"manifest not found: {reference}",
            hint="check the name and the tag; the image may not have been pushed yet",
        )
        self.reference = reference


class RegistryError(RegistryFailure):
    """The registry answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        message = f"{method} {url} failed" + (f" with HTTP {status}" if status else "")
        detail = describe_body(body)
        if detail:
            message += f": {detail}"
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.body = body


def describe_body(body: str) -> str:
    """The distribution `{"errors": [...]}` codes and messages, else an excerpt of the body."""
    try:
        errors = json.loads(body)["errors"]
        parts = [f"{e.get('code', '?')}: {e.get('message', '')}".rstrip(": ") for e in errors]
    except (ValueError, KeyError, TypeError, AttributeError):
        text = " ".join(body.split())
        return text[:BODY_EXCERPT] + ("..." if len(text) > BODY_EXCERPT else "")
    return "; ".join(parts)
