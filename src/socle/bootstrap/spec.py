"""The bootstrap spec of an OS image: suite, packages, variant, mirror, checked when built."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from socle.core.platforms import KNOWN_ARCHES
from socle.emulation import native_arch
from socle.errors import InputError
from socle.timestamps import day_epoch

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
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Bump when the way a spec becomes an image changes (hooks, options), so fingerprints change.
RECIPE_VERSION = 1
MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/maybe-merged-usr")
NO_LABELS: Mapping[str, str] = MappingProxyType({})

_SUITE = re.compile(r"[a-z][a-z0-9.+-]*")
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?")
_COMPONENT = re.compile(r"[a-z][a-z0-9-]*")
_MIRROR = re.compile(r"(https?|file)://[^\s\[\]]+")


@dataclass(frozen=True)
class BootstrapSpec:
    """Everything that decides the content of a bootstrapped OS image."""

    suite: str
    packages: tuple[str, ...] = ()
    variant: str = "minbase"
    components: tuple[str, ...] = ("main",)
    architecture: str | None = None
    """Debian architecture (`arm64`...); None: this machine's own (see `effective_architecture`)."""
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
        if self.architecture is not None and self.architecture not in KNOWN_ARCHES:
            raise InputError(
                f"unsupported architecture {self.architecture!r}",
                hint=f"one of {', '.join(KNOWN_ARCHES)}",
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
        `architecture` is named only when declared (None: this machine's), so
        a native spec's parameters are the same on every build host.
        """
        found: dict[str, object] = {
            "recipe": RECIPE_VERSION,
            "tool": "mmdebstrap",
            "suite": self.suite,
            "variant": self.variant,
            "components": sorted(set(self.components)),
            "packages": sorted(set(self.packages)),
            "mirror": self.mirror.rstrip("/") if self.mirror else None,
            "security": self.security,
            "source_date_epoch": self.source_date_epoch,
        }
        if self.architecture is not None:
            found["architecture"] = self.architecture
        return found

    def effective_architecture(self) -> str:
        """The Debian architecture a run bootstraps: the declared one, or this machine's."""
        return self.architecture if self.architecture is not None else native_arch()

    def effective_epoch(self, now: datetime | None = None) -> int:
        """SOURCE_DATE_EPOCH for a run: the declared one, or `now`'s date at 00:00 UTC."""
        if self.source_date_epoch is not None:
            return self.source_date_epoch
        return day_epoch(now)


def _check(what: str, values: Any, pattern: re.Pattern[str]) -> None:
    for value in values:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InputError(f"invalid {what} {value!r}", hint=f"expected {pattern.pattern}")
