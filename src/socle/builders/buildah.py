"""The daemonless builder: buildah, through `socle.process.run`.

Images live in containers-storage (buildah's own store); a build is exported
with `buildah push NAME oci:DIR`, which writes an OCI layout holding one
manifest. The storage driver is the host's (`/etc/containers/storage.conf`,
overlay on this kind of machine) unless one is pinned, in which case every
buildah call here passes it, so build, load, run and remove see one store.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
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
)
from socle.errors import InputError
from socle.oci.layout import index_descriptor
from socle.process import CommandError, Completed

Runner = Callable[..., Completed]
log = logging.getLogger(__name__)

# `buildah run` adds this line to the command's own stderr when it exits non-zero.
_RUNTIME_EXIT = "while running runtime: exit status"
# The heading of `buildah rmi`'s error list, when it was given several images.
_ERRORS_OCCURRED = re.compile(r"Error: \d+ errors? occurred:")


APT_PREFERENCES = "/etc/apt/preferences.d"
# Beside buildah's own locks in its run root: a file of this store's, shared by every
# process that uses the store, gone with the tmpfs at reboot.
NAMES_LOCK = "socle-names.lock"
_NAMES = threading.Lock()  # this process's share of that lock: see BuildahBuilder.names


def bud_command(request: BuildRequest, *, storage_driver: str | None = None) -> list[str]:
    """The `buildah bud` command line for `request`.

    Host networking lets `RUN apt-get` reach the host's configured mirror.
    `--pull=missing` is right for digest-pinned parents (immutable) and keeps
    builds from asking a registry again; TLS verification is turned off only
    when the request names plain-http loopback registries.
    """
    cmd = [*_buildah(storage_driver), "bud", "--network", "host", "--pull=missing"]
    cmd += ["--format", "oci", "-f", str(request.dockerfile)]
    if request.insecure_registries:
        cmd.append("--tls-verify=false")
    if request.platform is not None:
        cmd += ["--platform", request.platform]
    if request.source_date_epoch is not None:
        cmd += ["--timestamp", str(request.source_date_epoch)]
    if request.apt_preferences is not None:
        cmd += ["--volume", f"{request.apt_preferences}:{APT_PREFERENCES}:ro"]
    for key, value in sorted(request.effective_build_args().items()):
        cmd += ["--build-arg", f"{key}={value}"]
    for key, value in sorted(request.effective_labels().items()):
        cmd += ["--label", f"{key}={value}"]
    return [*cmd, "-t", request.name, str(request.context)]


def push_command(name: str, output: Path, *, storage_driver: str | None = None) -> list[str]:
    """The command that writes the local image `name` as an OCI layout at `output`."""
    return [*_buildah(storage_driver), "push", name, oci_reference(output)]


def run_command(
    container: str,
    command: Sequence[str],
    *,
    user: str | None,
    storage_driver: str | None = None,
    network: str = "none",
) -> list[str]:
    """The `buildah run` command line: no network unless "host" is asked for, optional user."""
    if network not in ("none", "host"):
        raise InputError(f"unsupported container network {network!r}", hint='"none" or "host"')
    cmd = [*_buildah(storage_driver), "run", "--network", network]
    if user is not None:
        cmd += ["--user", user]
    return [*cmd, container, "--", *command]


class BuildahBuilder:
    """Builds with `buildah bud`; runs tests in throw-away working containers."""

    name = "buildah"

    def __init__(
        self,
        *,
        run: Runner = process.run,
        storage_driver: str | None = None,
        names_lock: Path | None = None,
    ) -> None:
        self._run = run
        self._driver = storage_driver
        self._names_lock = names_lock  # found in buildah's run root when first needed

    def build(self, request: BuildRequest) -> BuildResult:
        """Build `request` into local storage as `request.name`, then export its OCI layout."""
        prepare_output(request.output)
        try:
            done = self._run(bud_command(request, storage_driver=self._driver))
        except CommandError as exc:
            raise BuildFailed(request.name, build_log(exc.stdout, exc.stderr)) from exc
        self._run(push_command(request.name, request.output, storage_driver=self._driver))
        index_descriptor(request.output)
        if request.source_date_epoch is not None:
            base = self._diff_ids(request.base) if request.base else ()
            from socle.builders.normalise import reproduce_build  # tarfile: only a build needs it

            reproduce_build(request, base)
        return BuildResult(request.output, build_log(done.stdout, done.stderr, lines=20))

    def _diff_ids(self, image: str) -> tuple[str, ...]:
        """The layer diff_ids of the local image `image` (the parent, pulled by the build)."""
        done = self._run([*self._buildah(), "inspect", "--type", "image", image])
        from socle.builders.normalise import diff_ids_of

        return diff_ids_of(done.stdout, ("OCIv1", "rootfs", "diff_ids"))

    def load(self, layout: Path, name: str) -> None:
        """Pull the layout into local storage and name it `name`.

        `buildah pull oci:DIR` names the image after the path it was given, so
        the layout is pulled through a uniquely named symlink and that
        temporary name is dropped once `name` is set.
        """
        index_descriptor(layout)
        alias = f"socle-load-{secrets.token_hex(8)}"
        with self.names(), tempfile.TemporaryDirectory(prefix="socle-load-") as tmp:
            (Path(tmp) / alias).symlink_to(layout.resolve(), target_is_directory=True)
            pulled = self._run([*self._buildah(), "pull", "-q", f"oci:{alias}"], cwd=Path(tmp))
            image_id = pulled.stdout.strip().splitlines()[-1]
            self._run([*self._buildah(), "tag", image_id, name])
            self._remove(f"localhost/{alias}:latest")

    @contextlib.contextmanager
    def names(self) -> Iterator[None]:
        """Hold the store's names: one load or removal at a time, across processes.

        Two pulls of one image at once (two families on one upstream image, two
        runs on one machine) race on its list of names in buildah's storage:
        measured with 4 processes loading one layout 15 times each, 3 names of
        60 were lost and one pull did not find the image it had just pulled.
        So every change of names socle makes goes under one `flock` of the
        store's run root, which the kernel releases when its holder dies.
        """
        with _NAMES, self._names_lock_path().open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield  # closing the file releases the flock

    def _names_lock_path(self) -> Path:
        if self._names_lock is None:
            info = [*self._buildah(), "info", "--format", "{{.store.RunRoot}}"]
            run_root = self._run(info).stdout.strip()
            if not run_root:
                raise InputError(
                    "buildah info did not name its storage's run root",
                    hint="check `buildah info` and /etc/containers/storage.conf",
                )
            self._names_lock = Path(run_root) / NAMES_LOCK
        return self._names_lock

    def run(
        self,
        name: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        network: str = "none",
    ) -> RunResult:
        """Run `command` in a fresh working container of `name`, then remove the container."""
        container = f"socle-run-{secrets.token_hex(6)}"
        cmd = run_command(
            container, command, user=user, storage_driver=self._driver, network=network
        )
        self._run([*self._buildah(), "from", "--pull=never", "--name", container, name])
        try:
            try:
                done = self._run(cmd)
            except CommandError as exc:
                return RunResult(exc.returncode, exc.stdout, _without_runtime_noise(exc.stderr))
            return RunResult(0, done.stdout, done.stderr)
        finally:
            self._run([*self._buildah(), "rm", container])

    def remove(self, *names: str) -> None:
        """Remove the local images `names` with one `buildah rmi`, best effort.

        Never an error: a warning for an image that stays. One command for all:
        each buildah call takes the storage lock, and a run leaves about two
        images per variant.
        """
        if not names:
            return
        with self.names():
            self._remove(*names)

    def _remove(self, *names: str) -> None:
        try:
            self._run([*self._buildah(), "rmi", *names])
        except CommandError as exc:
            # Removal is clean-up: an image still used by a container (another build,
            # or one a killed run left behind) stays, and the run goes on. buildah
            # removes the others and names each one it could not.
            left = [
                line
                for line in exc.stderr.splitlines()
                if line.strip()
                and "image not known" not in line
                and not _ERRORS_OCCURRED.fullmatch(line.strip())
            ]
            if left:
                log.warning(
                    "could not remove the local image %s: %s",
                    ", ".join(names),
                    "\n".join(left).strip()[-300:],
                )

    def _buildah(self) -> list[str]:
        return _buildah(self._driver)


def _buildah(storage_driver: str | None) -> list[str]:
    if storage_driver is None:
        return ["buildah"]
    return ["buildah", "--storage-driver", storage_driver]


def _without_runtime_noise(stderr: str) -> str:
    kept = [line for line in stderr.splitlines(keepends=True) if _RUNTIME_EXIT not in line]
    return "".join(kept)
