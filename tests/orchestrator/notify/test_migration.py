"""The outbox migration (0004) on SQLite and PostgreSQL: creates the table the model describes, goes back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from notify_testkit import PHONE, T0, at, inline, make_cipher
from sqlalchemy import Engine, MetaData, inspect

from interfaces.clock import VirtualClock
from orchestrator.notify.messages import cart_at_stop
from orchestrator.notify.outbox import Outbox, OutboxStatus, OutboxWorker
from orchestrator.notify.providers import LogProvider
from orchestrator.store import current_revision, downgrade, make_engine, session_factory, upgrade
from orchestrator.store.notify_tables import OutboxRow


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a new, empty database."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def test_migration_creates_the_outbox_as_the_model_describes(engine: Engine) -> None:
    """After upgrading to 0004 the outbox table, its unique key and its index match the model exactly."""
    upgrade(engine, "0004")
    assert "outbox" in inspect(engine).get_table_names()
    outbox_only = MetaData()
    OutboxRow.__table__.to_metadata(outbox_only)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), outbox_only)
    assert [d for d in diff if "outbox" in repr(d)] == []
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("outbox")}
    assert indexes["ix_outbox_due"] == ["status", "next_attempt_at"]


def test_downgrade_to_0003_drops_only_the_outbox(engine: Engine) -> None:
    """Going back one revision removes the outbox and leaves the domain tables."""
    upgrade(engine, "0004")
    before = set(inspect(engine).get_table_names())
    downgrade(engine, "0003")
    assert current_revision(engine) == "0003"
    assert before - set(inspect(engine).get_table_names()) == {"outbox"}


async def test_the_worker_runs_on_the_migrated_table(engine: Engine) -> None:
    """Enqueue (also held) and send through the table the migration made (not the model's)."""
    upgrade(engine, "0004")
    clock, cipher, provider = VirtualClock(T0), make_cipher(), LogProvider()
    sessions = session_factory(engine)
    with sessions.begin() as session:
        message = cart_at_stop(PHONE, "042917", "Dorm 3", at(60), ref="p1")
        entry = Outbox(session, cipher, clock).enqueue(message)
        Outbox(session, cipher, clock).enqueue(
            cart_at_stop(PHONE, "042917", "Gym", at(60), ref="p2"), hold=True
        )
    worker = OutboxWorker(sessions, provider, cipher, clock, blocking=inline)
    assert (await worker.run_once()).sent == 1
    with sessions.begin() as session:
        assert Outbox(session, cipher, clock).get(entry.id).status is OutboxStatus.SENT
    assert [m.dedupe_key for m in provider.messages] == ["cart_at_stop/p1"]
