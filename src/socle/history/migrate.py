"""The schema's revision: checked at every open, migrated forward with Alembic."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from socle.errors import SocleError
from socle.history.store import MIGRATIONS, redact, unreachable


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration over socle's migrations, bound to `engine` (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head() -> str:
    """The newest revision this socle knows."""
    script = ScriptDirectory(str(MIGRATIONS))
    revision = script.get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine, url: str) -> str | None:
    """The database's revision; None for an empty database."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise unreachable(url, exc) from None


def check_and_upgrade(engine: Engine, url: str, *, migrate: bool = True) -> None:
    """Refuse a schema from a newer socle; bring an older (or empty) one to this socle's head."""
    found = current(engine, url)
    config = alembic_config(engine)
    script = ScriptDirectory.from_config(config)
    known = {r.revision for r in script.walk_revisions()}
    if found is not None and found not in known:
        raise SocleError(
            f"the history database {redact(url)} was migrated by a newer socle "
            f"(schema revision {found}; this socle knows up to {head()})",
            hint="upgrade socle, or point --db at another database",
        )
    if found == head() or not migrate:
        return
    try:
        command.upgrade(config, "head")
    except DBAPIError as exc:
        raise unreachable(url, exc) from None
