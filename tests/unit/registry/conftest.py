"""Fixtures for the registry client's unit tests (fakes live in registry_fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from socle.registry.client import RegistryClient
from tests.unit.registry.registry_fakes import FakeRegistry, MakeClient


@pytest.fixture
def fake() -> FakeRegistry:
    """The fake registry at HOST."""
    return FakeRegistry()


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """A client on a mock transport (handler: a FakeRegistry or any function), no real sleeps."""
    made: list[RegistryClient] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response], **options: object
    ) -> RegistryClient:
        options.setdefault("sleep", lambda _: None)
        client = RegistryClient(transport=httpx.MockTransport(handler), **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
