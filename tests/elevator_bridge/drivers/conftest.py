"""Rigs for the driver tests: a simulated car in virtual time, its simulated controller, the driver.

The car runs on a ``VirtualClock`` that the test moves on (``rig.drive``); the controller and the
driver do real I/O (a pty pair with socat, a real Mosquitto) on the real clock, so a test waits for
what the driver reports with ``rig.expect`` (a time-out, never a sleep).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from elevator_bridge.drivers.base import LiftStatus, StatusStream
from elevator_bridge.drivers.iot_mqtt import IotBoxConfig, IotBoxDriver
from elevator_bridge.drivers.modbus_relay import ModbusRelayConfig, ModbusRelayDriver
from interfaces.clock import VirtualClock
from interfaces.mqtt import MqttClient, MqttConfig
from sim.lift import CarSnapshot, LiftCar, LiftCarConfig, drive_until
from sim.lift_iot import IotBoxSim
from sim.lift_modbus import RelayBoardSim
from sim.mosquitto import MosquittoBroker

CAR_FLOORS = ("1", "2", "3", "4", "5", "6")


@dataclass(kw_only=True)
class Rig:
    """A car on a virtual clock, the driver under test and a stream of its status reports."""

    clock: VirtualClock
    car: LiftCar
    car_task: asyncio.Task[None]
    stream: StatusStream
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def drive(self, predicate: Callable[[CarSnapshot], bool], limit_s: float = 60.0) -> float:
        """Run the car's virtual time on until ``predicate``; the virtual seconds it took."""
        return await drive_until(self.clock, self.car, predicate, limit_s)

    async def expect(self, predicate: Callable[[LiftStatus], bool], timeout: float = 3.0) -> LiftStatus:
        """The first coming driver report for which ``predicate`` holds (real-time ``timeout``)."""
        return await asyncio.wait_for(self.stream.until(predicate), timeout)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.car_task.cancel()


@dataclass(kw_only=True)
class ModbusRig(Rig):
    """The Modbus relay driver against a simulated relay board on a pty pair."""

    driver: ModbusRelayDriver
    board: RelayBoardSim


@dataclass(kw_only=True)
class IotRig(Rig):
    """The IoT gateway driver (over ``client``) against a simulated gateway."""

    driver: IotBoxDriver
    box: IotBoxSim
    client: MqttClient


def _car() -> tuple[VirtualClock, LiftCar, asyncio.Task[None]]:
    clock = VirtualClock(start=1_767_000_000.0)
    car = LiftCar(LiftCarConfig(floors=CAR_FLOORS, fire_floor="1"))
    return clock, car, asyncio.create_task(car.run(clock), name="car")


MODBUS_TEST_CONFIG: dict[str, Any] = {
    "poll_s": 0.02,
    "timeout_s": 0.1,
    "offline_after_s": 0.4,
    "reconnect_s": 0.05,
    "pulse_s": 0.05,
    "readback_every": 5,
}


@pytest.fixture
async def make_modbus_rig(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[ModbusRig]]]:
    """Build rigs with a relay board on a real pty pair: ``await make_modbus_rig(**config)``."""
    rigs: list[Rig] = []

    async def make(**overrides: Any) -> ModbusRig:
        clock, car, task = _car()
        board = RelayBoardSim(car, tmp_path)
        await board.start()
        config = ModbusRelayConfig(port=board.port, floors=CAR_FLOORS, **{**MODBUS_TEST_CONFIG, **overrides})
        driver = ModbusRelayDriver(config)
        rig = ModbusRig(
            clock=clock, car=car, car_task=task, stream=driver.statuses(), driver=driver, board=board
        )
        rig.closers += [board.stop, driver.stop]
        rigs.append(rig)
        await driver.start()
        return rig

    yield make
    for rig in rigs:
        await rig.close()


@pytest.fixture
async def modbus_rig(make_modbus_rig: Callable[..., Awaitable[ModbusRig]]) -> ModbusRig:
    """A rig with the Modbus relay driver and the test configuration, reporting."""
    rig = await make_modbus_rig()
    await rig.expect(lambda s: s.floor == "1")
    return rig


OUR_FLOORS = {f"L{label}": label for label in CAR_FLOORS}


@pytest.fixture
async def make_iot_rig(mqtt_broker: MosquittoBroker) -> AsyncIterator[Callable[..., Awaitable[IotRig]]]:
    """Build rigs with a simulated LiftLink gateway on a real Mosquitto: ``await make_iot_rig(**config)``.

    Our floors are L1..L6; the car's panel says 1..6.
    """
    rigs: list[Rig] = []
    mqtt = MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port)

    async def make(box_id: str = "B3-L1", **overrides: Any) -> IotRig:
        clock, car, task = _car()
        box = IotBoxSim(car, mqtt, box_id, status_period_s=0.1)
        await box.start()
        client = MqttClient(mqtt)
        await client.connect()
        settings: dict[str, Any] = {"floors": OUR_FLOORS, "ack_timeout_s": 0.5, "silent_after_s": 0.5}
        driver = IotBoxDriver(client, IotBoxConfig(box_id=box_id, **{**settings, **overrides}))
        stream = driver.statuses()
        rig = IotRig(
            clock=clock, car=car, car_task=task, stream=stream, driver=driver, box=box, client=client
        )
        rig.closers += [box.stop, client.disconnect, driver.stop]
        rigs.append(rig)
        await driver.start()
        return rig

    yield make
    for rig in rigs:
        await rig.close()


@pytest.fixture
async def iot_rig(make_iot_rig: Callable[..., Awaitable[IotRig]]) -> IotRig:
    """A rig with the IoT gateway driver and the test configuration, reporting."""
    rig = await make_iot_rig()
    await rig.expect(lambda s: s.floor == "L1")
    return rig
