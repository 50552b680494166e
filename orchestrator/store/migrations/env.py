"""Alembic environment of the store.

Run by ``orchestrator.store.migrate`` (which hands over an open connection in
``config.attributes["connection"]``) or by the ``alembic`` command with
``orchestrator/store/alembic.ini`` (``-x url=...`` overrides the URL). Logging is left to the caller.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from orchestrator.store.engine import make_engine
from orchestrator.store.tables import Base


def _run(connection: Connection) -> None:
    """Run the migrations on ``connection`` in one transaction."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    """The database URL: ``-x url=...`` first, else ``sqlalchemy.url`` of the ini file."""
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("alembic: no database url (give -x url=... or sqlalchemy.url)")
    return url


def main() -> None:
    """Migrate the connection handed over, or one opened from the configured URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if context.is_offline_mode():
        context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


main()
