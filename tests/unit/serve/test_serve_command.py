"""`socle serve` refuses bad starts with one line and a non-zero exit, before serving anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from socle.history.store import HistoryStore
from tests.conftest import ROOT

CATALOG = ROOT / "examples" / "seed" / "catalog.yaml"


def serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socle", "serve", "-c", str(CATALOG), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_a_non_loopback_address_needs_public(tmp_path: Path) -> None:
    done = serve("--listen", "192.0.2.10:8080", "--db", f"sqlite:///{tmp_path}/h.db", cwd=tmp_path)
    assert done.returncode == 2
    assert "is not a loopback address" in done.stderr
    assert "--public" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_listen_value_that_is_no_address_is_refused(tmp_path: Path) -> None:
    done = serve("--listen", "8080", cwd=tmp_path)
    assert done.returncode == 2
    assert "is not HOST:PORT" in done.stderr


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = serve(
        "--listen",
        "127.0.0.1:1",
        "--db",
        "postgresql+psycopg://socle:pw-42@127.0.0.1:1/s",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    first, *rest = done.stderr.strip().splitlines()
    assert first.startswith("cannot open the history database")
    assert all(line.startswith("hint:") for line in rest)
    assert "pw-42" not in done.stderr


def test_a_database_from_a_newer_socle_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    HistoryStore.open(url).close()
    with create_engine(url).begin() as connection:
        connection.execute(text("update alembic_version set version_num = 'f00d'"))
    done = serve("--listen", "127.0.0.1:1", "--db", url, cwd=tmp_path)
    assert done.returncode == 1
    assert "was migrated by a newer socle (schema revision f00d" in done.stderr


def test_oidc_needs_its_secret_and_group(tmp_path: Path) -> None:
    done = serve("--oidc-issuer", "http://127.0.0.1:5556/dex", cwd=tmp_path)
    assert done.returncode == 2
    assert "--oidc-issuer needs --oidc-client-secret-file and --oidc-group" in done.stderr
