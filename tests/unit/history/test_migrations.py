"""The Alembic migrations build exactly the tables the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from socle.history.models import Base
from socle.history.store import HistoryStore


def test_the_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    HistoryStore.open(url).close()
    with create_engine(url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_the_revisions_read_from_the_files_are_alembics() -> None:
    from alembic.script import ScriptDirectory

    from socle.history.migrate import head, revisions
    from socle.history.store import MIGRATIONS

    script = ScriptDirectory(str(MIGRATIONS))
    assert revisions() == {r.revision: r.down_revision for r in script.walk_revisions()}
    assert head() == script.get_current_head()


def test_opening_a_current_database_does_not_import_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/h.db"
    HistoryStore.open(url).close()  # created and migrated here
    code = (
        "import sys; from socle.history.store import HistoryStore;"
        f"HistoryStore.open({url!r}).close();"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
