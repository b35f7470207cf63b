"""Image builders: one interface, one module per tool, listed by name in `BUILDERS`.

A tool's module is imported when its factory runs: the command line lists the
names for `--builder` without loading any of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from socle.builders.interface import (
    SETUP_HINT,
    Builder,
    BuildFailed,
    BuildRequest,
    BuildResult,
    RunResult,
)
from socle.errors import SocleError

__all__ = [
    "BUILDERS",
    "BuildFailed",
    "BuildRequest",
    "BuildResult",
    "Builder",
    "RunResult",
    "require_tools",
]


def require_tools(*tools: str) -> None:
    """Raise a :class:`SocleError` naming the first of `tools` that is not installed."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise SocleError(f"{tool} is not installed", hint=SETUP_HINT)


def _buildah() -> Builder:
    from socle.builders.buildah import BuildahBuilder

    require_tools("buildah")
    return BuildahBuilder()


def _docker() -> Builder:
    from socle.builders.docker import DockerBuilder

    require_tools("docker", "skopeo")
    return DockerBuilder()


BUILDERS: dict[str, Callable[[], Builder]] = {"buildah": _buildah, "docker": _docker}
