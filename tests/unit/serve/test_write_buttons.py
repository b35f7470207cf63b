"""The write actions' buttons on the pages: writers see forms, others a line saying why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from socle.serve import auth
from socle.serve.app import create_app
from socle.serve.console import Console
from tests.unit.serve.test_auth import OIDC, FakeProvider, log_in, make_console, session_of
from tests.unit.serve.test_pages import state

PAGES = ("/", "/runs", "/images/debian:9.5")


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    monkeypatch.setattr(auth, "make_provider", lambda _oidc: fake)
    return fake


@pytest.fixture
def client(tmp_path: Path, provider: FakeProvider) -> Iterator[TestClient]:
    console: Console = make_console(tmp_path, OIDC)
    console.store.replace_states(console.catalog_key, [state("debian:9.5", "stale")])
    with TestClient(create_app(console, start=False), base_url="http://127.0.0.1:8080") as c:
        yield c
    console.store.close()


def forms(html: str) -> dict[str, str]:
    """Each write form's action and its body."""
    return dict(
        re.findall(r'<form method="post" action="(/actions/[a-z]+)"(.*?)</form>', html, re.S)
    )


def test_a_visitor_is_asked_to_log_in(client: TestClient) -> None:
    for path in PAGES:
        html = client.get(path).text
        assert forms(html) == {}, path
        assert "to rebuild, promote or prune" in html and 'href="/auth/login"' in html, path


def test_a_user_outside_the_group_is_told_why(client: TestClient, provider: FakeProvider) -> None:
    log_in(client, provider, groups=["other-team"])
    for path in PAGES:
        html = client.get(path).text
        assert forms(html) == {} and "may not rebuild, promote or prune" in html, path


def test_a_writer_sees_rebuild_and_promote_on_the_image_and_prune_on_the_lists(
    client: TestClient, provider: FakeProvider
) -> None:
    log_in(client, provider, groups=["socle-admins"])
    token = session_of(client)["csrf"]
    image = forms(client.get("/images/debian:9.5").text)
    assert sorted(image) == ["/actions/promote", "/actions/rebuild"]
    assert 'name="key" value="debian:9.5"' in image["/actions/rebuild"]
    assert f'name="csrf" value="{token}"' in image["/actions/rebuild"]
    for path in ("/", "/runs"):
        found = forms(client.get(path).text)
        assert sorted(found) == ["/actions/promote", "/actions/prune"], path
        assert 'name="keep"' in found["/actions/prune"]
        assert 'name="older-than"' in found["/actions/prune"]
        assert 'name="key"' not in found["/actions/promote"]  # every complete family
    # the form posts where the button says, and the run is queued
    answer = client.post(
        "/actions/rebuild", data={"key": "debian:9.5", "csrf": token}, follow_redirects=False
    )
    assert answer.status_code == 303
