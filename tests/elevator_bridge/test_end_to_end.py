"""End to end through each real driver: robot (facilities client) → MQTT → bridge → driver → simulated
controller (a LiftLink IoT box on Mosquitto, or a Modbus RTU relay board on a real pty pair) → car.

The car, the bridge and the robot share one virtual clock; the controllers and drivers do real I/O.
Before every virtual step the pump waits until the driver reports what the car shows now, every lift
command is answered and every MQTT message between robot and bridge is delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lift_testkit import MqttBarrier, Pump

from elevator_bridge.app import build_driver
from elevator_bridge.config import parse_config
from elevator_bridge.drivers.base import LiftDriver
from elevator_bridge.service import BridgeService
from interfaces.clock import RealClock, VirtualClock
from interfaces.lift import DoorState, EndReason, LiftMode, MotionState, SessionOutcome
from interfaces.mqtt import MqttClient, MqttConfig
from orchestrator.facilities import Facilities, LiftAborted
from sim.lift import CarDoor, Direction, LiftCar, LiftCarConfig
from sim.lift_iot import IotBoxSim
from sim.lift_modbus import RelayBoardSim
from sim.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration

LABELS = ("1", "2", "3", "4", "5", "6")
FLOORS = [f"E-{label}F" for label in LABELS]
DOORS = {CarDoor.OPEN: DoorState.OPEN, CarDoor.CLOSED: DoorState.CLOSED}
MOTION = {Direction.UP: MotionState.UP, Direction.DOWN: MotionState.DOWN, Direction.STOP: MotionState.STOPPED}
DRIVERS: dict[str, dict[str, Any]] = {
    "iot_mqtt": {"kind": "iot_mqtt", "box_id": "E-L1", "labels": list(LABELS), "ack_timeout_s": 1.0},
    "modbus_relay": {
        "kind": "modbus_relay",
        "port": "",
        "poll_s": 0.02,
        "timeout_s": 0.1,
        "offline_after_s": 0.5,
    },
}


@dataclass
class Ride:
    clock: VirtualClock
    car: LiftCar
    driver: LiftDriver
    service: BridgeService
    robot: Facilities
    pump: Pump


def caught_up(car: LiftCar, driver: LiftDriver) -> bool:
    """The driver's latest report shows the car as it is now (door, motion, fire; floor when stopped)."""
    car_now, status = car.snapshot(), driver.status()
    if status is None:
        return False
    door = DOORS.get(car_now.door, DoorState.MOVING)
    # between floors the position indicator (IoT) and the door-zone sensors (relay board) may differ
    floors = {FLOORS[LABELS.index(f)] for f in (car_now.floor, car_now.level_floor) if f is not None}
    floor_ok = car_now.direction is not Direction.STOP or status.floor in floors
    fire = (status.mode is LiftMode.FIRE) == (car_now.mode.value == "FIRE")
    return status.door is door and status.motion is MOTION[car_now.direction] and floor_ok and fire


