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

import re
import shlex
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from socle.errors import InputError, SocleError
from socle.oci.layout import read_image_layout, write_image_layout
from socle.oci.media import CREATED
from socle.process import CommandError, run, tail_of

VARIANTS = frozenset(
    {
        "extract",
        "custom",
        "essential",
        "apt",
        "required",
        "minbase",
        "buildd",
        "important",
        "debootstrap",
        "standard",
    }
)
# Debian architecture -> OCI platform (architecture, variant).
PLATFORMS: Mapping[str, tuple[str, str | None]] = MappingProxyType(
    {
        "amd64": ("amd64", None),
        "arm64": ("arm64", "v8"),
        "armhf": ("arm", "v7"),
        "armel": ("arm", "v5"),
        "i386": ("386", None),
        "ppc64el": ("ppc64le", None),
        "s390x": ("s390x", None),
        "mips64el": ("mips64le", None),
        "riscv64": ("riscv64", None),
    }
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Bump when the way a spec becomes an image changes (hooks, options), so fingerprints change.
RECIPE_VERSION = 1
MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/maybe-merged-usr")
NO_LABELS: Mapping[str, str] = MappingProxyType({})

_SUITE = re.compile(r"[a-z][a-z0-9.+-]*")
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?")
_COMPONENT = re.compile(r"[a-z][a-z0-9-]*")
_MIRROR = re.compile(r"(https?|file)://[^\s\[\]]+")

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
class BootstrapSpec:
    """Everything that decides the content of a bootstrapped OS image."""

    suite: str
    packages: tuple[str, ...] = ()
    variant: str = "minbase"
    components: tuple[str, ...] = ("main",)
    architecture: str = "amd64"
    mirror: str | None = None
    """None: the host's apt sources for this suite; else the URL of the organisation's mirror."""
    security: bool = True
    """Include `<suite>-security` and `<suite>-updates` from the same source."""
    source_date_epoch: int | None = None
    """None: today at 00:00 UTC, so that two runs on the same day agree."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "packages", tuple(self.packages))
        object.__setattr__(self, "components", tuple(self.components))
        _check("suite", [self.suite], _SUITE)
        _check("package", self.packages, _PACKAGE)
        _check("component", self.components, _COMPONENT)
        if not self.components:
            raise InputError("a bootstrap needs at least one component", hint="e.g. main")
        if self.variant not in VARIANTS:
            raise InputError(
                f"unknown mmdebstrap variant {self.variant!r}",
                hint=f"one of {', '.join(sorted(VARIANTS))}",
            )
        if self.architecture not in PLATFORMS:
            raise InputError(
                f"unsupported architecture {self.architecture!r}",
                hint=f"one of {', '.join(sorted(PLATFORMS))}",
            )
        if self.mirror is not None:
            _check("mirror URL", [self.mirror], _MIRROR)
        epoch = self.source_date_epoch
        if epoch is not None and (isinstance(epoch, bool) or epoch < 0):
            raise InputError(
                f"invalid source_date_epoch {epoch!r}", hint="seconds since 1970-01-01 UTC"
            )

    def parameters(self) -> dict[str, object]:
        """Every input as a canonical dict (sorted sets, normalised URL) for fingerprints.

        `source_date_epoch` and `mirror` are given as declared: `None` means
        "today" and "the host's sources", resolved only at bootstrap time.
        """
        return {
            "recipe": RECIPE_VERSION,
            "tool": "mmdebstrap",
            "suite": self.suite,
            "variant": self.variant,
            "architecture": self.architecture,
            "components": sorted(set(self.components)),
            "packages": sorted(set(self.packages)),
            "mirror": self.mirror.rstrip("/") if self.mirror else None,
            "security": self.security,
            "source_date_epoch": self.source_date_epoch,
        }

    def effective_epoch(self, now: datetime | None = None) -> int:
        """SOURCE_DATE_EPOCH for a run: the declared one, or `now`'s date at 00:00 UTC."""
        if self.source_date_epoch is not None:
            return self.source_date_epoch
        day = (now or datetime.now(UTC)).astimezone(UTC).date()
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _check(what: str, values: Any, pattern: re.Pattern[str]) -> None:
    for value in values:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InputError(f"invalid {what} {value!r}", hint=f"expected {pattern.pattern}")


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


# --- apt sources -------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceEntry:
    """One `deb` source: a URI, a suite, components and one-line options."""

    uri: str
    suite: str
    components: tuple[str, ...]
    options: tuple[str, ...] = ()

    def line(self) -> str:
        """The entry in apt's one-line format."""
        options = f" [{' '.join(self.options)}]" if self.options else ""
        return f"deb{options} {self.uri} {self.suite} {' '.join(self.components)}"


def host_sources(
    suite: str,
    *,
    security: bool,
    apt_dir: Path = Path("/etc/apt"),
    lists_dir: Path | None = Path("/var/lib/apt/lists"),
    components: tuple[str, ...] | None = None,
) -> str:
    """The host's Debian archive entries for `suite` as one-line sources.list text.

    Reads `sources.list` and `sources.list.d/*.list` (one-line) and
    `sources.list.d/*.sources` (deb822), and keeps the enabled `deb` entries
    whose suite is `suite` or, with `security`, `<suite>-updates` and
    `<suite>-security`. When apt has fetched a Release file for an entry
    (under `lists_dir`), entries whose Origin is not Debian are skipped too:
    a third-party repository may reuse the suite name. `components` replaces
    the host's components when given. Raises SocleError, with a hint, if no
    entry for `suite` is found or, with `security`, none for `<suite>-security`.
    """
    wanted = {suite, f"{suite}-updates", f"{suite}-security"} if security else {suite}
    kept: list[str] = []
    found: set[str] = set()
    for entry in read_apt_sources(apt_dir):
        if entry.suite not in wanted or _origin(lists_dir, entry) not in (None, "Debian"):
            continue
        if components:
            entry = SourceEntry(entry.uri, entry.suite, components, entry.options)
        found.add(entry.suite)
        if entry.line() not in kept:
            kept.append(entry.line())
    _require_suites(suite, found, security, apt_dir)
    return "".join(f"{line}\n" for line in kept)


def _require_suites(suite: str, found: set[str], security: bool, apt_dir: Path) -> None:
    where = f"{apt_dir}/sources.list and {apt_dir}/sources.list.d"
    if suite not in found:
        raise SocleError(
            f"no Debian archive entry for suite {suite!r} in the host's apt sources ({where})",
            hint="add the Debian archive for this suite to the host's apt sources, "
            "or give the organisation's mirror URL (BootstrapSpec.mirror)",
        )
    if security and f"{suite}-security" not in found:
        raise SocleError(
            f"no {suite}-security entry in the host's apt sources ({where}): "
            "the image would miss security updates",
            hint="add the security archive to the host's apt sources, or set security=False "
            "for suites without one (e.g. sid)",
        )


def read_apt_sources(apt_dir: Path) -> Iterator[SourceEntry]:
    """Every enabled `deb` entry of the apt configuration under `apt_dir`, in apt's order."""
    parts = apt_dir / "sources.list.d"
    files = [apt_dir / "sources.list", *(sorted(parts.iterdir()) if parts.is_dir() else [])]
    for path in files:
        if path.name.endswith(".list") and path.is_file():
            yield from parse_one_line(path.read_text(errors="replace"))
        elif path.name.endswith(".sources") and path.is_file():
            yield from parse_deb822(path.read_text(errors="replace"))


_ONE_LINE = re.compile(
    r"(?P<type>deb|deb-src)\s+(?:\[(?P<options>[^\]]*)\]\s+)?"
    r"(?P<uri>\S+)\s+(?P<suite>\S+)(?:\s+(?P<components>.*))?"
)


def parse_one_line(text: str) -> Iterator[SourceEntry]:
    """The `deb` entries of a one-line-style sources.list."""
    for raw in text.splitlines():
        match = _ONE_LINE.fullmatch(raw.split("#", 1)[0].strip())
        if match and match["type"] == "deb":
            yield SourceEntry(
                uri=match["uri"],
                suite=match["suite"],
                components=tuple((match["components"] or "").split()),
                options=tuple((match["options"] or "").split()),
            )


# deb822 field -> one-line option, where the names differ.
_OPTION_NAMES = {"architectures": "arch", "languages": "lang", "targets": "target"}
_ENTRY_FIELDS = {"types", "uris", "suites", "components", "enabled"}


def parse_deb822(text: str) -> Iterator[SourceEntry]:
    """The enabled `deb` entries of a deb822-style `.sources` file."""
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        options = tuple(_deb822_options(stanza))
        components = tuple(stanza.get("components", "").split())
        for uri in stanza.get("uris", "").split():
            for suite in stanza.get("suites", "").split():
                yield SourceEntry(uri, suite, components, options)


def _deb822_options(stanza: Mapping[str, str]) -> Iterator[str]:
    for key, value in stanza.items():
        if key in _ENTRY_FIELDS or "\n" in value.strip():
            continue  # an inline (multi-line) Signed-By key has no one-line form
        name = _OPTION_NAMES.get(key, key)
        yield f"{name}={','.join(value.split())}"


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    key = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif raw[0] in " \t" and key:
            fields[key] += "\n" + raw.strip()
        elif ":" in raw:
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()


_RELEASE_HEAD = 40  # Origin is among the first fields of a Release file


def _origin(lists_dir: Path | None, entry: SourceEntry) -> str | None:
    """The Origin of the entry's Release file if apt fetched it on this host, else None."""
    if lists_dir is None:
        return None
    base = _apt_list_name(f"{entry.uri.rstrip('/')}/dists/{entry.suite}/")
    for name in ("InRelease", "Release"):
        path = lists_dir / f"{base}{name}"
        if path.is_file():
            with path.open(errors="replace") as release:
                head = [line for _, line in zip(range(_RELEASE_HEAD), release, strict=False)]
            return next(
                (line.partition(":")[2].strip() for line in head if line.startswith("Origin:")),
                "",
            )
    return None


def _apt_list_name(uri: str) -> str:
    """apt's URItoFileName: drop scheme and credentials, quote, turn `/` into `_`."""
    rest = uri.split("://", 1)[-1]
    rest = rest.rpartition("@")[2] if "@" in rest.split("/", 1)[0] else rest
    quoted = "".join(
        f"%{ord(c):02x}" if c in '\\|{}[]<>"^~_=!@#$%&*' or ord(c) <= 0x20 or ord(c) >= 0x7F else c
        for c in rest
    )
    return quoted.replace("/", "_")


def mirror_sources(mirror: str, suite: str, *, components: tuple[str, ...], security: bool) -> str:
    """One-line sources for the organisation's mirror.

    Security updates are a separate Debian archive: a mirror URL ending in
    `/debian` has it next door at `/debian-security` (the archive's own
    layout); any other URL is expected to serve `<suite>-security` itself.
    """
    base = mirror.rstrip("/")
    comps = " ".join(components)
    lines = [f"deb {base} {suite} {comps}"]
    if security:
        security_base = f"{base}-security" if base.endswith("/debian") else base
        lines += [
            f"deb {base} {suite}-updates {comps}",
            f"deb {security_base} {suite}-security {comps}",
        ]
    return "".join(f"{line}\n" for line in lines)


def spec_sources(spec: BootstrapSpec, *, apt_dir: Path = Path("/etc/apt")) -> str:
    """The sources.list text a spec bootstraps from (and leaves in the image)."""
    if spec.mirror is not None:
        return mirror_sources(
            spec.mirror, spec.suite, components=spec.components, security=spec.security
        )
    return host_sources(
        spec.suite, security=spec.security, apt_dir=apt_dir, components=spec.components
    )


# --- the bootstrap -------------------------------------------------------------------------


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
    Labels. Raises SocleError when the mirror cannot be reached (naming it,
    with the tail of mmdebstrap's log) and CommandError on other failures.
    """
    started = time.monotonic()
    _require_empty(out_dir)
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
    return BootstrapResult(
        layout=out_dir,
        manifest_digest=digest,
        diff_id=read_image_layout(out_dir).diff_ids[0],
        package_count=package_count,
        duration=time.monotonic() - started,
        source_date_epoch=epoch,
        sources=sources,
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
        f"--architectures={spec.architecture}",
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


# --- image metadata ------------------------------------------------------------------------


def image_config(spec: BootstrapSpec, epoch: int, labels: Mapping[str, str]) -> dict[str, object]:
    """The OCI image config of a bootstrapped image (rootfs is added by the layout writer)."""
    architecture, variant = PLATFORMS[spec.architecture]
    created = rfc3339(epoch)
    runtime: dict[str, object] = {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["bash"]}
    if labels:
        runtime["Labels"] = dict(labels)
    config: dict[str, object] = {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": runtime,
        "history": [
            {"created": created, "created_by": _created_by(spec), "comment": "socle bootstrap"}
        ],
    }
    if variant:
        config["variant"] = variant
    return config


def _created_by(spec: BootstrapSpec) -> str:
    words = [
        "mmdebstrap",
        f"--variant={spec.variant}",
        f"--architectures={spec.architecture}",
        f"--components={','.join(spec.components)}",
    ]
    if spec.packages:
        words.append(f"--include={','.join(sorted(set(spec.packages)))}")
    return " ".join([*words, spec.suite])


def rfc3339(epoch: int) -> str:
    """`epoch` as an RFC 3339 UTC timestamp, e.g. 2024-01-31T00:00:00Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def count_installed(status: str) -> int:
    """How many packages a dpkg status file lists as installed."""
    return sum(
        1
        for stanza in status.split("\n\n")
        if re.search(r"^Status: install ok installed$", stanza, re.MULTILINE)
    )
