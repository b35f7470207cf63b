from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from socle import stack
from socle.errors import InputError, SocleError
from socle.stack import StackPaths, Webhook


@pytest.fixture
def paths(tmp_path: Path) -> StackPaths:
    root = tmp_path / "socle"
    root.mkdir()
    return StackPaths(root)


@pytest.fixture
def impostor(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running process that is not docker-registry (a reused pid, say)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_default_paths_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert StackPaths.default().root == tmp_path / "xdg" / "socle"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert StackPaths.default().root == tmp_path / "home" / ".local" / "share" / "socle"
    assert StackPaths.default(tmp_path / "elsewhere").root == tmp_path / "elsewhere"


def test_registry_config_keeps_data_in_the_data_folder(paths: StackPaths) -> None:
    config = yaml.safe_load(stack.render_registry_config(paths, "127.0.0.1:5000"))
    assert config["storage"]["filesystem"]["rootdirectory"] == str(paths.root / "registry")
    assert config["storage"]["delete"] == {"enabled": True}
    assert config["http"]["addr"] == "127.0.0.1:5000"
    assert "notifications" not in config


def test_registry_config_declares_webhooks(paths: StackPaths) -> None:
    hooks = [
        Webhook("http://127.0.0.1:8080/events", ("Authorization", "Bearer s3cret")),
        Webhook("http://127.0.0.1:9090/hook"),
    ]
    config = yaml.safe_load(stack.render_registry_config(paths, "127.0.0.1:5000", hooks))
    first, second = config["notifications"]["endpoints"]
    assert first == {
        "name": "socle-1",
        "url": "http://127.0.0.1:8080/events",
        "headers": {"Authorization": ["Bearer s3cret"]},
        "timeout": "5s",
        "threshold": 5,
        "backoff": "10s",
    }
    assert second["name"] == "socle-2" and "headers" not in second


def test_a_webhook_needs_an_http_url() -> None:
    with pytest.raises(InputError):
        Webhook("127.0.0.1:8080/events")


@pytest.mark.parametrize("addr", ["5000", "127.0.0.1:", ":5000", "127.0.0.1:99999", "host:port"])
def test_up_refuses_a_bad_address(paths: StackPaths, addr: str) -> None:
    with pytest.raises(InputError, match="HOST:PORT"):
        stack.up(paths, registry_addr=addr, docker=False)


def test_a_missing_registry_binary_points_at_make_setup(
    paths: StackPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "REGISTRY_BIN", "/nonexistent/docker-registry")
    monkeypatch.setattr(stack, "registry_answers", lambda addr: False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SocleError, match="docker-registry is not installed") as caught:
        stack.up(paths, registry_addr="127.0.0.1:1", docker=False)
    assert caught.value.hint is not None and "make setup" in caught.value.hint


def test_down_with_nothing_started_is_fine(paths: StackPaths) -> None:
    assert stack.down(paths) == ["dockerd: nothing to stop", "registry: nothing to stop"]


@pytest.mark.parametrize("content", ["", "not a pid", "999999999"])
def test_a_stale_pid_file_is_removed(paths: StackPaths, content: str) -> None:
    paths.pid_file("registry").write_text(content)
    assert stack.down(paths)[1] == "registry: already stopped (stale pid file removed)"
    assert not paths.pid_file("registry").exists()


def test_down_never_kills_a_pid_that_runs_another_program(
    paths: StackPaths, impostor: subprocess.Popen[bytes]
) -> None:
    paths.pid_file("registry").write_text(f"{impostor.pid}\n")
    assert stack.recorded_pid(paths, stack.REGISTRY) is None
    assert stack.down(paths)[1] == "registry: already stopped (stale pid file removed)"
    assert impostor.poll() is None


def test_another_docker_registry_is_not_ours(paths: StackPaths, tmp_path: Path) -> None:
    # Same program name, but it does not serve socle's config: someone else's registry.
    fake = tmp_path / "docker-registry"
    shutil.copy("/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "60"])
    try:
        paths.pid_file("registry").write_text(f"{proc.pid}\n")
        assert stack.recorded_pid(paths, stack.REGISTRY) is None
    finally:
        proc.kill()
        proc.wait()


def test_down_stops_the_program_it_recorded(paths: StackPaths, tmp_path: Path) -> None:
    fake = tmp_path / "dockerd"
    shutil.copy("/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "60"])
    paths.pid_file("dockerd").write_text(f"{proc.pid}\n")
    assert stack.recorded_pid(paths, stack.DOCKERD) == proc.pid
    assert stack.down(paths)[0] == f"dockerd: stopped (pid {proc.pid})"
    # down() reaped its own child, so /proc is the witness rather than the exit status.
    assert not Path(f"/proc/{proc.pid}").exists()
    assert not paths.pid_file("dockerd").exists()


def test_config_is_private_because_it_may_hold_webhook_secrets(
    paths: StackPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stop right after the config is written: no binary, nothing answers.
    monkeypatch.setattr(stack, "registry_answers", lambda addr: False)
    monkeypatch.setattr(stack, "_start", lambda *args, **kwargs: None)
    stack.up(
        paths, registry_addr="127.0.0.1:1", docker=False, notify=[Webhook("http://127.0.0.1:2/")]
    )
    assert stat.S_IMODE(paths.registry_config.stat().st_mode) == 0o600
    assert stack.configured_addr(paths) == "127.0.0.1:1"
