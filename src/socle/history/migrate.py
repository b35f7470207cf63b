"""The schema's revision: checked at every open, migrated forward with Alembic.

Every `socle build` opens the history, so the check is cheap: the revisions are
read from the migration files' own `revision = ...` lines (revisions.py) and the
database's from its `alembic_version` table with a plain query. Alembic itself is
imported only when a migration is due (or the version table is unusual).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from socle.errors import SocleError
from socle.history.revisions import MIGRATIONS, VERSION_TABLE, head, revisions
from socle.history.store import redact, unreachable

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration over socle's migrations, bound to `engine` (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def current(engine: Engine, url: str) -> str | None:
    """The database's revision; None for an empty database."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            rows = connection.execute(text(f"select version_num from {VERSION_TABLE}")).all()
            if len(rows) == 1:
                return str(rows[0][0])
            from alembic.runtime.migration import MigrationContext  # none, or branches

            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise unreachable(url, exc) from None


def check_and_upgrade(engine: Engine, url: str, *, migrate: bool = True) -> None:
    """Refuse a schema from a newer socle; bring an older (or empty) one to this socle's head."""
    found = current(engine, url)
    if found is not None and found not in revisions():
        raise SocleError(
            f"the history database {redact(url)} was migrated by a newer socle "
            f"(schema revision {found}; this socle knows up to {head()})",
            hint="upgrade socle, or point --db at another database",
        )
    if found == head() or not migrate:
        return
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), "head")
    except DBAPIError as exc:
        raise unreachable(url, exc) from None
