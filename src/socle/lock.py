"""One run at a time per catalog and registry.

An advisory `flock` on a file named after the catalog path and the registry:
the kernel releases it when the holder dies (even on SIGKILL or power loss),
so there are no stale locks to clean. The file records who holds it, for the
message the next run shows.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from socle.errors import SocleError


class Busy(SocleError):
    """Another run holds the lock."""


class RunLock:
    """Context manager holding the lock for (catalog, registry)."""

    def __init__(self, folder: Path, catalog: Path, registry: str) -> None:
        key = hashlib.sha256(f"{catalog.resolve()}\n{registry}".encode()).hexdigest()[:16]
        self.path = folder / f"run-{key}.lock"
        self.catalog = catalog
        self.registry = registry
        self._handle: IO[str] | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = describe(handle.read())
            handle.close()
            raise Busy(
                f"another socle run holds {self.catalog} on {self.registry}: {holder}",
                hint="wait for it to finish; the lock is released when that process ends",
            ) from None
        handle.seek(0)
        handle.truncate()
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(["socle", *sys.argv[1:]]),
        }
        handle.write(json.dumps(record))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None


def describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']} since {holder['started']} ({holder['command']})"
    except (ValueError, KeyError, TypeError):
        return "a process that left no details"
