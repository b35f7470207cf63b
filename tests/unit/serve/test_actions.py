"""Write actions: nothing works without a login, the group and the CSRF token; a writer's queues.

The runner is not started (create_app(start=False)), so a queued request stays
in `console.runner.pending` where the test can see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from socle.serve import auth
from socle.serve.app import create_app
from socle.serve.console import TEMPLATES, Console
from socle.serve.pruning import PruneRequest
from socle.serve.runner import RunRequest
from tests.unit.serve.test_auth import OIDC, FakeProvider, log_in, make_console, session_of

WRITES = {
    "/actions/rebuild": {"key": "debian:9.5"},
    "/actions/promote": {"key": "debian:9.5"},
    "/actions/prune": {"keep": "2", "older-than": "30d"},
}


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    monkeypatch.setattr(auth, "make_provider", lambda _oidc: fake)
    return fake


@pytest.fixture
def console(tmp_path: Path, provider: FakeProvider) -> Iterator[Console]:
    console = make_console(tmp_path, OIDC)
    yield console
    console.store.close()


@pytest.fixture
def client(console: Console) -> Iterator[TestClient]:
    with TestClient(create_app(console, start=False), base_url="http://127.0.0.1:8080") as c:
        yield c


def writer(client: TestClient, provider: FakeProvider) -> str:
    log_in(client, provider, groups=["socle-admins"])
    token: str = session_of(client)["csrf"]
    return token


def post(client: TestClient, path: str, **data: Any) -> Any:
    return client.post(path, data=data, follow_redirects=False)


@pytest.mark.parametrize("path", sorted(WRITES))
def test_no_write_without_a_login(client: TestClient, console: Console, path: str) -> None:
    answer = post(client, path, **WRITES[path], csrf="anything")
    assert answer.status_code == 401
    assert "log in" in answer.text
    assert console.runner.pending == []


@pytest.mark.parametrize("path", sorted(WRITES))
def test_no_write_outside_the_group(
    client: TestClient, console: Console, provider: FakeProvider, path: str
) -> None:
    log_in(client, provider, groups=["other-team"])
    token = session_of(client)["csrf"]
    answer = post(client, path, **WRITES[path], csrf=token)
    assert answer.status_code == 403
    assert "not in the group 'socle-admins'" in answer.text
    assert console.runner.pending == []


@pytest.mark.parametrize("path", sorted(WRITES))
def test_no_write_without_the_csrf_token(
    client: TestClient, console: Console, provider: FakeProvider, path: str
) -> None:
    token = writer(client, provider)
    assert post(client, path, **WRITES[path]).status_code == 403
    assert post(client, path, **WRITES[path], csrf=token[:-1] + "x").status_code == 403
    assert post(client, path, **WRITES[path], csrf="").status_code == 403
    assert console.runner.pending == []


@pytest.mark.parametrize("path", sorted(WRITES))
def test_get_is_refused(client: TestClient, provider: FakeProvider, path: str) -> None:
    writer(client, provider)
    assert client.get(path, params=WRITES[path]).status_code == 405


@pytest.mark.parametrize("path", sorted(WRITES))
def test_read_only_console_refuses_every_write(tmp_path: Path, path: str) -> None:
    console = make_console(tmp_path, None)
    with TestClient(create_app(console, start=False)) as c:
        answer = c.post(path, data={**WRITES[path], "csrf": "x"}, follow_redirects=False)
    assert answer.status_code == 403
    assert "read-only" in answer.text
    assert console.runner.pending == []
    console.store.close()


def test_a_writers_rebuild_queues_a_request(
    client: TestClient, console: Console, provider: FakeProvider
) -> None:
    token = writer(client, provider)
    answer = post(client, "/actions/rebuild", key="debian:9.5", csrf=token)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/runs"
    assert console.runner.pending == [
        RunRequest(
            action="build",
            trigger="serve",
            only=frozenset({"debian:9.5"}),
            user="ana",
            reason="rebuild asked by ana in the console",
            force=True,
        )
    ]


def test_promote_and_prune_queue_with_their_policy(
    client: TestClient, console: Console, provider: FakeProvider
) -> None:
    token = writer(client, provider)
    assert post(client, "/actions/promote", csrf=token).status_code == 303
    answer = post(client, "/actions/prune", keep="2", **{"older-than": "30d"}, csrf=token)
    assert answer.status_code == 303
    promote, prune = console.runner.pending
    assert promote.action == "promote" and promote.only == frozenset() and promote.user == "ana"
    assert isinstance(prune, PruneRequest)
    assert prune.action == "prune" and prune.trigger == "prune" and prune.keep == 2
    assert prune.older_than is not None and prune.older_than.seconds == 30 * 86400
    assert prune.reason == "prune (keep 2, older than 30d) asked by ana"


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/actions/rebuild", {"key": "nope:1"}, "unknown variant 'nope:1'"),
        ("/actions/rebuild", {}, "the form needs a key"),
        ("/actions/promote", {"key": "nope:1"}, "unknown variant"),
        ("/actions/prune", {"keep": "0"}, "whole number from 1"),
        ("/actions/prune", {"keep": "two"}, "whole number from 1"),
        ("/actions/prune", {"older-than": "30 days"}, "invalid duration '30 days'"),
    ],
)
def test_bad_form_input_is_400_with_a_message(
    client: TestClient,
    console: Console,
    provider: FakeProvider,
    path: str,
    data: dict[str, str],
    message: str,
) -> None:
    token = writer(client, provider)
    answer = post(client, path, **data, csrf=token)
    assert answer.status_code == 400
    assert message in answer.text
    assert "Traceback" not in answer.text
    assert console.runner.pending == []


def test_buttons_partial_shows_forms_only_to_writers(console: Console) -> None:
    template = console.templates.get_template("actions_buttons.html")
    assert (TEMPLATES / "actions_buttons.html").exists()
    ana = auth.User("ana", "ana@example.com", ("socle-admins",), authorized=True)
    bob = auth.User("bob", "bob@example.com", ("other-team",), authorized=False)
    html = template.render(key="debian:9.5", user=ana, csrf="tok")
    assert 'action="/actions/rebuild"' in html and 'value="debian:9.5"' in html
    assert 'name="csrf" value="tok"' in html
    overview = template.render(key=None, user=ana, csrf="tok")
    assert 'action="/actions/prune"' in overview and "/actions/rebuild" not in overview
    outsider = template.render(key="debian:9.5", user=bob, csrf="tok")
    assert "<form" not in outsider and "may not rebuild" in outsider
    anonymous = template.render(key="debian:9.5", user=None, csrf="")
    assert "<form" not in anonymous and 'href="/auth/login"' in anonymous


class FakeRegistry:
    def __enter__(self) -> FakeRegistry:
        return self

    def __exit__(self, *_: object) -> None:
        pass


def test_prune_is_recorded_as_a_run_with_what_it_deleted(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socle import retention
    from socle.retention import Deletion, Doomed, PrunePlan, PruneResult, VariantPlan
    from socle.serve import pruning

    seen: dict[str, Any] = {}
    doomed = Doomed("my/debian", "sha256:" + "2" * 64, None, ())
    plan = PrunePlan("127.0.0.1", (VariantPlan("debian:9.5", "my/debian", (), (doomed,)),))

    def find(catalog: Any, graph: Any, client: Any, policy: Any, deployments: Any) -> PrunePlan:
        seen["policy"] = policy
        return plan

    def apply(plan: PrunePlan, client: Any, observer: Any) -> PruneResult:
        gone = (
            Deletion("my/debian", "sha256:" + "1" * 64, "signature"),
            Deletion("my/debian", "sha256:" + "2" * 64, "image"),
        )
        for deletion in gone:
            observer(deletion)
        return PruneResult(gone)

    monkeypatch.setattr(retention, "find_prunable", find)
    monkeypatch.setattr(retention, "apply_prune", apply)
    monkeypatch.setattr(pruning, "open_client", FakeRegistry)
    request = PruneRequest(user="ana", reason="prune asked by ana", keep=2)
    pruning.prune(console, request)
    assert seen["policy"].keep == 2 and seen["policy"].older_than is None
    (run,) = console.store.runs()
    assert (run.trigger, run.user, run.status) == ("prune", "ana", "succeeded")
    assert run.summary == (
        "prune (keep 2): deleted 2 manifests (1 generations); "
        "the registry's garbage collection frees the space"
    )
    lines = [e.message for e in console.store.events(run.id)]
    assert lines == [
        "prune: keep 2",
        f"deleted: signature sha256:{'1' * 64}",
        f"deleted: image sha256:{'2' * 64}",
    ]


def test_a_failed_prune_is_recorded_as_failed(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socle import retention
    from socle.errors import SocleError
    from socle.serve import pruning

    def find(*_args: Any) -> Any:
        raise SocleError("registry 127.0.0.1:1 refused the connection")

    monkeypatch.setattr(retention, "find_prunable", find)
    monkeypatch.setattr(pruning, "open_client", FakeRegistry)
    with pytest.raises(SocleError):
        pruning.prune(console, PruneRequest(user="ana", keep=3))
    (run,) = console.store.runs()
    assert run.status == "failed"
    assert run.summary == "registry 127.0.0.1:1 refused the connection"
