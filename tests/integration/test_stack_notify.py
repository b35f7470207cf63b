"""`socle up --notify`: the local registry is configured to call `socle watch`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import free_port
from tests.integration.helpers import socle

pytestmark = pytest.mark.integration


def test_up_configures_notifications_with_the_shared_secret(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("hunter2-but-longer\n")
    data = tmp_path / "data"
    addr = f"127.0.0.1:{free_port()}"
    receiver = f"http://127.0.0.1:{free_port()}/"
    refused = socle("up", "--data-dir", str(data), "--registry-addr", addr, "--notify", receiver)
    assert refused.returncode == 2 and "--notify-secret-file" in refused.stderr
    started = socle(
        "up",
        "--data-dir",
        str(data),
        "--registry-addr",
        addr,
        "--notify",
        receiver,
        "--notify-secret-file",
        str(secret),
    )
    try:
        assert started.returncode == 0, started.stderr
        assert f"registry: started on {addr}" in started.stdout
        config = yaml.safe_load((data / "registry.yml").read_text())
        [endpoint] = config["notifications"]["endpoints"]
        assert endpoint["url"] == receiver
        assert endpoint["headers"] == {"Authorization": ["Bearer hunter2-but-longer"]}
        assert oct((data / "registry.yml").stat().st_mode & 0o777) == "0o600"  # it holds the secret
    finally:
        stopped = socle("down", "--data-dir", str(data))
    assert "registry: stopped" in stopped.stdout
