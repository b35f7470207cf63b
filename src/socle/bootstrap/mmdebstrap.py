"""The trusted OS image: bootstrapped from the Debian archive with mmdebstrap, reproducibly.

The root filesystem is built by `mmdebstrap` (never pulled from a public hub)
from the organisation's mirror or, by default, from the Debian archive entries
of the host's own apt sources. With the same spec, mirror content and
SOURCE_DATE_EPOCH, two runs give the same tar (mmdebstrap sorts entries and
clamps mtimes), hence the same layer and manifest digests.

Choices worth knowing (see `_CUSTOMIZE_HOOK`):
- no `/dev` in the rootfs (`--skip=output/dev`): container runtimes mount
  their own, and device nodes cannot be extracted by rootless builders;
- merged /usr through mmdebstrap's `maybe-merged-usr` hook (the
  `usr-is-merged` package, as Debian's own container images have) rather
  than the `usrmerge` package, which drags perl in (about 45 MB);
- apt package lists and caches are removed (mmdebstrap's default cleanup):
  they go stale, are large, and would change the image digest every time the
  mirror publishes even when no installed package changed; child images run
  `apt-get update` first, against the same sources as the bootstrap;
- `/etc/resolv.conf` and `/etc/hostname` (copied from the host) are removed:
  runtimes provide them, and they would differ between build hosts.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from socle.bootstrap.image import (
    count_installed,
    image_config,
)
from socle.bootstrap.sources import (
    parse_one_line,
    spec_sources,
)
from socle.bootstrap.spec import (
    MERGED_USR_HOOKS,
    NO_LABELS,
    BootstrapSpec,
)
from socle.core.platforms import OCI_ARCH
from socle.emulation import require_emulation
from socle.errors import InputError, SocleError
from socle.oci.content import Platform
from socle.oci.layout import index_descriptor, read_image_layout, write_image_layout, write_index
from socle.oci.media import CREATED
from socle.process import CommandError, run, tail_of
from socle.timestamps import rfc3339

# apt settings for the bootstrap only (the file is removed from the image): fail fast on a
# dead mirror (connection refused: 1.5 s instead of 7.5 s) while surviving one hiccup.
_APT_OPTIONS = (
    'Acquire::Retries "1"',
    'Acquire::http::Timeout "30"',
    'Acquire::https::Timeout "30"',
)
_CUSTOMIZE_HOOK = (
    'rm -f "$1/etc/resolv.conf" "$1/etc/hostname" "$1/etc/apt/apt.conf.d/99mmdebstrap"'
    ' "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old'
)


@dataclass(frozen=True)
class BootstrapResult:
    """What a bootstrap produced."""

    layout: Path
    manifest_digest: str
    diff_id: str
    """sha256 of the uncompressed rootfs tar."""
    package_count: int
    duration: float
    """Wall time in seconds, mmdebstrap and layout writing together."""
    source_date_epoch: int
    sources: str
    """The sources.list used for the bootstrap, and written into the image."""
    architecture: str = ""
    """The Debian architecture bootstrapped (`amd64`, `arm64`...)."""


# --- the bootstrap ----------------------------------------------------------------------


def bootstrap(
    spec: BootstrapSpec,
    out_dir: Path,
    *,
    work_dir: Path | None = None,
    labels: Mapping[str, str] = NO_LABELS,
) -> BootstrapResult:
    """Bootstrap `spec` with mmdebstrap and write it as an OCI image layout in `out_dir`.

    `out_dir` must be missing or empty. The rootfs tar (`rootfs.tar`) and the
    dpkg status file are kept in `work_dir` when one is given, else in a
    temporary folder removed afterwards. `labels` become the image config's
    Labels; the config and the layout's `index.json` entry carry the
    platform. A foreign architecture needs qemu-user emulation (see
    :func:`socle.emulation.require_emulation`, checked first). Raises
    SocleError when emulation is missing or the mirror cannot be reached
    (naming it, with the tail of mmdebstrap's log) and CommandError on other
    failures.
    """
    started = time.monotonic()
    _require_empty(out_dir)
    arch = spec.effective_architecture()
    require_emulation(arch)
    epoch = spec.effective_epoch()
    sources = spec_sources(spec)
    with _scratch(work_dir) as work:
        rootfs = work / "rootfs.tar"
        _run_mmdebstrap(spec, sources, epoch, rootfs, work)
        package_count = count_installed((work / "status").read_text(errors="replace"))
        digest = write_image_layout(
            out_dir,
            layers=[rootfs],
            config=image_config(spec, epoch, labels),
            annotations={CREATED: rfc3339(epoch)},
        )
        _record_platform(out_dir, arch)
    return BootstrapResult(
        layout=out_dir,
        manifest_digest=digest,
        diff_id=read_image_layout(out_dir).diff_ids[0],
        package_count=package_count,
        duration=time.monotonic() - started,
        source_date_epoch=epoch,
        sources=sources,
        architecture=arch,
    )


def _record_platform(layout: Path, arch: str) -> None:
    """Name the image's platform in `index.json` (as `skopeo copy --all` and buildah do)."""
    architecture, variant = OCI_ARCH[arch]
    entry = index_descriptor(layout)
    write_index(
        layout, [dataclasses.replace(entry, platform=Platform("linux", architecture, variant))]
    )


def _require_empty(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(
            f"{out_dir} already exists and is not an empty folder",
            hint="choose a new folder for the image layout",
        )


@contextmanager
def _scratch(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="socle-bootstrap-") as tmp:
        yield Path(tmp)


def _run_mmdebstrap(
    spec: BootstrapSpec, sources: str, epoch: int, rootfs: Path, work: Path
) -> None:
    if not MERGED_USR_HOOKS.is_dir():
        raise SocleError(
            f"mmdebstrap's hook folder {MERGED_USR_HOOKS} is missing",
            hint="install mmdebstrap 1.3 or newer",
        )
    cmd = mmdebstrap_command(spec, sources, rootfs=rootfs, status_dir=work)
    env = {"SOURCE_DATE_EPOCH": str(epoch), "LC_ALL": "C.UTF-8"}
    try:
        run(cmd, env=env, input=sources)
    except CommandError as exc:
        raise explain_failure(exc, spec.mirror, sources) from exc


def mmdebstrap_command(
    spec: BootstrapSpec, sources: str, *, rootfs: Path, status_dir: Path
) -> list[str]:
    """The mmdebstrap command line; the sources are read from standard input (`-`)."""
    include = sorted(set(spec.packages) | _needed_for(sources))
    cmd = [
        "mmdebstrap",
        "--mode=auto",
        "--format=tar",
        f"--variant={spec.variant}",
        f"--architectures={spec.effective_architecture()}",
        f"--components={','.join(spec.components)}",
        "--skip=output/dev",
        f"--hook-dir={MERGED_USR_HOOKS}",
        *(f"--aptopt={option}" for option in _APT_OPTIONS),
        f"--customize-hook={_CUSTOMIZE_HOOK}",
        f"--customize-hook=copy-out /var/lib/dpkg/status {shlex.quote(str(status_dir))}",
    ]
    if include:
        cmd.append(f"--include={','.join(include)}")
    return [*cmd, spec.suite, str(rootfs), "-"]


def _needed_for(sources: str) -> set[str]:
    # apt in the image needs CA certificates to run `apt-get update` against https sources.
    return {"ca-certificates"} if "https://" in sources else set()


_UNREACHABLE = re.compile(
    r"Could not connect|Could not resolve|Temporary failure resolving|Connection refused"
    r"|Connection timed out|No route to host|Unable to connect|Network is unreachable"
)
_NOT_FOUND = re.compile(r"404\s+Not Found|does not have a Release file")


def explain_failure(error: CommandError, mirror: str | None, sources: str) -> SocleError:
    """Turn a failed mmdebstrap into the error a user can act on."""
    log = error.stderr or error.stdout
    uris = _source_uris(sources)
    named = mirror or ", ".join(u for u in uris if u in log) or ", ".join(uris)
    if _UNREACHABLE.search(log):
        return SocleError(
            f"the mirror {named} could not be reached (mmdebstrap's apt-get update failed)\n"
            + tail_of(log),
            hint="check the mirror URL and that this machine can reach it (proxy, firewall)",
        )
    if _NOT_FOUND.search(log):
        return SocleError(
            f"the mirror {named} does not serve the requested suite\n" + tail_of(log),
            hint="check the suite name and the mirror URL",
        )
    error.hint = error.hint or "see the tail of mmdebstrap's log above"
    return error


def _source_uris(sources: str) -> list[str]:
    uris = [entry.uri.rstrip("/") for entry in parse_one_line(sources)]
    return list(dict.fromkeys(uris))
