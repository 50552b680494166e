"""Migrations on SQLite and on a real PostgreSQL server: create, re-run, agree with the models, go back."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from interfaces.clock import VirtualClock
from maps.model import GeoOrigin
from orchestrator.store import (
    SiteRepository,
    StoreError,
    current_revision,
    downgrade,
    head_revision,
    session_factory,
    upgrade,
)
from orchestrator.store.tables import Base

ALL_TABLES = set(Base.metadata.tables)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_fresh_database_has_no_revision(engine: Engine) -> None:
    """A database that was never migrated reports no revision."""
    assert current_revision(engine) is None


def test_upgrade_creates_the_tables(engine: Engine) -> None:
    """upgrade() creates sites, robots and robot snapshots and leaves the database at the head."""
    upgrade(engine)
    assert current_revision(engine) == head_revision() == "0006"
    assert _tables(engine) == ALL_TABLES
    columns = {c["name"] for c in inspect(engine).get_columns("robots")}
    assert columns == {
        "id", "manufacturer", "serial_number", "kind", "site_id", "profile", "display_name", "created_at",
        "enabled",
    }  # fmt: skip


def test_upgrade_by_url(database_url: str) -> None:
    """upgrade() and current_revision() also take a URL and open (and close) their own engine."""
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


def test_upgrade_is_idempotent_and_keeps_data(engine: Engine, clock: VirtualClock) -> None:
    """Running upgrade() again changes nothing: same revision, rows still there."""
    upgrade(engine)
    with session_factory(engine).begin() as session:
        SiteRepository(session, clock).add("neijiang", GeoOrigin(29.58, 105.06, 350.0))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with session_factory(engine).begin() as session:
        assert [s.name for s in SiteRepository(session, clock).list()] == ["neijiang"]


def test_models_and_migrations_agree(engine: Engine) -> None:
    """After upgrade, autogenerate finds no difference between the models and the database."""
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_to_base_drops_the_tables_and_upgrade_restores_them(engine: Engine) -> None:
    """downgrade('base') removes every table; upgrading again recreates them."""
    upgrade(engine)
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert _tables(engine) == set()
    upgrade(engine)
    assert _tables(engine) == ALL_TABLES


def test_unknown_revision_raises_store_error(engine: Engine) -> None:
    """Asking for a revision that does not exist raises StoreError and changes nothing."""
    with pytest.raises(StoreError, match="cannot upgrade to 9999"):
        upgrade(engine, "9999")
    assert current_revision(engine) is None


def test_unreachable_database_raises_store_error() -> None:
    """A server that does not answer gives StoreError naming the URL, not a driver exception."""
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/"):
        current_revision("postgresql+psycopg://postgres@127.0.0.1:1/postgres")
