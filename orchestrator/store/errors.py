"""Errors of the store.

    StoreError            the store cannot do what was asked (also: database unreachable, bad URL)
    ├── NotFoundError     no row has that key, or a row it refers to (e.g. a robot's site) is missing
    └── ConflictError     the write breaks a unique rule: a site name or a robot serial already taken

Repositories raise only these; SQLAlchemy's and the drivers' exceptions are converted where they are
caught (``integrity_kind`` tells a unique violation from a foreign-key one on SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.exc import IntegrityError

# PostgreSQL SQLSTATE codes, class 23 "integrity constraint violation"
_PG_UNIQUE = "23505"
_PG_FOREIGN_KEY = "23503"


class StoreError(Exception):
    """The store cannot do what was asked."""


class NotFoundError(StoreError):
    """No row has the key asked for, or a row the write refers to does not exist."""


class ConflictError(StoreError):
    """The write would break a unique rule."""


def integrity_kind(exc: IntegrityError) -> Literal["unique", "foreign_key", "other"]:
    """Which rule an ``IntegrityError`` broke, read from the driver's error (SQLite or PostgreSQL)."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg 3
    if sqlstate == _PG_UNIQUE:
        return "unique"
    if sqlstate == _PG_FOREIGN_KEY:
        return "foreign_key"
    name = getattr(orig, "sqlite_errorname", "")  # sqlite3, Python >= 3.11
    text = str(orig)
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY") or "UNIQUE constraint" in text:
        return "unique"
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY" or "FOREIGN KEY constraint" in text:
        return "foreign_key"
    return "other"
