"""The console's runner: one run at a time, duplicates coalesced, the run under way never joined."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from socle.errors import SocleError
from socle.serve.runner import Runner, RunRequest


def build(
    *keys: str,
    reason: str = "",
    trigger: str = "webhook",
    user: str | None = None,
    force: bool = False,
) -> RunRequest:
    return RunRequest("build", trigger, frozenset(keys), user, reason, force)


class Gate:
    """An execute that records each request and holds the first until released."""

    def __init__(self) -> None:
        self.ran: list[RunRequest] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: RunRequest) -> None:
        self.ran.append(request)
        self.started.set()
        assert self.release.wait(10)


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.release.set()


def test_a_request_covers_what_it_builds_too() -> None:
    assert build("a:1", "b:1").covers(build("a:1"))
    assert not build("a:1").covers(build("a:1", "b:1"))
    assert build().covers(build("a:1"))  # everything
    assert not build("a:1").covers(build())
    assert not build().covers(RunRequest("prune"))
    assert RunRequest("prune").covers(RunRequest("prune", user="ana"))
    assert not build("a:1").covers(build("a:1", force=True))  # a forced rebuild is more
    assert build("a:1", force=True).covers(build("a:1"))


def test_merging_builds_unites_their_variants_and_says_each_reason_once() -> None:
    merged = build("a:1", reason="push of x:1").merged(build("b:1", reason="push of y:1"))
    assert merged.only == {"a:1", "b:1"}
    assert merged.reason == "push of x:1; push of y:1"
    again = merged.merged(build("c:1", reason="push of x:1"))
    assert again.reason == "push of x:1; push of y:1"
    assert build("a:1").merged(build()).only == frozenset()  # everything wins
    assert not build("a:1").mergeable(build("b:1", trigger="serve", user="ana"))
    assert not build("a:1", user="ana").mergeable(build("b:1", user="bob"))
    assert not build("a:1").mergeable(RunRequest("promote"))


def test_duplicates_while_one_waits_make_one_run(gate: Gate) -> None:
    runner = Runner(gate)
    runner.start()
    try:
        assert runner.submit(build("busy:1", reason="first"))
        assert gate.started.wait(5)
        assert runner.submit(build("a:1", reason="push of p:1"))
        assert not runner.submit(build("a:1", reason="push of p:1"))  # covered
        assert not runner.submit(build("b:1", reason="push of q:1"))  # merged
        assert runner.coalesced == 2
        (waiting,) = runner.pending
        assert waiting.only == {"a:1", "b:1"}
        assert waiting.reason == "push of p:1; push of q:1"
        gate.release.set()
        assert runner.wait_idle(5)
    finally:
        runner.stop()
    assert [r.only for r in gate.ran] == [{"busy:1"}, {"a:1", "b:1"}]


def test_the_run_under_way_is_not_joined(gate: Gate) -> None:
    """It may have read the registry before the push: the same request queues once more."""
    runner = Runner(gate)
    runner.start()
    try:
        assert runner.submit(build("a:1"))
        assert gate.started.wait(5)
        assert runner.submit(build("a:1"))
        assert runner.running == build("a:1") and runner.pending == [build("a:1")]
        gate.release.set()
        assert runner.wait_idle(5)
    finally:
        runner.stop()
    assert len(gate.ran) == 2


def test_different_actions_and_users_queue_separately(gate: Gate) -> None:
    runner = Runner(gate)
    runner.submit(build("a:1"))
    runner.submit(RunRequest("prune", "serve", user="ana"))
    runner.submit(build("b:1", trigger="serve", user="ana"))
    runner.submit(RunRequest("prune", "serve", user="bob"))  # one prune is enough
    assert [(r.action, r.user) for r in runner.pending] == [
        ("build", None),
        ("prune", "ana"),
        ("build", "ana"),
    ]


def test_a_failing_run_does_not_stop_the_runner() -> None:
    ran: list[RunRequest] = []

    def execute(request: RunRequest) -> None:
        ran.append(request)
        if request.only == {"bad:1"}:
            raise SocleError("the build failed")
        if request.only == {"worse:1"}:
            raise RuntimeError("a bug")

    runner = Runner(execute)
    runner.start()
    try:
        runner.submit(build("bad:1"))
        runner.submit(RunRequest("prune"))
        runner.submit(RunRequest("promote"))
        assert runner.wait_idle(5)
        runner.submit(build("worse:1"))
        runner.submit(build("good:1", trigger="serve"))
        assert runner.wait_idle(5)
    finally:
        runner.stop()
    assert [r.action for r in ran] == ["build", "prune", "promote", "build", "build"]


def test_stop_is_safe_unstarted_twice_and_refuses_later_requests(gate: Gate) -> None:
    runner = Runner(gate)
    runner.submit(build("a:1"))
    runner.stop()  # never started: nothing to join
    runner.stop()
    assert runner.pending == []
    assert not runner.submit(build("b:1"))
    runner.start()  # after stop: stays stopped
    assert runner.idle() and gate.ran == []
