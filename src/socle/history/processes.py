"""Is the process that started a run still alive? (A run whose process died stays "running".)

A run records the host name, the pid and, on Linux, the process's identity:
the kernel's boot id, the pid namespace and the process's start time (field 22
of `/proc/PID/stat`). A pid alone is not enough: after the process dies the
kernel may hand the same number to another process, and after a power loss
every pid of the last boot means nothing. Without `/proc` (not Linux) only
`os.kill(pid, 0)` is asked, so a reused pid keeps a dead run "running" there.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

PROC = Path("/proc")


def host_name() -> str:
    return socket.gethostname()[:255]


def identity(pid: int) -> str | None:
    """`BOOT_ID PID_NAMESPACE START_TIME` of a live process, or None (no /proc, or gone)."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(PROC / str(pid) / "ns" / "pid")
        start = _stat(pid)[19]  # field 22, counted from the state (field 3)
    except (OSError, IndexError):
        return None
    return f"{boot} {namespace} {start}"


def alive(pid: int, recorded: str | None) -> bool:
    """Whether the process that recorded `recorded` (its identity) as `pid` still runs.

    When unsure (another pid namespace: a container sharing the host name) the
    answer is yes: a live run must never be marked dead.
    """
    if recorded is not None and (mine := identity(os.getpid())) is not None:
        boot, namespace, _start = (recorded.split(" ") + ["", "", ""])[:3]
        my_boot, my_namespace, _ = mine.split(" ")
        if boot != my_boot:
            return False  # the machine restarted since: nothing of that boot runs
        if namespace != my_namespace:
            return True  # its pids are not ours to look up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user's process
    try:
        if _stat(pid)[0] == "Z":
            return False  # a zombie: dead, only not yet reaped by its parent
    except (OSError, IndexError):
        return True  # no /proc: the pid exists, that is all we can tell
    return recorded is None or identity(pid) == recorded


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    text = (PROC / str(pid) / "stat").read_text()
    return text[text.rindex(")") + 2 :].split()
