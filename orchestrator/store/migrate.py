"""Schema migrations, run from code: ``upgrade(url)``, ``downgrade(url, rev)``, ``current_revision(url)``.

The Alembic scripts ship inside the package (``orchestrator/store/migrations``); no ini file is read.
Each command runs in one transaction (SQLite and PostgreSQL both have transactional DDL), so a failed
migration leaves the schema as it was. A later issue adds tables with a new file in
``migrations/versions`` whose ``down_revision`` is the current head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.store.engine import make_engine
from orchestrator.store.errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
"""Where the Alembic environment and the revision scripts live."""

Database = str | URL | Engine
"""A database URL, or an engine to use (and leave open)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations, optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the package ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest); a no-op when already there."""
    with _connection(database, f"upgrade to {revision}") as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(database: Database, revision: str) -> None:
    """Take the schema back to ``revision`` (``"base"``: no tables, ``"-1"``: one step back)."""
    with _connection(database, f"downgrade to {revision}") as conn:
        command.downgrade(alembic_config(conn), revision)


def current_revision(database: Database) -> str | None:
    """The revision the database is at, or ``None`` if it was never migrated."""
    with _connection(database, "read the schema revision") as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _connection(database: Database, doing: str) -> Iterator[Connection]:
    """A connection in a transaction that commits on success; errors become ``StoreError``."""
    engine = database if isinstance(database, Engine) else make_engine(database)
    try:
        with engine.begin() as conn:
            yield conn
    except (CommandError, SQLAlchemyError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise StoreError(f"{where}: cannot {doing}: {exc}") from exc
    finally:
        if engine is not database:
            engine.dispose()
