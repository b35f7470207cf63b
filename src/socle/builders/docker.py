"""The Docker Engine builder: the docker CLI and skopeo, through `socle.process.run`.

The daemon builds and keeps the image; skopeo moves images between the
daemon and OCI layouts (`docker-daemon:` <-> `oci:`), which the docker CLI
cannot do by itself. The daemon treats 127.0.0.0/8 registries as insecure,
so digest-pinned parents on a loopback registry pull over plain http.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from socle import process
from socle.builders.interface import (
    BuildFailed,
    BuildRequest,
    BuildResult,
    RunResult,
    build_log,
    oci_reference,
    prepare_output,
    qualified_tag,
)
from socle.errors import InputError
from socle.oci.layout import index_descriptor
from socle.process import CommandError, Completed

Runner = Callable[..., Completed]
log = logging.getLogger(__name__)

# The classic builder: plain step-by-step output ("Step 2/3 : RUN ..."), works
# with the Debian engine (20.10) and needs no buildx plug-in.
BUILD_ENV = {"DOCKER_BUILDKIT": "0"}


def build_command(request: BuildRequest) -> list[str]:
    """The `docker build` command line for `request` (host network, deterministic flag order)."""
    if request.apt_preferences is not None:
        raise InputError(
            "docker build cannot mount the pinned package versions into its RUN steps",
            hint="rebuild with --builder buildah",
        )
    cmd = ["docker", "build", "--network", "host", "--force-rm", "-f", str(request.dockerfile)]
    if request.platform is not None:
        cmd += ["--platform", request.platform]
    for key, value in sorted(request.effective_build_args().items()):
        cmd += ["--build-arg", f"{key}={value}"]
    for key, value in sorted(request.effective_labels().items()):
        cmd += ["--label", f"{key}={value}"]
    return [*cmd, "-t", request.name, str(request.context)]


def export_command(name: str, output: Path) -> list[str]:
    """The skopeo command that writes the daemon's image `name` as an OCI layout."""
    return ["skopeo", "copy", f"docker-daemon:{qualified_tag(name)}", oci_reference(output)]


def load_command(layout: Path, name: str) -> list[str]:
    """The skopeo command that puts the image of an OCI layout into the daemon as `name`."""
    return ["skopeo", "copy", oci_reference(layout), f"docker-daemon:{qualified_tag(name)}"]


def run_command(
    name: str, command: Sequence[str], *, user: str | None, network: str = "none"
) -> list[str]:
    """The `docker run` command line: removed afterwards, never pulls; no network unless "host"."""
    if network not in ("none", "host"):
        raise InputError(f"unsupported container network {network!r}", hint='"none" or "host"')
    cmd = ["docker", "run", "--rm", "--network", network, "--pull", "never"]
    if user is not None:
        cmd += ["--user", user]
    return [*cmd, name, *command]


class DockerBuilder:
    """Builds with the Docker Engine; runs tests with `docker run --network none`."""

    name = "docker"

    def __init__(self, *, run: Runner = process.run) -> None:
        self._run = run

    def build(self, request: BuildRequest) -> BuildResult:
        """Build `request` in the daemon as `request.name`, then export its OCI layout."""
        prepare_output(request.output)
        try:
            done = self._run(build_command(request), env=BUILD_ENV)
        except CommandError as exc:
            self._forget(new_layers(exc.stdout))
            log = build_log(exc.stdout, _without_notice(exc.stderr))
            raise BuildFailed(request.name, log) from exc
        self._run(export_command(request.name, request.output))
        index_descriptor(request.output)
        if request.source_date_epoch is not None:
            base = self._diff_ids(request.base) if request.base else ()
            from socle.builders.normalise import reproduce_build  # tarfile: only a build needs it

            reproduce_build(request, base)
        log = build_log(done.stdout, _without_notice(done.stderr), lines=20)
        return BuildResult(request.output, log)

    def _diff_ids(self, image: str) -> tuple[str, ...]:
        """The layer diff_ids of the daemon's image `image` (the parent, pulled by the build)."""
        done = self._run(["docker", "image", "inspect", image])
        from socle.builders.normalise import diff_ids_of

        return diff_ids_of(done.stdout, (0, "RootFS", "Layers"))

    def load(self, layout: Path, name: str) -> None:
        """Copy the layout's image into the daemon under `name`."""
        index_descriptor(layout)
        self._run(load_command(layout, name))

    def run(
        self,
        name: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        network: str = "none",
    ) -> RunResult:
        """Run `command` in a throw-away container of `name`; exit codes are returned."""
        cmd = run_command(name, command, user=user, network=network)
        try:
            done = self._run(cmd)
        except CommandError as exc:
            return RunResult(exc.returncode, exc.stdout, exc.stderr)
        return RunResult(0, done.stdout, done.stderr)

    def _forget(self, image_ids: Sequence[str]) -> None:
        # A failed classic build leaves the images of its successful steps dangling.
        for image_id in reversed(image_ids):
            try:
                self._run(["docker", "image", "rm", image_id])
            except CommandError:
                return  # in use by another build as cache, or gone: leave it

    def remove(self, *names: str) -> None:
        """Remove the daemon's images `names` with one command, best effort.

        Never an error: a warning for an image that stays (docker removes the others).
        """
        if not names:
            return
        try:
            self._run(["docker", "image", "rm", *names])
        except CommandError as exc:
            # Removal is clean-up: an image still used by a container (another build,
            # or one a killed run left behind) stays, and the run goes on.
            left = [line for line in exc.stderr.splitlines() if "No such image" not in line]
            if any(line.strip() for line in left):
                log.warning(
                    "could not remove the local image %s: %s",
                    ", ".join(names),
                    "\n".join(left).strip()[-300:],
                )


def new_layers(stdout: str) -> list[str]:
    """The image ids a classic build created itself (not cached ones, not the parent).

    A step that ran prints "Removing intermediate container ..." right before
    " ---> ID" of the image it committed; cached steps print "Using cache".
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    return [
        line.removeprefix("---> ")
        for previous, line in itertools.pairwise(lines)
        if previous.startswith("Removing intermediate container") and line.startswith("---> ")
    ]


def _without_notice(stderr: str) -> str:
    """stderr without the CLI's "DEPRECATED: The legacy builder..." paragraph."""
    kept: list[str] = []
    in_notice = False
    for line in stderr.splitlines():
        if line.startswith("DEPRECATED:"):
            in_notice = True
        elif in_notice and (line.startswith(" ") or not line.strip()):
            continue
        else:
            in_notice = False
            kept.append(line)
    return "\n".join(kept)
