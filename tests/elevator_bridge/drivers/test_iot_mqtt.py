"""The vendor IoT gateway driver: message mapping without I/O, then against the simulated gateway on a
real Mosquitto (rigs in conftest.py: ``rig.drive`` moves the car in virtual time, ``rig.expect``
waits for the driver's report). Our floors are L1..L6, the car's panel labels 1..6."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elevator_bridge.drivers.base import DriverResult, LiftFault
from elevator_bridge.drivers.iot_mqtt import (
    IotBoxConfig,
    MalformedMessage,
    ack_result,
    fault_names,
    parse_status,
)
from interfaces.clock import RealClock
from interfaces.lift import DoorState, LiftMode, MotionState
from sim.lift import CarDoor, CarFault, Direction

Rig = Any  # the rigs of conftest.py (IotRig)

LABELS = {str(n): f"L{n}" for n in range(1, 7)}

# ---- mapping, no I/O ---------------------------------------------------------------------------------


def test_status_maps_vendor_values() -> None:
    """Vendor status fields map onto LiftStatus: labels to our floors, STOP to STOPPED, OPENING to
    MOVING, SERVICE to OFFLINE, E12 to DOOR_BLOCKED followed by the vendor code."""
    status = parse_status(
        {"floor": "6", "direction": "STOP", "door": "OPENING", "mode": "SERVICE", "faults": ["E12"]},
        LABELS,
        5.0,
    )
    assert status.floor == "L6" and status.motion is MotionState.STOPPED
    assert status.door is DoorState.MOVING and status.mode is LiftMode.OFFLINE
    assert status.faults == (LiftFault.DOOR_BLOCKED, "E12") and status.time == 5.0


def test_unknown_values_read_as_unknown() -> None:
    """Unknown floor labels, directions and modes read as unknown rather than failing."""
    status = parse_status(
        {"floor": "99", "direction": "SIDEWAYS", "door": "AJAR", "mode": "PARTY"}, LABELS, 0
    )
    assert status.floor is None and status.motion is MotionState.UNKNOWN
    assert status.door is DoorState.MOVING and status.mode is LiftMode.UNKNOWN


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"floor": "1"},
        {"floor": "1", "direction": "UP", "door": "OPEN", "mode": 3},
        {"floor": "1", "direction": "UP", "door": "OPEN", "mode": "NORMAL", "faults": "E12"},
    ],
)
def test_malformed_status_is_refused(payload: Any) -> None:
    """A status that is not an object with the required strings is MalformedMessage."""
    with pytest.raises(MalformedMessage):
        parse_status(payload, LABELS, 0)


def test_fault_names_and_ack_results() -> None:
    """Faults: one LiftFault name each, unknown codes as LIFT_FAULT, then the codes. Acks: OK is
    SUCCESS, E_FLOOR/E_MODE IMPOSSIBLE, E_MOVING and unknown codes RETRY."""
    assert fault_names(["E30", "E77", "E99"]) == (
        LiftFault.OUT_OF_SERVICE,
        LiftFault.LIFT_FAULT,
        "E30",
        "E77",
        "E99",
    )
    assert ack_result({"seq": 1, "ok": True, "code": "OK"}) is DriverResult.SUCCESS
    assert ack_result({"seq": 1, "ok": False, "code": "E_FLOOR"}) is DriverResult.IMPOSSIBLE
    assert ack_result({"seq": 1, "ok": False, "code": "E_MODE"}) is DriverResult.IMPOSSIBLE
    assert ack_result({"seq": 1, "ok": False, "code": "E_MOVING"}) is DriverResult.RETRY
    assert ack_result({"seq": 1, "ok": False, "code": "E_SOMETHING"}) is DriverResult.RETRY


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"box_id": "a/b"}, "box_id"),
        ({"floors": {"L1": "1"}}, "floors"),
        ({"floors": {"L1": "1", "L2": "1"}}, "floors"),
        ({"ack_timeout_s": 0}, "ack_timeout_s"),
    ],
)
def test_bad_config_is_refused(kw: dict[str, Any], match: str) -> None:
    """Impossible configurations are refused with a clear ValueError."""
    with pytest.raises(ValueError, match=match):
        IotBoxConfig(**{"box_id": "B1-L1", "floors": {"L1": "1", "L2": "2"}, **kw})


# ---- against the simulated gateway on a real broker ---------------------------------------------------


def stopped_at(floor: str, door: DoorState = DoorState.OPEN) -> Any:
    return lambda s: s.floor == floor and s.door is door and s.motion is MotionState.STOPPED


async def test_ride_from_1_to_6_and_back(iot_rig: Rig) -> None:
    """A call to L6 is acknowledged; the car rides up (13 s from idle to doors open) and the driver
    reports every stage with our floor names; a call to L1 brings it back."""
    rig = iot_rig
    assert await rig.driver.call("L6") is DriverResult.SUCCESS
    await rig.drive(lambda c: c.direction is Direction.UP)
    await rig.expect(lambda s: s.motion is MotionState.UP)
    took = await rig.drive(lambda c: c.floor == "6" and c.door is CarDoor.OPEN)
    assert took == pytest.approx(13.0, abs=0.15)
    await rig.expect(stopped_at("L6"))
    assert await rig.driver.call("L1") is DriverResult.SUCCESS
    await rig.drive(lambda c: c.direction is Direction.DOWN)
    await rig.expect(lambda s: s.motion is MotionState.DOWN)
    await rig.drive(lambda c: c.floor == "1" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("L1"))
    assert rig.driver.stats.acks == 2 and rig.driver.stats.malformed == 0


async def test_door_open_hold_and_close(iot_rig: Rig) -> None:
    """open: the doors open and close by themselves; hold: they stay open past any dwell;
    close: they close at once."""
    rig = iot_rig
    assert await rig.driver.open_door() is DriverResult.SUCCESS
    await rig.drive(lambda c: c.door is CarDoor.OPEN)
    await rig.expect(lambda s: s.door is DoorState.OPEN)
    await rig.drive(lambda c: c.door is CarDoor.CLOSED)
    await rig.expect(lambda s: s.door is DoorState.CLOSED)

    assert await rig.driver.open_door(hold=True) is DriverResult.SUCCESS
    await rig.drive(lambda c: c.door is CarDoor.OPEN)
    await rig.clock.run_for(30.0)
    assert rig.car.snapshot().door is CarDoor.OPEN
    await rig.expect(lambda s: s.door is DoorState.OPEN)
    assert await rig.driver.close_door() is DriverResult.SUCCESS
    await rig.expect(lambda s: s.door is DoorState.MOVING)
    await rig.drive(lambda c: c.door is CarDoor.CLOSED)
    await rig.expect(lambda s: s.door is DoorState.CLOSED)


async def test_door_command_while_moving_is_retry(iot_rig: Rig) -> None:
    """A door command while the car travels is refused with E_MOVING: RETRY."""
    rig = iot_rig
    await rig.driver.call("L4")
    await rig.drive(lambda c: c.direction is Direction.UP)
    assert await rig.driver.open_door() is DriverResult.RETRY
    assert rig.driver.stats.refused == 1


async def test_a_passenger_call_moves_the_car(iot_rig: Rig) -> None:
    """A person calling at 4 for 2 moves the car; the driver follows it there and on to 2."""
    rig = iot_rig
    rig.car.passenger_call("4", "2")
    await rig.drive(lambda c: c.floor == "4" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("L4"))
    await rig.drive(lambda c: c.floor == "2" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("L2"))


async def test_fire_mode_reports_fire_at_the_fire_floor_and_refuses_calls(iot_rig: Rig) -> None:
    """Fire recall mid-ride: the driver reports FIRE, then the car at its fire floor with doors open;
    calls are refused (E_MODE: IMPOSSIBLE)."""
    rig = iot_rig
    await rig.driver.call("L5")
    await rig.drive(lambda c: c.floor == "3")
    rig.car.set_fire(True)
    await rig.expect(lambda s: s.mode is LiftMode.FIRE)
    await rig.drive(lambda c: c.floor == "1" and c.door is CarDoor.OPEN)
    status = await rig.expect(stopped_at("L1"))
    assert status.mode is LiftMode.FIRE
    assert await rig.driver.call("L6") is DriverResult.IMPOSSIBLE


async def test_door_blocked_is_reported(iot_rig: Rig) -> None:
    """A blocked light curtain: the driver reports DOOR_BLOCKED with the vendor's E12; cleared, the
    doors close and the fault goes."""
    rig = iot_rig
    await rig.driver.open_door()
    rig.car.set_door_blocked(True)
    await rig.drive(lambda c: CarFault.DOOR_BLOCKED in c.faults)
    status = await rig.expect(lambda s: LiftFault.DOOR_BLOCKED in s.faults)
    assert status.faults == (LiftFault.DOOR_BLOCKED, "E12") and status.door is DoorState.OPEN
    rig.car.set_door_blocked(False)
    await rig.drive(lambda c: c.door is CarDoor.CLOSED)
    await rig.expect(lambda s: not s.faults and s.door is DoorState.CLOSED)


async def test_floors_not_served_are_impossible(make_iot_rig: Any) -> None:
    """A floor missing from our map is IMPOSSIBLE without asking; one the gateway does not serve is
    refused by it (E_FLOOR): IMPOSSIBLE too."""
    rig = await make_iot_rig(floors={**{f"L{n}": str(n) for n in range(1, 7)}, "L7": "7"})
    assert await rig.driver.call("L9") is DriverResult.IMPOSSIBLE
    assert rig.driver.stats.commands == 0
    assert await rig.driver.call("L7") is DriverResult.IMPOSSIBLE
    assert rig.driver.stats.refused == 1


async def test_silent_gateway_goes_offline_and_commands_time_out(iot_rig: Rig) -> None:
    """A hung gateway (no status, no acks): OFFLINE with NO_REPLY within silent_after_s; commands
    are RETRY after ack_timeout_s; when it talks again the status comes back."""
    rig = iot_rig
    clock = RealClock()
    rig.car.set_controller_silent(True)
    silent_at = clock.monotonic()
    status = await rig.expect(lambda s: s.mode is LiftMode.OFFLINE)
    assert clock.monotonic() - silent_at <= rig.driver.config.silent_after_s + 0.25
    assert status.faults == (LiftFault.NO_REPLY,) and status.floor is None
    assert await rig.driver.call("L2") is DriverResult.RETRY
    assert rig.driver.stats.ack_timeouts == 1
    rig.car.set_controller_silent(False)
    await rig.expect(lambda s: s.mode is LiftMode.HUMAN and s.floor == "L1")


async def test_gateway_going_offline_is_reported_at_once(iot_rig: Rig) -> None:
    """The gateway's offline message (its last will, or a clean stop) makes the lift OFFLINE with
    LINK_DOWN at once; its retained status is not taken for a live one."""
    rig = iot_rig
    await rig.box.stop()
    status = await rig.expect(lambda s: LiftFault.LINK_DOWN in s.faults)  # its word, not the watchdog's
    assert status.mode is LiftMode.OFFLINE and status.faults == (LiftFault.LINK_DOWN,)
    assert await rig.driver.call("L2") is DriverResult.RETRY
    assert rig.driver.stats.commands == 0
    await rig.box.start()
    await rig.expect(lambda s: s.mode is LiftMode.HUMAN)


async def test_malformed_messages_are_logged_and_ignored(
    iot_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Broken JSON and wrong shapes on the gateway's topics are counted, logged and ignored; the
    driver keeps working."""
    rig = iot_rig
    prefix = "liftlink/B3-L1"
    for topic, payload in [
        ("status", b"{not json"),
        ("status", b'{"floor": "1"}'),
        ("ack", b"[1, 2]"),
        ("online", b"maybe"),
    ]:
        await rig.client.publish(f"{prefix}/{topic}", payload, qos=1, wait=True)
    assert await rig.driver.call("L2") is DriverResult.SUCCESS  # acks still get through, in order
    assert rig.driver.stats.malformed == 4
    assert "malformed" in caplog.text
    await rig.drive(lambda c: c.floor == "2" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("L2"))


async def test_gateway_answers_bad_commands_with_e_badcmd(iot_rig: Rig) -> None:
    """The simulated gateway acknowledges unreadable commands with E_BADCMD."""
    rig = iot_rig
    acks = rig.client.subscribe("liftlink/B3-L1/ack")  # sent before the publish, on the same link
    await rig.client.publish("liftlink/B3-L1/cmd", {"cmd": "dance", "seq": 7}, qos=1, wait=True)
    ack = (await asyncio.wait_for(acks.get(), 2)).json()
    assert ack == {"seq": 7, "ok": False, "code": "E_BADCMD", "msg": "unknown command 'dance'"}
