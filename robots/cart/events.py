"""The cart's durable outbox: events written to disk before anything is acted on, delivered exactly once.

Pickups checked offline and arrivals at stops must reach the orchestrator once each, however long it is
unreachable and whether or not the cart reboots meanwhile. Each event is committed to a local SQLite
file (``synchronous=FULL``: on disk when ``put`` returns) with an id unique to the cart
(``{cart}-{file id}-{seq}``) and sent in order by ``Forwarder``. The orchestrator's cart routes are
idempotent on that id, so a send whose answer was lost is simply sent again: at-least-once sending
plus idempotent receiving is exactly once.

The same file keeps small named values (``remember``/``recall``): the last code sync, so codes still work
after a reboot without network.

Answers from the orchestrator decide each event's fate:

* 2xx (new or replayed)                 → ``delivered``
* 401, 408, 429, 5xx, no answer at all  → stays ``pending`` and is tried again with back-off
* any other 4xx (the event is refused)  → ``rejected`` with the reason, kept for the operator, not retried
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from interfaces.clock import Clock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   REAL NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    settled_at   REAL
);
CREATE INDEX IF NOT EXISTS events_pending ON events (status, seq);
CREATE TABLE IF NOT EXISTS memory (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"""


class EventStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class CartEvent:
    """One event of the cart: ``kind`` is ``pickup`` or ``arrival``; ``body`` is what the route takes."""

    seq: int
    event_id: str
    kind: str
    body: dict[str, Any]
    created_at: float
    status: EventStatus
    attempts: int
    last_error: str | None


class Refused(Exception):
    """The orchestrator refused the event for good (a 4xx other than 401/408/429)."""


class Unreachable(Exception):
    """The orchestrator did not take the event this time (no answer, 5xx, 401, 408, 429): try later."""


Sender = Callable[[CartEvent], Awaitable[None]]
"""Sends one event; returns when the orchestrator took it; raises ``Refused`` or ``Unreachable``."""


