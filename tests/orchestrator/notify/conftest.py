"""Fixtures of the notification tests: a virtual clock, a real cipher, an outbox database on SQLite and
PostgreSQL, a gateway stub on loopback and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from notify_testkit import T0, GatewayStub, make_cipher
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import VirtualClock
from orchestrator.security.crypto import PersonalDataCipher
from orchestrator.store import make_engine, session_factory
from orchestrator.store.notify_tables import OutboxRow


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at ``T0``."""
    return VirtualClock(start=T0)


@pytest.fixture
def cipher() -> PersonalDataCipher:
    """A personal-data cipher under fresh random keys."""
    return make_cipher()


@pytest.fixture
def outbox_engine(database_url: str) -> Iterator[Engine]:
    """An engine on a new database (SQLite, then PostgreSQL) holding the outbox table.

    The table is made from the model: these tests are about the outbox's logic; that the migrations
    make the same table is checked by ``test_migration.py`` and the store's migration tests.
    """
    engine = make_engine(database_url)
    OutboxRow.__table__.create(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(outbox_engine: Engine) -> sessionmaker[Session]:
    """Sessions on the outbox database."""
    return session_factory(outbox_engine)


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayStub]:
    """A gateway stub listening on a free loopback port."""
    stub = GatewayStub()
    await stub.start()
    yield stub
    await stub.close()


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that ignores proxy settings of the environment (the gateway is on loopback)."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client
