"""Fakes for builder unit tests: a recording `run()` and a minimal OCI layout.

Offered as fixtures so the tests work whatever pytest import mode is used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from socle.process import CommandError, Completed

Handler = Callable[[list[str]], Completed]


class FakeRun:
    """Records every command; `handler` decides what each one prints or raises."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.calls: list[tuple[list[str], dict[str, Any]]] = []
        self._handler = handler or (lambda cmd: Completed("", ""))

    def __call__(self, cmd: Sequence[str], **kwargs: Any) -> Completed:
        self.calls.append((list(cmd), kwargs))
        return self._handler(list(cmd))

    @property
    def commands(self) -> list[list[str]]:
        return [cmd for cmd, _ in self.calls]


def write_layout(path: Path, manifests: int = 1) -> None:
    """A minimal OCI layout index with `manifests` entries (no blobs: not needed here)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entries = [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": f"sha256:{i:064x}",
            "size": 1,
        }
        for i in range(manifests)
    ]
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))


def failure(cmd: list[str], code: int, stdout: str, stderr: str) -> CommandError:
    return CommandError(cmd, code, stdout, stderr)


@pytest.fixture
def fake_run() -> type[FakeRun]:
    return FakeRun


@pytest.fixture
def layout() -> Callable[[Path, int], None]:
    return write_layout


@pytest.fixture
def command_error() -> Callable[[list[str], int, str, str], CommandError]:
    return failure
