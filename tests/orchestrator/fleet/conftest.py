"""Fixtures of the fleet master's tests: a fleet, a master on a real Mosquitto, fake robots, helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fake_robot import SAMPLE_FLEET, FakeRobot, StateWaiter
from vda5050_samples import OfficialSchemas

from interfaces.clock import VirtualClock
from interfaces.mqtt import MqttClient, MqttConfig
from maps.io import load_map
from maps.model import Site
from orchestrator.fleet import FleetConfig, FleetMaster, FleetOptions, parse_fleet
from orchestrator.settings import default_campus_map
from sim.mosquitto import MosquittoBroker

T0 = 1_800_000_000.0
"""Where the virtual clock starts (2027-01-15 08:00:00 UTC)."""


OPTIONS = FleetOptions(
    stale_after_s=10.0, confirm_timeout_s=2.0, max_resends=2, persist_interval_s=5.0, request_factsheet=False
)


@pytest.fixture(scope="session")
def schemas(shared_data: Path) -> OfficialSchemas:
    """Validators of the official VDA 5050 2.1.0 schemas."""
    return OfficialSchemas(shared_data)


@pytest.fixture(scope="session")
def campus() -> Site:
    """The sample campus (read-only in tests)."""
    return load_map(default_campus_map())


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at ``T0``: the master's timeouts move only when the test says so."""
    return VirtualClock(start=T0)


@pytest.fixture
def fleet() -> FleetConfig:
    """Two robots of manufacturer acme: r1 (cart) and r2 (indoor)."""
    return parse_fleet(SAMPLE_FLEET)


@pytest.fixture
def fleet_options() -> FleetOptions:
    """Short timeouts (virtual seconds), two resends, no automatic factsheet requests."""
    return OPTIONS


@pytest.fixture
async def make_master(
    mqtt_broker: MosquittoBroker, fleet: FleetConfig, small_site: Site, clock: VirtualClock
) -> AsyncIterator[Callable[..., Awaitable[FleetMaster]]]:
    """Start fleet masters on the test broker (anonymous), small site, virtual clock; stopped at the end."""
    masters: list[FleetMaster] = []

    async def make(options: FleetOptions = OPTIONS, **kw: Any) -> FleetMaster:
        mqtt = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port))
        await mqtt.connect()
        m = FleetMaster(fleet, mqtt, small_site, clock=clock, options=options, owns_client=True, **kw)
        await m.start()
        masters.append(m)
        return m

    yield make
    for m in masters:
        await m.stop()


@pytest.fixture
async def master(make_master: Callable[..., Awaitable[FleetMaster]]) -> FleetMaster:
    """A started fleet master with ``OPTIONS``."""
    return await make_master()


@pytest.fixture
async def make_robot(
    mqtt_broker: MosquittoBroker, clock: VirtualClock, schemas: OfficialSchemas
) -> AsyncIterator[Callable[..., Awaitable[FakeRobot]]]:
    """Start fake robots on the test broker: ``await make_robot("r1")``; closed at the end."""
    robots: list[FakeRobot] = []

    async def make(serial: str, **kw: Any) -> FakeRobot:
        robot = FakeRobot(mqtt_broker, serial, clock, schemas, **kw)
        await robot.start()
        robots.append(robot)
        return robot

    yield make
    for robot in robots:
        await robot.close()


@pytest.fixture
def seen(master: FleetMaster) -> StateWaiter:
    """Waits for the master to take in states."""
    return StateWaiter(master)
