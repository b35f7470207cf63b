"""A real PostgreSQL cluster of the test session's own (Debian's `postgresql` package).

The cluster lives in a throw-away folder, listens only on 127.0.0.1 at a free
port (its unix socket in that folder), and asks a password of every
connection. initdb refuses to run as root, so as root the server runs as
`nobody`. Each test gets a fresh database: `postgres.database()`.

Use it from a test module with::

    from tests.integration.postgres import postgres_cluster  # noqa: F401  (fixture `postgres`)
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "socle"


class Postgres:
    """A running cluster: `url(db)` for SQLAlchemy, `database()` for a new empty database."""

    def __init__(self, root: Path) -> None:
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not (PG_BIN / tool).exists():
                pytest.fail(f"{PG_BIN / tool} is missing: apt-get install postgresql (make setup)")
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.log = root / "postgres.log"
        self._as_nobody = os.geteuid() == 0
        self._count = 0
        pwfile = root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_nobody:
            os.chown(root, 65534, 65534)
            os.chown(pwfile, 65534, 65534)
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={root} -c fsync=off -c max_connections=50"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "nobody", "--"] if self._as_nobody else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, cwd=self.root
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            pytest.fail(f"{command[0]} failed: {done.stderr.strip()}\n{log[-2000:]}")

    def url(self, database: str = "postgres", *, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        self._count += 1
        name = f"socle_test_{self._count}_{secrets.token_hex(3)}"
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="session", name="postgres")
def postgres_cluster() -> Iterator[Postgres]:
    # Not under pytest's tmp folders: as root they are closed to `nobody`, who runs the server.
    root = Path(tempfile.mkdtemp(prefix="socle-pg-"))
    try:
        cluster = Postgres(root)
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        for _ in range(3):
            shutil.rmtree(root, ignore_errors=True)
            if not root.exists():
                break
            time.sleep(0.5)