class EventQueue:
    """The outbox file. Not thread-safe: use it from the event loop (each call is one short transaction)."""

    def __init__(self, path: Path | str, cart: str) -> None:
        self.cart = cart
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._changed = asyncio.Event()
        self.install = self._install_id()

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def put(self, kind: str, body: dict[str, Any], now: float) -> str:
        """Store a new event (on disk when this returns) and return its id; ``body`` gets ``event_id``."""
        with self._transaction():
            last = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
            seq = (last[0] if last else 0) + 1  # AUTOINCREMENT: a sequence number is never used twice
            event_id = f"{self.cart}-{self.install}-{seq:06d}"
            self._db.execute(
                "INSERT INTO events (seq, event_id, kind, body, created_at) VALUES (?, ?, ?, ?, ?)",
                (seq, event_id, kind, json.dumps({"event_id": event_id, **body}), now),
            )
        self._changed.set()
        return event_id

    def pending(self, limit: int = 100) -> list[CartEvent]:
        """The oldest events not yet delivered or rejected, in the order they were put."""
        rows = self._db.execute(
            "SELECT * FROM events WHERE status = 'pending' ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [_event(row) for row in rows]

    def events(self, status: EventStatus | None = None) -> list[CartEvent]:
        """Every event (of ``status``), oldest first."""
        if status is None:
            rows = self._db.execute("SELECT * FROM events ORDER BY seq").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM events WHERE status = ? ORDER BY seq", (status,)
            ).fetchall()
        return [_event(row) for row in rows]

    def count(self, status: EventStatus = EventStatus.PENDING) -> int:
        """How many events have ``status``."""
        return int(self._db.execute("SELECT count(*) FROM events WHERE status = ?", (status,)).fetchone()[0])

    def settle(self, event_id: str, status: EventStatus, now: float, error: str | None = None) -> None:
        """Mark an event delivered or rejected (for good)."""
        with self._transaction():
            self._db.execute(
                "UPDATE events SET status = ?, settled_at = ?, last_error = ?, attempts = attempts + 1 "
                "WHERE event_id = ?",
                (status, now, error, event_id),
            )
        self._changed.set()

    def failed_attempt(self, event_id: str, error: str) -> None:
        """Count a send that did not go through."""
        with self._transaction():
            self._db.execute(
                "UPDATE events SET attempts = attempts + 1, last_error = ? WHERE event_id = ?",
                (error, event_id),
            )

    def remember(self, name: str, value: Any) -> None:
        """Keep a JSON value under ``name`` (replacing the old one)."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO memory (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, json.dumps(value)),
            )

    def recall(self, name: str) -> Any | None:
        """The value kept under ``name`` (None when there is none)."""
        row = self._db.execute("SELECT value FROM memory WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    async def wait_changed(self) -> None:
        """Return after the next ``put`` or ``settle``."""
        self._changed.clear()
        await self._changed.wait()

    def _install_id(self) -> str:
        """A random id of this file, so a new file (a replaced disk) never reuses an old event id."""
        install = self.recall("install")
        if not isinstance(install, str):
            install = secrets.token_hex(4)
            self.remember("install", install)
        return install

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _event(row: tuple[Any, ...]) -> CartEvent:
    seq, event_id, kind, body, created_at, status, attempts, last_error, _settled = row
    return CartEvent(
        seq, event_id, kind, json.loads(body), created_at, EventStatus(status), attempts, last_error
    )


class Forwarder:
    """Sends the queue's pending events in order through ``send``, retrying with back-off.

    ``run()`` until cancelled. After a failure it waits ``retry_s``, doubling up to ``max_retry_s``;
    ``kick()`` (e.g. after a code sync got through) retries at once. ``on_change`` is called after an
    event is settled and when ``online`` changes.
    """

    def __init__(
        self,
        queue: EventQueue,
        send: Sender,
        clock: Clock,
        *,
        retry_s: float = 0.5,
        max_retry_s: float = 30.0,
        on_change: Callable[[], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._queue = queue
        self._on_change = on_change or (lambda: None)
        self._send = send
        self._clock = clock
        self._retry_s, self._max_retry_s = retry_s, max_retry_s
        self._log = logger or logging.getLogger("robopost.cart.events")
        self._kick = asyncio.Event()
        self.online = False
        """Whether the last send got through."""

    def kick(self) -> None:
        """Try again now (the orchestrator seems reachable)."""
        self._kick.set()

    async def run(self) -> None:
        """Deliver pending events until cancelled."""
        delay = self._retry_s
        while True:
            changed = asyncio.ensure_future(self._queue.wait_changed())
            try:
                if await self._flush():
                    delay = self._retry_s
                    await self._wait(changed, None)
                else:
                    await self._wait(changed, delay)
                    delay = min(delay * 2, self._max_retry_s)
            finally:
                changed.cancel()

    async def flush(self) -> bool:
        """Send what is pending now; whether the queue is empty afterwards."""
        return await self._flush()

    async def _flush(self) -> bool:
        while batch := self._queue.pending():
            for event in batch:
                try:
                    await self._send(event)
                except Refused as exc:
                    self._log.warning("cart event %s refused: %s", event.event_id, exc)
                    self._queue.settle(event.event_id, EventStatus.REJECTED, self._clock.now(), str(exc))
                    self._on_change()
                    continue
                except Unreachable as exc:
                    self._queue.failed_attempt(event.event_id, str(exc))
                    self._set_online(False)
                    return False
                self._queue.settle(event.event_id, EventStatus.DELIVERED, self._clock.now())
                self._set_online(True)
                self._on_change()
        return True

    def set_online(self, online: bool) -> None:
        """Whether the orchestrator answers (also learnt from other calls, e.g. the code sync)."""
        if online and not self.online:
            self.kick()
        self._set_online(online)

    def _set_online(self, online: bool) -> None:
        if online != self.online:
            self.online = online
            self._on_change()

    async def _wait(self, changed: asyncio.Future[None], delay: float | None) -> None:
        """Until the queue changes, a kick, or ``delay`` seconds (None: no time limit)."""
        self._kick.clear()
        kicked = asyncio.ensure_future(self._kick.wait())
        waiters: set[asyncio.Future[Any]] = {changed, kicked}
        if delay is not None:
            waiters.add(asyncio.ensure_future(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
