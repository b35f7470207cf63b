"""The schema revisions this socle knows, read from its own migration files.

No Alembic and no SQLAlchemy here: every `socle build` asks whether the
history's schema is current, and the answer needs only the `revision = ...`
lines of `migrations/versions/*.py`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default; env.py keeps it
_REVISION = re.compile(r"^(down_)?revision\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


@cache
def revisions() -> dict[str, str | None]:
    """Each revision this socle knows, with the one it follows (None for the first)."""
    found: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        values = {bool(m[1]): m[2] for m in _REVISION.finditer(path.read_text(encoding="utf-8"))}
        if False in values:
            found[_literal(values[False]) or ""] = _literal(values.get(True, "None"))
    return found


def _literal(value: str) -> str | None:
    return None if value == "None" else value.strip("\"'")


def head() -> str:
    """The newest revision this socle knows."""
    known = revisions()
    (newest,) = set(known) - set(known.values())
    return newest
