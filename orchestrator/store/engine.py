"""Engines and sessions: SQLite (WAL) by default, PostgreSQL (psycopg 3) in production.

``make_engine`` sets SQLite up for a long-running service on every new connection: WAL journal (readers
do not block the writer), ``foreign_keys=ON`` (SQLite ignores foreign keys otherwise), a busy timeout
(a second writer waits instead of failing at once) and SQLAlchemy-emitted ``BEGIN IMMEDIATE`` so that
transactions, savepoints and migrations are real transactions under Python's ``sqlite3`` driver.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.store.errors import StoreError

DEFAULT_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite connection waits for another writer's lock before failing."""


def make_engine(url: str | URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and the pragmas above.

    A bare ``postgresql://`` URL is taken to mean the psycopg 3 driver. Raises ``StoreError`` for a
    URL that cannot be parsed or names a driver that is not installed.
    """
    parsed = _parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, busy_timeout_ms)
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"database url {parsed.render_as_string()}: {exc}") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(engine, expire_on_commit=False)


def _parse_url(url: str | URL) -> URL:
    """``url`` as a SQLAlchemy URL, with the psycopg 3 driver chosen for plain ``postgresql``."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database url {url!r} cannot be parsed: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    """A SQLite engine whose connections use WAL, foreign keys, a busy timeout and explicit BEGIN."""
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(
                "PRAGMA synchronous=NORMAL"
            )  # with WAL: never corrupt; a power cut may lose the last commits
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock at the start, waiting up to busy_timeout for it: a deferred
        # BEGIN that reads and then writes fails at once with "database is locked" when another
        # writer got there first (the lock upgrade cannot wait). Readers outside transactions are not
        # affected (WAL); PostgreSQL is the backend for many concurrent writers.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
