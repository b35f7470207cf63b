"""Version strings: validity, ordering and the prefixes that become floating tags."""

from __future__ import annotations

import re

# A tag component: no '-' because '-' separates a version from its variant in tags.
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._]{0,63}$")
_PART_RE = re.compile(r"\d+|[A-Za-z]+")

VersionKey = tuple[tuple[int, int, str], ...]


def is_valid(version: str) -> bool:
    """True when `version` can appear in a tag (letters, digits, '.', '_'; no '-')."""
    return bool(VERSION_RE.match(version)) and ".." not in version and not version.endswith(".")


def key(version: str) -> VersionKey:
    """An ordering key where 7.10 > 7.9 > 7 and 12 > 9 (numeric parts compare as numbers).

    Letters sort before numbers at the same position, so 8.rc1 < 8.0.
    """
    parts: list[tuple[int, int, str]] = []
    for part in _PART_RE.findall(version):
        if part.isdigit():
            parts.append((1, int(part), ""))
        else:
            parts.append((0, 0, part))
    return tuple(parts)


def prefixes(version: str) -> list[str]:
    """`7.5.1804` -> [`7.5.1804`, `7.5`, `7`]: the exact version first, then each shorter one."""
    fields = version.split(".")
    return [".".join(fields[:n]) for n in range(len(fields), 0, -1)]
