"""The fleet in the store: robots registered from the fleet file, snapshots at a bounded rate."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Iterator

import pytest
from fake_robot import FakeRobot, StateWaiter
from sqlalchemy import Engine

from interfaces.clock import VirtualClock
from maps.model import GeoOrigin
from orchestrator.fleet import FleetConfig, FleetMaster, SnapshotStore, parse_fleet
from orchestrator.fleet.persistence import SnapshotPersister
from orchestrator.fleet.picture import RobotStatus
from orchestrator.store import (
    RobotKind,
    RobotRepository,
    SiteRepository,
    make_engine,
    session_factory,
    upgrade,
)

MakeRobot = Callable[..., Awaitable[FakeRobot]]


@pytest.fixture
def store(database_url: str, clock: VirtualClock) -> Iterator[SnapshotStore]:
    """A snapshot store on a migrated database (SQLite, then PostgreSQL) with the campus registered."""
    engine: Engine = make_engine(database_url)
    upgrade(engine)
    with session_factory(engine).begin() as session:
        site = SiteRepository(session, clock).add("small", GeoOrigin(29.58, 105.06, 350.0))
    yield SnapshotStore(engine, site.id, clock)
    engine.dispose()


def test_robots_are_registered_once(store: SnapshotStore, fleet: FleetConfig, clock: VirtualClock) -> None:
    """Registering the fleet adds its robots with kind, profile and name; registering again keeps the
    same ids and brings changed fields up to date."""
    ids = store.register(fleet.robots)
    again = store.register(fleet.robots)
    assert ids == again and sorted(ids) == ["r1", "r2"]
    with session_factory(store.engine).begin() as session:
        robots = {r.serial_number: r for r in RobotRepository(session, clock).list()}
    assert robots["r1"].kind is RobotKind.CART and robots["r1"].profile == "cart"
    assert robots["r1"].display_name == "Cart 1"
    assert robots["r2"].kind is RobotKind.INDOOR and robots["r2"].profile == "indoor"


async def test_snapshots_are_written_at_a_bounded_rate(
    make_master: Callable[..., Awaitable[FleetMaster]],
    make_robot: MakeRobot,
    store: SnapshotStore,
    clock: VirtualClock,
) -> None:
    """However many states arrive, a robot's snapshot is written at most once per persist interval,
    in one transaction for all due robots, and holds the latest state; stopping writes the last one."""
    master = await make_master(snapshots=store)
    seen = StateWaiter(master)
    robot = await make_robot("r1")
    for charge in range(10):
        robot.battery = 50.0 + charge
        await robot.publish_state()
    await seen.wait("r1", 10)
    assert await master.flush_snapshots() == 1
    for charge in range(10):
        robot.battery = 70.0 + charge
        await robot.publish_state()
    await seen.wait("r1", 20)
    assert await master.flush_snapshots() == 0  # written less than an interval ago
    clock.advance(master.options.persist_interval_s)
    assert await master.flush_snapshots() == 1
    assert await master.flush_snapshots() == 0
    assert store.rows_written == 2
    rows = store.read()
    (row,) = rows.values()
    assert row["battery_charge"] == 79.0 and row["link"] == "ONLINE" and row["order_id"] == ""
    assert (row["x"], row["y"], row["map_id"]) == (0.0, 0.0, "outdoor")
    assert json.loads(row["errors"]) == []
    robot.battery = 5.0
    await robot.publish_state()
    await seen.wait("r1", 21)
    await master.stop()
    assert next(iter(store.read().values()))["battery_charge"] == 5.0


async def test_the_persist_loop_runs_on_the_clock(
    make_master: Callable[..., Awaitable[FleetMaster]],
    make_robot: MakeRobot,
    store: SnapshotStore,
    clock: VirtualClock,
) -> None:
    """The master's own loop writes due snapshots every persist interval of its clock."""
    master = await make_master(snapshots=store)
    seen = StateWaiter(master)
    robot = await make_robot("r2")
    await robot.publish_state()
    await seen.wait("r2", 1)
    before = store.transactions
    await clock.run_for(master.options.persist_interval_s)
    await master.flush_snapshots()  # waits for a write the loop may still have in its thread
    assert store.transactions == before + 1 and store.rows_written >= 1


async def test_writes_are_staggered_over_the_interval(store: SnapshotStore, clock: VirtualClock) -> None:
    """Ten robots reporting all the time: each flush (ten per interval) writes about a tenth of them,
    and no robot is written twice within one interval."""
    fleet = parse_fleet(
        {
            "orchestrator": {"username": "o", "password": "p"},
            "robots": [
                {"manufacturer": "m", "serial": f"s{i}", "kind": "cart", "password": "p"} for i in range(10)
            ],
        }
    )
    ids = store.register(fleet.robots)
    robots = [RobotStatus(config) for config in fleet.robots]
    persister = SnapshotPersister(store, ids, clock, 5.0, logging.getLogger("test"))
    written: dict[str, list[float]] = {r.config.serial: [] for r in robots}
    for _ in range(40):  # 20 s in steps of 0.5 s
        for r in robots:
            r.dirty = True
        before = {r.config.serial: r.persisted_mono for r in robots}
        assert await persister.flush_due(robots) <= 1
        for r in robots:
            if r.persisted_mono != before[r.config.serial]:
                written[r.config.serial].append(clock.monotonic())
        clock.advance(0.5)
    for times in written.values():
        assert len(times) == 4
        assert all(b - a >= 5.0 for a, b in itertools.pairwise(times))
    assert sorted(t[0] for t in written.values()) == [0.5 * i for i in range(10)]
