"""Fixtures of the store tests: an engine on each backend, migrated or not, and a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from interfaces.clock import VirtualClock
from orchestrator.store import make_engine, session_factory, upgrade

T0 = 1_800_000_000.0
"""Where the virtual clock starts (2027-01-15 08:00:00 UTC)."""


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at ``T0``."""
    return VirtualClock(start=T0)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a new, empty database (SQLite file or PostgreSQL)."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    """The engine, after the migrations have created every table."""
    upgrade(engine)
    return engine


@pytest.fixture
def session(migrated: Engine) -> Iterator[Session]:
    """A session on the migrated database; committed at the end of the test if it is still good."""
    with session_factory(migrated).begin() as sess:
        yield sess
