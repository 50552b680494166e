"""Engines: SQLite pragmas, URL handling and transactions that really are transactions."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from orchestrator.store import StoreError, make_engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a SQLite file in a folder that does not exist yet."""
    eng = make_engine(f"sqlite:///{tmp_path / 'var' / 'robopost.db'}", busy_timeout_ms=1234)
    yield eng
    eng.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(sqlite_engine: Engine) -> None:
    """Every SQLite connection is in WAL mode with foreign keys on and the busy timeout asked for."""
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234


def test_sqlite_file_folder_is_created(tmp_path: Path, sqlite_engine: Engine) -> None:
    """The folder of a SQLite file (e.g. var/) is created when the engine is made."""
    assert (tmp_path / "var").is_dir()


def test_sqlite_rollback_undoes_ddl_and_savepoints(sqlite_engine: Engine) -> None:
    """A rolled-back transaction undoes its DDL, and a rolled-back savepoint only its own rows."""
    with sqlite_engine.connect() as conn:
        trans = conn.begin()
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        trans.rollback()
    with sqlite_engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 't'").scalar() == 0
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        savepoint = conn.begin_nested()
        conn.execute(text("INSERT INTO t VALUES (2)"))
        savepoint.rollback()
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [1]


def test_sqlite_read_modify_write_transactions_wait_for_each_other(sqlite_engine: Engine) -> None:
    """Transactions take the write lock at BEGIN (IMMEDIATE), so concurrent read-then-write
    transactions queue behind each other instead of failing with "database is locked"."""
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))

    def bump(times: int) -> None:
        for _ in range(times):
            with sqlite_engine.begin() as conn:
                n = conn.execute(text("SELECT n FROM counter")).scalar_one()
                conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(bump, 25) for _ in range(8)]:
            future.result()
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 200


def test_bare_postgresql_url_uses_psycopg3() -> None:
    """A postgresql:// URL without a driver gets psycopg 3 (psycopg2 is not a dependency)."""
    eng = make_engine("postgresql://u@127.0.0.1:1/db")
    try:
        assert eng.url.drivername == "postgresql+psycopg"
    finally:
        eng.dispose()


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y", "postgresql+nosuchdriver://h/db"])
def test_bad_urls_raise_store_error(url: str) -> None:
    """An unparsable URL or an unknown dialect/driver raises StoreError naming the URL."""
    with pytest.raises(StoreError, match="database url"):
        make_engine(url)