@pytest.fixture
async def make_ride(
    mqtt_broker: MosquittoBroker, tmp_path: Path
) -> AsyncIterator[Callable[[str], Awaitable[Ride]]]:
    """Build the whole chain for a driver kind: ``await make_ride("iot_mqtt" | "modbus_relay")``."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def make(kind: str) -> Ride:
        clock = VirtualClock(1_767_000_000.0)
        car = LiftCar(LiftCarConfig(floors=LABELS, fire_floor="1"))
        car_task = asyncio.ensure_future(car.run(clock))
        mqtt = MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port)
        bridge_mqtt, robot_mqtt = MqttClient(mqtt), MqttClient(mqtt)
        for client in (bridge_mqtt, robot_mqtt):
            await client.connect()
        driver_section = dict(DRIVERS[kind])
        if kind == "iot_mqtt":
            box = IotBoxSim(car, mqtt, "E-L1", status_period_s=0.2)
            await box.start()
            stops.append(box.stop)
        else:
            board = RelayBoardSim(car, tmp_path)
            await board.start()
            stops.append(board.stop)
            driver_section["port"] = board.port
        config = parse_config(
            {
                "building": "E",
                "resume_grace_s": 0,
                # the controllers report in real time while the car moves in virtual time: a long
                # status time-out keeps a quiet stretch of virtual time from reading as a silent lift
                "session": {"status_timeout_s": 120, "heartbeat_timeout_s": 20},
                "lifts": {"E-L1": {"floors": FLOORS, "fire_floor": "E-1F", "driver": driver_section}},
            }
        )
        driver = build_driver(config.lifts["E-L1"], bridge_mqtt, RealClock())
        service = BridgeService(config, bridge_mqtt, {"E-L1": driver}, clock)
        await service.start()
        stops.extend([service.stop, robot_mqtt.disconnect, bridge_mqtt.disconnect])

        async def stop_car() -> None:
            car_task.cancel()

        stops.append(stop_car)

        async def idle() -> None:
            for _ in range(200):
                await service.idle()
                if caught_up(car, driver):
                    await service.idle()
                    return
                await asyncio.wait_for(_next_status(driver), 2.0)
            raise AssertionError(
                f"the driver never caught up with the car: {car.snapshot()} / {driver.status()}"
            )

        pump = Pump(clock, [MqttBarrier(bridge_mqtt, robot_mqtt)], idle, step_s=0.25)
        await pump.sync()
        return Ride(clock, car, driver, service, Facilities(robot_mqtt, clock, "robot-1"), pump)

    yield make
    for stop in reversed(stops):
        await stop()


async def _next_status(driver: LiftDriver) -> None:
    """Wait for the driver's next report."""
    stream = driver.statuses()
    try:
        await stream.__anext__()
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


@pytest.mark.parametrize("kind", ["iot_mqtt", "modbus_relay"])
async def test_robot_rides_1_to_6_and_back_through_the_driver(
    make_ride: Callable[[str], Awaitable[Ride]], kind: str
) -> None:
    """Through each real driver, a robot rides E-1F → E-6F and back; both sessions FINISHED and the car
    is back at floor 1."""
    ride = await make_ride(kind)

    async def scenario() -> list[float]:
        times = []
        for start, to in (("E-1F", "E-6F"), ("E-6F", "E-1F")):
            began = ride.clock.now()
            session = await ride.robot.request_lift("E", start)
            await session.wait_arrival()
            await session.enter()
            await session.entered()
            await session.ride_to(to)
            await session.exit()
            end = await session.release()
            assert end.outcome is SessionOutcome.FINISHED
            times.append(ride.clock.now() - began)
        return times

    times = await ride.pump.run(scenario(), limit_s=300)
    assert ride.car.snapshot().floor == "1"
    assert all(t < 60 for t in times), times
    await ride.robot.close()


async def test_fire_mid_ride_through_the_iot_driver(make_ride: Callable[[str], Awaitable[Ride]]) -> None:
    """Fire recall while the robot rides (IoT box): LiftAborted(FIRE), and the car parks at floor 1."""
    ride = await make_ride("iot_mqtt")

    async def scenario() -> None:
        session = await ride.robot.request_lift("E", "E-2F")
        await session.wait_arrival()
        await session.enter()
        await session.entered()
        fire = asyncio.ensure_future(_fire_after(ride, 3.0))
        try:
            await session.ride_to("E-6F")
        finally:
            await fire

    with pytest.raises(LiftAborted) as caught:
        await ride.pump.run(scenario(), limit_s=120)
    assert caught.value.reason is EndReason.FIRE
    await ride.pump.wait(30)
    snapshot = ride.car.snapshot()
    assert snapshot.floor == "1" and snapshot.door is CarDoor.OPEN
    await ride.robot.close()


async def _fire_after(ride: Ride, seconds: float) -> None:
    await ride.clock.sleep(seconds)
    ride.car.set_fire(True)
