"""What changed upstream: security updates pending for a published OS image.

apt itself answers, inside the image: a throw-away container refreshes its
package lists and simulates an upgrade (`apt-get -s upgrade`, nothing is
installed), and every `Inst` line whose candidate comes from a release
labelled `Debian-Security` is a pending security update. The label, not the
suite name, is what identifies the security archive: bookworm's suite is
`oldstable-security` today and was `stable-security` last year.

The simulation asks the host's apt sources for the image's release, with
`-updates` and `-security` (exactly what a bootstrap with security on uses),
so an image bootstrapped without the security suite still learns what it
misses; the container uses host networking to reach that mirror, as builds do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from socle.bootstrap.sources import spec_sources
from socle.bootstrap.spec import BootstrapSpec
from socle.builders.interface import Builder, RunResult
from socle.errors import SocleError
from socle.process import tail_of

SECURITY_LABELS = frozenset({"Debian-Security"})
"""Release labels of security archives, as apt prints them (`Label:Version/Suite`)."""

# `Inst perl-base [5.36.0-7+deb12u1] (5.36.0-7+deb12u2 Debian-Security:12/oldstable-security [amd64]) []`
# The candidate may come from several releases: `(V Debian:12.11/oldstable, Debian-Security:... [amd64])`.
_INST = re.compile(
    r"^Inst (?P<package>\S+) \[(?P<installed>[^\]]+)\] "
    r"\((?P<candidate>\S+) (?P<origins>[^\[\]]+?) \[[^\]]+\]\)"
)

# Exit codes of the check script for what went wrong before the simulation.
_NO_APT = 91
_UPDATE_FAILED = 90
# apt-get update reports unreachable sources as warnings (exit 0) unless told
# otherwise, and older apt ignores the option that tells it: look for these too.
_FETCH_FAILURES = ("Failed to fetch", "Some index files failed to download")

_CODENAME_SCRIPT = '. /etc/os-release && printf "%s\\n" "${VERSION_CODENAME:-}"'
# $1: sources.list text replacing the image's (throw-away container only).
_CHECK_SCRIPT = f"""
export LC_ALL=C
command -v apt-get >/dev/null || exit {_NO_APT}
if [ -n "$1" ]; then
  printf '%s' "$1" > /etc/apt/sources.list || exit {_UPDATE_FAILED}
  rm -f /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
fi
apt-get update -qq -o APT::Update::Error-Mode=any >&2 || exit {_UPDATE_FAILED}
exec apt-get -s upgrade
"""


@dataclass(frozen=True)
class PendingUpdate:
    """One installed package with a newer version in a security archive."""

    package: str
    installed: str
    candidate: str
    origin: str
    """The security release offering `candidate`, e.g. `Debian-Security:12/oldstable-security`."""

    def __str__(self) -> str:
        return f"{self.package} {self.installed} -> {self.candidate} ({self.origin})"


def parse_simulation(text: str, *, labels: frozenset[str] = SECURITY_LABELS) -> list[PendingUpdate]:
    """The security updates in `apt-get -s upgrade` output, sorted by package name.

    An `Inst` line counts when one of the releases offering its candidate has
    a label in `labels`; point-release updates (`Debian:12.11/...`) and new
    installs (no installed version) do not.
    """
    found: dict[str, PendingUpdate] = {}
    for line in text.splitlines():
        match = _INST.match(line)
        if match is None:
            continue
        origin = _security_origin(match["origins"], labels)
        if origin is not None:
            found[match["package"]] = PendingUpdate(
                match["package"], match["installed"], match["candidate"], origin
            )
    return [found[name] for name in sorted(found)]


def _security_origin(origins: str, labels: frozenset[str]) -> str | None:
    for origin in (part.strip() for part in origins.split(",")):
        if origin.partition(":")[0] in labels:
            return origin
    return None


def security_sources(
    suite: str,
    *,
    mirror: str | None = None,
    components: tuple[str, ...] = ("main",),
    apt_dir: Path = Path("/etc/apt"),
) -> str:
    """The sources.list text a check of a `suite` image asks: the suite, -updates, -security.

    From the organisation's `mirror` when given, else from the host's apt
    sources, the same way a bootstrap with security on finds them.
    """
    spec = BootstrapSpec(suite, mirror=mirror, components=components, security=True)
    return spec_sources(spec, apt_dir=apt_dir)


def pending_security_updates(
    builder: Builder, image_name: str, *, sources: str | None = None
) -> list[PendingUpdate]:
    """The security updates apt would install in the local image `image_name`.

    `sources` (sources.list text) replaces the image's apt sources for the
    check; None means :func:`security_sources` of the image's release
    (its `VERSION_CODENAME`). Raises :class:`SocleError` when apt cannot
    update its lists (mirror unreachable), with the tail of apt's output.
    """
    if sources is None:
        sources = security_sources(image_codename(builder, image_name))
    result = builder.run(
        image_name, ["sh", "-c", _CHECK_SCRIPT, "socle-check", sources], user="0", network="host"
    )
    _raise_for(result, image_name)
    return parse_simulation(result.stdout)


def image_codename(builder: Builder, image_name: str) -> str:
    """The Debian release codename of the local image (`VERSION_CODENAME` of /etc/os-release)."""
    result = builder.run(image_name, ["sh", "-c", _CODENAME_SCRIPT], user="0")
    codename = result.stdout.strip()
    if result.exit_code != 0 or not codename:
        raise SocleError(
            f"cannot tell which Debian release {image_name} is: "
            "no VERSION_CODENAME in its /etc/os-release"
            + (f"\n{tail_of(result.stderr)}" if result.stderr.strip() else ""),
            hint="pass the apt sources to check against (security_sources(suite))",
        )
    return codename


def _raise_for(result: RunResult, image_name: str) -> None:
    if result.exit_code == _NO_APT:
        raise SocleError(
            f"{image_name} has no apt-get: security updates are checked on Debian-based images only"
        )
    apt_output = f"{result.stderr}\n{result.stdout}"
    if result.exit_code == _UPDATE_FAILED or any(s in apt_output for s in _FETCH_FAILURES):
        raise SocleError(
            f"apt in {image_name} could not update its package lists from its mirror\n"
            + tail_of(apt_output),
            hint="check that this host reaches the mirror of its apt sources "
            "(the check uses host networking, like builds)",
        )
    if result.exit_code != 0:
        raise SocleError(
            f"the apt upgrade simulation in {image_name} failed "
            f"with exit code {result.exit_code}\n{tail_of(apt_output)}"
        )
