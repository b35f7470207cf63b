"""Apt sources for a bootstrap: the Debian entries of this host's own apt configuration
(one-line and deb822 formats), or the organisation's mirror named in the catalog."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from socle.bootstrap.spec import (
    BootstrapSpec,
)
from socle.errors import SocleError


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
    architecture: str | None = None,
) -> str:
    """The host's Debian archive entries for `suite` as one-line sources.list text.

    Reads `sources.list` and `sources.list.d/*.list` (one-line) and
    `sources.list.d/*.sources` (deb822), and keeps the enabled `deb` entries
    whose suite is `suite` or, with `security`, `<suite>-updates` and
    `<suite>-security`. When apt has fetched a Release file for an entry
    (under `lists_dir`), entries whose Origin is not Debian are skipped too:
    a third-party repository may reuse the suite name. `components` replaces
    the host's components when given. With `architecture`, an entry limited
    to other architectures (`arch=amd64`) is limited to that one instead: the
    host's own restriction must not hide a foreign bootstrap's packages.
    Raises SocleError, with a hint, if no
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
        if architecture:
            entry = _for_architecture(entry, architecture)
        found.add(entry.suite)
        if entry.line() not in kept:
            kept.append(entry.line())
    _require_suites(suite, found, security, apt_dir)
    return "".join(f"{line}\n" for line in kept)


def _for_architecture(entry: SourceEntry, architecture: str) -> SourceEntry:
    options = []
    for option in entry.options:
        name, _, value = option.partition("=")
        if name == "arch" and architecture not in value.split(","):
            option = f"arch={architecture}"
        options.append(option)
    return SourceEntry(entry.uri, entry.suite, entry.components, tuple(options))


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
        spec.suite,
        security=spec.security,
        apt_dir=apt_dir,
        components=spec.components,
        architecture=spec.effective_architecture(),
    )
