from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CatalogWriter = Callable[..., Path]


@pytest.fixture
def write_catalog(tmp_path: Path) -> CatalogWriter:
    """Write a catalog (dedented) plus a Dockerfile in each named context folder."""

    def write(text: str, contexts: tuple[str, ...] = ()) -> Path:
        for name in contexts:
            folder = tmp_path / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
        path = tmp_path / "catalog.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write
