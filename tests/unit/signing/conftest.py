"""Fixtures for the signing unit tests: the in-memory registry and key pairs made once."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing import SigningKey
from tests.unit.registry.registry_fakes import HOST, FakeRegistry
from tests.unit.signing.signing_helpers import new_key, push_tiny_image

Keys = tuple[bytes, bytes, SigningKey]


@pytest.fixture(scope="session")
def keys() -> Keys:
    """Our key pair: (encrypted private PEM, public PEM, signing key)."""
    return new_key()


@pytest.fixture(scope="session")
def other_keys() -> Keys:
    """Someone else's key pair."""
    return new_key("another passphrase")


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def client(fake: FakeRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(transport=httpx.MockTransport(fake), sleep=lambda _: None) as made:
        yield made


@pytest.fixture
def image(client: RegistryClient) -> Reference:
    """A tiny image pushed as HOST/team/app:1, by digest."""
    return push_tiny_image(client, Reference.parse(f"{HOST}/team/app:1"))
