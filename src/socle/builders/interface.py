"""The builder edge: what socle asks of an image builder, whatever the tool.

A builder turns a Dockerfile and a digest-pinned parent into an OCI image
layout on disk (one image manifest), and can load such a layout locally and
run a command in it without network for the image's tests.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from socle.errors import InputError, SocleError
from socle.process import tail_of

SETUP_HINT = "run `make setup` (installs docker.io docker-registry buildah skopeo mmdebstrap)"
# The label that records a reproducible build's SOURCE_DATE_EPOCH, for `socle rebuild` to read.
EPOCH_LABEL = "io.github.socle.source-date-epoch"
EPOCH_ARG = "SOURCE_DATE_EPOCH"
# The build argument that names the parent image (by digest), as socle's Dockerfiles take it.
BASE_ARG = "BASE_IMAGE"

# "STEP 2/3: RUN ..." (buildah) and "Step 2/3 : RUN ..." (docker's builder).
_STEP_LINE = re.compile(r"^\s*step \d+/\d+\s*:\s*(?P<step>.+)$", re.IGNORECASE)
# Terminal colours (docker's builder paints a step's stderr red even into a pipe).
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class BuildRequest:
    """One image to build from a Dockerfile; `output` receives an OCI image layout."""

    context: Path
    dockerfile: Path
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    name: str
    output: Path
    insecure_registries: tuple[str, ...] = ()
    source_date_epoch: int | None = None
    """None: the builder's own times. Else the build is reproducible: the epoch is passed
    as the SOURCE_DATE_EPOCH build argument and recorded in the EPOCH_LABEL label, and
    the layers the build added are normalised (`socle.builders.normalise`)."""

    def effective_build_args(self) -> dict[str, str]:
        """The build arguments, with SOURCE_DATE_EPOCH for a reproducible build."""
        args = dict(self.build_args)
        if self.source_date_epoch is not None:
            args.setdefault(EPOCH_ARG, str(self.source_date_epoch))
        return args

    def effective_labels(self) -> dict[str, str]:
        """The labels, with the recorded epoch for a reproducible build."""
        labels = dict(self.labels)
        if self.source_date_epoch is not None:
            labels[EPOCH_LABEL] = str(self.source_date_epoch)
        return labels

    @property
    def base(self) -> str | None:
        """The parent image the Dockerfile builds on (its BASE_IMAGE argument), if named."""
        return self.build_args.get(BASE_ARG) or None

    platform: str | None = None  # `linux/arm64/v8`: another architecture, run under emulation
    base_recorded_as: str | None = None
    """The parent's name the image records where the builder names its base (buildah's
    history comment "FROM NAME"): the executor builds a child on a local copy of a
    parent built in the same run, and the image must not depend on that copy's name."""
    apt_preferences: Path | None = None
    """A folder mounted read-only as /etc/apt/preferences.d during the RUN steps (buildah
    only): `socle rebuild` pins there the package versions the published image holds."""


@dataclass(frozen=True)
class BuildResult:
    """Where the built image was written, and the end of the build log."""

    layout: Path
    log_tail: str


@dataclass(frozen=True)
class RunResult:
    """What a command run in a container did; a non-zero exit is a result, not an error."""

    exit_code: int
    stdout: str
    stderr: str = field(default="")


class Builder(Protocol):
    """An image builder; implementations are listed by name in `socle.builders.BUILDERS`."""

    name: str

    def build(self, request: BuildRequest) -> BuildResult:
        """Build the image and write it to `request.output`; raise :class:`BuildFailed`."""
        ...

    def load(self, layout: Path, name: str) -> None:
        """Make the image of an OCI layout runnable locally under `name`."""
        ...

    def run(
        self,
        name: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        network: str = "none",
    ) -> RunResult:
        """Run `command` in a throw-away container of `name`.

        `network` is "none" (tests) or "host" (to reach the host-configured
        apt mirror, as builds do); anything else is an :class:`InputError`.
        """
        ...

    def remove(self, *names: str) -> None:
        """Forget the local images `names`, in one go (no error for one already gone)."""
        ...


class BuildFailed(SocleError):
    """A build stopped on an error; the message names the image, the step and the log tail."""

    def __init__(self, image: str, log: str, *, step: str | None = None) -> None:
        self.image = image
        self.step = step if step is not None else failing_step(log)
        where = f" at step `{self.step}`" if self.step else ""
        tail = tail_of(log)
        message = f"build of {image} failed{where}"
        if tail:
            message += "\n" + tail
        super().__init__(message, hint="fix the Dockerfile step above, or its build arguments")


def failing_step(log: str) -> str | None:
    """The last Dockerfile step a build log announced, which is where it stopped."""
    steps = [m["step"].strip() for m in map(_STEP_LINE.match, log.splitlines()) if m]
    return steps[-1] if steps else None


def build_log(stdout: str, stderr: str, *, lines: int = 40) -> str:
    """A compact log of a build: the end of its output, then the end of its errors.

    Builders print step output on stdout and their own errors on stderr, so
    keeping the tail of each shows both the failing command's words and the
    builder's verdict even when one stream is long (layer pulls, for instance).
    """
    out = _lines(stdout)[-lines:]
    err = _lines(stderr)[-max(lines // 4, 5) :]
    return "\n".join(out + err)


def _lines(text: str) -> list[str]:
    return [line for line in _ANSI.sub("", text).splitlines() if line.strip()]


def prepare_output(output: Path) -> None:
    """Make room for a fresh OCI layout at `output` without clobbering anything else.

    Writing into an existing layout would add a second manifest to its index,
    so a previous layout is removed; any other non-empty folder is refused.
    """
    oci_reference(output)  # refuse an unusable path before the build, not after
    if not output.exists():
        output.parent.mkdir(parents=True, exist_ok=True)
        return
    if output.is_dir() and (not any(output.iterdir()) or (output / "oci-layout").exists()):
        shutil.rmtree(output)
        return
    raise InputError(
        f"{output} exists and is not an OCI image layout",
        hint="choose an empty or new folder for the build output",
    )


def qualified_tag(name: str) -> str:
    """`name` with an explicit tag (`:latest` if none), as docker-daemon: references need."""
    last = name.rsplit("/", 1)[-1]
    if "@" in last or ":" in last:
        return name
    return f"{name}:latest"


def oci_reference(layout: Path) -> str:
    """The `oci:` transport reference of a layout folder, for skopeo and buildah."""
    path = layout.resolve()
    # In `oci:PATH:REF` a colon starts the reference, so the path cannot hold one.
    if ":" in str(path):
        raise InputError(f"layout path {path} contains ':', which an oci: reference cannot hold")
    return f"oci:{path}"
