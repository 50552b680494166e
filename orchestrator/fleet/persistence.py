"""The fleet in the store: robots registered from the fleet file, snapshots written at a bounded rate.

The fleet picture lives in memory and changes with every ``state``; the store keeps a *snapshot* per
robot (table ``robot_snapshots``) so a restarted orchestrator and other readers know where each robot
was. ``SnapshotPersister.flush_due()`` writes, in one transaction, the robots that changed and were
not written for ``interval_s`` (robots staggered over the interval); the fleet master calls it ten
times per interval, so a robot costs at most one row write per interval however often it reports (no
per-message database write) and the writes are spread evenly.

The standing stops of ``orchestrator.fleet.safety`` (the console's "stop all", building stops) are
kept in ``standing_stops`` by ``save_standing_stops`` and read back at start-up by
``load_standing_stops``.

Database work runs in a worker thread (``asyncio.to_thread``): the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import Clock
from orchestrator.fleet.config import RobotConfig
from orchestrator.fleet.digest import PositionDigest, StateDigest
from orchestrator.fleet.picture import Link, RobotStatus
from orchestrator.fleet.safety import Acting
from orchestrator.store import NotFoundError, RobotRepository, StoreError, session_factory
from orchestrator.store.console_tables import StandingStopRow
from orchestrator.store.tables import RobotSnapshotRow


class SnapshotStore:
    """Registers the fleet's robots at one site and upserts their snapshots (blocking calls)."""

    def __init__(self, engine: Engine, site_id: int, clock: Clock) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)
        self._site_id = site_id
        self._clock = clock
        self.rows_written = 0
        self._statement = _upsert(engine.dialect.name)
        self.transactions = 0

    def register(self, robots: Sequence[RobotConfig]) -> dict[str, int]:
        """Add the robots the store does not know yet, bring the others up to date; serial → robot id."""
        ids: dict[str, int] = {}
        with self._sessions.begin() as session:
            repo = RobotRepository(session, self._clock)
            for robot in robots:
                try:
                    record = repo.get_by_serial(robot.manufacturer, robot.serial)
                    record = repo.update(
                        record.id,
                        kind=robot.kind,
                        site_id=self._site_id,
                        profile=robot.profile,
                        display_name=robot.name,
                    )
                except NotFoundError:
                    record = repo.add(
                        robot.manufacturer,
                        robot.serial,
                        robot.kind,
                        self._site_id,
                        profile=robot.profile,
                        display_name=robot.name,
                    )
                ids[robot.serial] = record.id
        return ids

    def write(self, snapshots: Sequence[Snapshot]) -> None:
        """Insert or replace the robots' snapshot rows, in one transaction."""
        if not snapshots:
            return
        rows = [snapshot.row() for snapshot in snapshots]
        try:
            with self.engine.begin() as conn:
                conn.execute(self._statement, rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write {len(rows)} robot snapshots: {exc}") from exc
        self.rows_written += len(rows)
        self.transactions += 1

    def read(self) -> dict[int, dict[str, Any]]:
        """Every snapshot by robot id, as column → value."""
        with self._sessions() as session:
            rows = session.scalars(select(RobotSnapshotRow)).all()
            columns = RobotSnapshotRow.__table__.columns.keys()
            return {r.robot_id: {c: getattr(r, c) for c in columns} for r in rows}


def _upsert(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (robot_id) DO UPDATE`` on SQLite and PostgreSQL, for executemany
    (one statement, compiled once and cached, whatever the number of rows)."""
    table = cast(Table, RobotSnapshotRow.__table__)
    if dialect not in ("postgresql", "sqlite"):
        raise StoreError(f"robot snapshots need SQLite or PostgreSQL, not {dialect}")
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    updated = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != "robot_id"}
    return stmt.on_conflict_do_update(index_elements=["robot_id"], set_=updated)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a robot's row will say, captured on the event loop (references only: cheap); ``row()``
    turns it into column values in the writer's thread."""

    robot_id: int
    link: Link
    link_since: float | None
    state: StateDigest | None
    received_at: float | None
    position: PositionDigest | None
    taken_at: float

    @classmethod
    def of(cls, status: RobotStatus, robot_id: int, now: float) -> Snapshot:
        """The snapshot of a robot's current status."""
        return cls(
            robot_id, status.link, status.link_since, status.state, status.received_at, status.position, now
        )

    def row(self) -> dict[str, Any]:
        """The ``robot_snapshots`` row."""
        s, p = self.state, self.position
        errors = [
            {"type": e.error_type, "level": e.error_level.value, "description": e.error_description or ""}
            for e in (s.errors if s is not None else ())
        ]
        return {
            "robot_id": self.robot_id,
            "link": self.link.value,
            "link_since": _dt(self.link_since),
            "state_at": _dt(s.sent_at) if s is not None else None,
            "received_at": _dt(self.received_at),
            "order_id": s.order_id if s is not None else None,
            "order_update_id": s.order_update_id if s is not None else None,
            "last_node_id": s.last_node_id if s is not None else None,
            "driving": s.driving if s is not None else None,
            "paused": s.paused if s is not None else None,
            "battery_charge": s.battery_state.battery_charge if s is not None else None,
            "charging": s.battery_state.charging if s is not None else None,
            "operating_mode": s.operating_mode.value if s is not None else None,
            "x": p.x if p is not None else None,
            "y": p.y if p is not None else None,
            "theta": p.theta if p is not None else None,
            "map_id": p.map_id if p is not None else None,
            "errors": json.dumps(errors, ensure_ascii=False),
            "updated_at": _dt(self.taken_at),
        }


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class SnapshotPersister:
    """Writes changed robots' snapshots, each robot at most once per ``interval_s``.

    The master calls ``flush_due`` ten times per interval; robots are staggered over the interval
    (the i-th of n first becomes due ``i/n`` of an interval after start-up), so each call writes about
    a tenth of the fleet instead of everyone at once (no periodic stall of the event loop).
    """

    def __init__(
        self,
        store: SnapshotStore,
        robot_ids: dict[str, int],
        clock: Clock,
        interval_s: float,
        logger: logging.Logger,
    ) -> None:
        self.store = store
        self.robot_ids = robot_ids
        self.interval_s = interval_s
        self._clock = clock
        self._log = logger
        self._lock = asyncio.Lock()
        start, n = clock.monotonic(), max(1, len(robot_ids))
        self._first_due = {serial: start + interval_s * i / n for i, serial in enumerate(robot_ids)}

    def _due(self, status: RobotStatus, mono: float) -> bool:
        if not status.dirty:
            return False
        if status.persisted_mono is None:
            return mono >= self._first_due[status.config.serial]
        return mono - status.persisted_mono >= self.interval_s

    async def flush_due(self, robots: Iterable[RobotStatus], *, everything: bool = False) -> int:
        """Write the robots that changed and are due (``everything``: all that changed); how many."""
        async with self._lock:
            mono, now = self._clock.monotonic(), self._clock.now()
            due = [r for r in robots if (everything and r.dirty) or self._due(r, mono)]
            snapshots = [Snapshot.of(r, self.robot_ids[r.config.serial], now) for r in due]
            for r in due:
                r.dirty, r.persisted_mono = False, mono
            try:
                await asyncio.to_thread(self.store.write, snapshots)
            except StoreError as exc:
                for r in due:
                    r.dirty = True  # try again next time
                self._log.error("fleet: %s", exc)
                return 0
            return len(snapshots)

    async def flush_all(self, robots: Iterable[RobotStatus]) -> int:
        """Write every changed robot now, whatever the interval (at shutdown)."""
        return await self.flush_due(robots, everything=True)


# --- standing stops (issue 9) ----------------------------------------------------------------------------


def load_standing_stops(sessions: sessionmaker[Session]) -> dict[str, Acting]:
    """The standing stops kept in the store (``FleetSafety.standing()`` of the last run), by scope."""
    with sessions() as session:
        rows = session.scalars(select(StandingStopRow)).all()
        return {row.scope: Acting(row.operator, row.role) for row in rows}


def save_standing_stops(sessions: sessionmaker[Session], standing: Mapping[str, Acting], now: float) -> None:
    """Make the store hold exactly ``standing`` (one transaction; a stop kept keeps its ``since``)."""
    try:
        with sessions.begin() as session:
            kept = {row.scope: row for row in session.scalars(select(StandingStopRow)).all()}
            for scope, row in kept.items():
                if scope not in standing:
                    session.delete(row)
            for scope, by in standing.items():
                if scope not in kept:
                    since = datetime.fromtimestamp(now, UTC)
                    session.add(StandingStopRow(scope=scope, operator=by.operator, role=by.role, since=since))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write the standing stops: {exc}") from exc
