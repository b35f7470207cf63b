from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="session", autouse=True)
def history_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every `socle build` a test runs records into one throw-away SQLite, not the user's."""
    import os

    url = f"sqlite:///{tmp_path_factory.mktemp('history') / 'history.db'}"
    previous = os.environ.get("SOCLE_DB")
    os.environ["SOCLE_DB"] = url
    yield url
    if previous is None:
        os.environ.pop("SOCLE_DB", None)
    else:
        os.environ["SOCLE_DB"] = previous
