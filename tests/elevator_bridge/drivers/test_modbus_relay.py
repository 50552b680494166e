"""The Modbus RTU relay-board driver: framing and decoding without I/O, then against the simulated
board on a real pseudo-terminal pair (rigs in conftest.py: ``rig.drive`` moves the car in virtual
time, ``rig.expect`` waits for the driver's report)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.bit_message import ReadDiscreteInputsResponse

from elevator_bridge.drivers.base import DriverResult, LiftFault
from elevator_bridge.drivers.modbus_relay import (
    ModbusRelayConfig,
    RelayBoardLayout,
    count_bad_frames,
    decode_inputs,
    scan_reply,
    status_from_inputs,
)
from interfaces.clock import RealClock
from interfaces.lift import DoorState, LiftMode, MotionState
from sim.lift import CarDoor, CarFault, Direction
from sim.lift_modbus import input_bits

Rig = Any  # the rigs of conftest.py (ModbusRig)


def reply_frame(bits: list[bool], device_id: int = 1) -> bytes:
    """A well-formed FC02 reply frame."""
    pdu = ReadDiscreteInputsResponse(bits=bits, dev_id=device_id)
    return FramerRTU(DecodePDU(is_server=True)).buildFrame(pdu)


def bad_crc(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x5A])


# ---- framing and decoding, no I/O --------------------------------------------------------------------


def test_scan_finds_the_reply_behind_garbage_and_counts_bad_frames() -> None:
    """A reply is found wherever it starts; a complete frame with a wrong CRC before it is counted."""
    good = reply_frame([True] * 24)
    buf = b"\x00\xff\x13" + bad_crc(good) + b"\x42" + good + b"\x01"
    found = scan_reply(buf, 1, 2, len(good))
    assert found.start == 3 + len(good) + 1 and found.length == len(good)
    assert found.crc_errors == 1
    assert buf[found.start : found.start + found.length] == good


def test_scan_waits_for_an_incomplete_reply_and_ignores_other_slaves() -> None:
    """Half a reply is not found yet; a reply from another slave id is not ours."""
    good = reply_frame([False] * 24)
    assert scan_reply(good[:-1], 1, 2, len(good)).start is None
    assert scan_reply(reply_frame([False] * 24, device_id=2), 1, 2, len(good)).start is None


def test_scan_accepts_a_modbus_exception_reply() -> None:
    """An exception reply (function | 0x80, 5 bytes) is a reply too."""
    frame = bytes([1, 0x82, 2])
    frame += FramerRTU.compute_CRC(frame).to_bytes(2, "big")
    assert scan_reply(b"\x00" + frame, 1, 2, 8).start == 1


def test_count_bad_frames_skips_sound_stale_replies() -> None:
    """Stray bytes: frames with a wrong CRC count, a sound late reply and noise do not."""
    good = reply_frame([True] * 24)
    assert count_bad_frames(b"noise" + good + bad_crc(good) + b"\x01\x02", 1) == 1
    assert count_bad_frames(good, 1) == 0


@pytest.mark.parametrize("floor_code", ["one_hot", "binary"])
def test_inputs_decode_both_floor_codes(floor_code: str) -> None:
    """One-hot door-zone sensors and a binary floor code both give the floor index."""
    layout = RelayBoardLayout.standard(6, floor_code)  # type: ignore[arg-type]
    first, count = layout.input_span()
    bits = [False] * count
    on = [4] if floor_code == "one_hot" else [0, 2]  # floor index 4, binary code 5 = 0b101
    for i in [*on, layout.door_open_input, layout.moving_up_input]:
        bits[i - first] = True
    inputs = decode_inputs(layout, first, bits)
    assert inputs.floor == 4 and inputs.door_open and inputs.moving_up and not inputs.fire


def test_status_maps_modes_doors_and_faults() -> None:
    """Fire → FIRE; out of service → OFFLINE + OUT_OF_SERVICE; obstructed → DOOR_BLOCKED; no limit
    switch made → door MOVING; both directions → motion UNKNOWN."""
    layout = RelayBoardLayout.standard(6)
    first, count = layout.input_span()

    def status(*inputs: int) -> Any:
        bits = [False] * count
        for i in inputs:
            bits[i - first] = True
        return status_from_inputs(decode_inputs(layout, first, bits), "3", 0.0)

    assert status(20, 17).mode is LiftMode.FIRE
    oos = status(23, 16)
    assert oos.mode is LiftMode.OFFLINE and oos.faults == (LiftFault.OUT_OF_SERVICE,)
    blocked = status(21, 22, 16)
    assert blocked.mode is LiftMode.HUMAN and blocked.faults == (LiftFault.DOOR_BLOCKED,)
    assert status(21, 17).faults == (LiftFault.LIFT_FAULT,)
    assert status().door is DoorState.MOVING
    assert status(18, 19).motion is MotionState.UNKNOWN


def test_sim_board_inputs_round_trip_through_the_decoder() -> None:
    """What the simulated board shows for a car decodes back to that car's state."""
    from sim.lift import LiftCar, LiftCarConfig

    car = LiftCar(LiftCarConfig(floors=("1", "2", "3")))
    car.car_call("3")
    car.step(4.0)
    layout = RelayBoardLayout.standard(3, "binary")
    shown = input_bits(layout, car.snapshot(), car.floors)
    first, count = layout.input_span()
    inputs = decode_inputs(layout, first, [shown.get(first + i, False) for i in range(count)])
    assert inputs.floor == 2 and car.snapshot().door is CarDoor.OPENING
    assert not inputs.door_open and not inputs.door_closed


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"floors": ("1",)}, "floors"),
        ({"device_id": 0}, "device_id"),
        ({"poll_s": 0}, "poll_s"),
        ({"readback_every": 0}, "readback_every"),
        ({"layout": RelayBoardLayout.standard(3)}, "one floor coil per floor"),
    ],
)
def test_bad_config_is_refused(kw: dict[str, Any], match: str) -> None:
    """Impossible configurations are refused with a clear ValueError."""
    with pytest.raises(ValueError, match=match):
        ModbusRelayConfig(**{"port": "/dev/null", "floors": ("1", "2"), **kw})


def test_bad_layout_is_refused() -> None:
    """Two signals on one address, or too few code bits, are refused."""
    with pytest.raises(ValueError, match="distinct"):
        RelayBoardLayout(
            floor_coils=(0, 1),
            door_open_coil=1,
            door_close_coil=None,
            floor_inputs=(0, 1),
            door_open_input=2,
            door_closed_input=3,
            moving_up_input=4,
            moving_down_input=5,
            fire_input=6,
            fault_input=7,
        )
    with pytest.raises(ValueError, match="code bits"):
        RelayBoardLayout(
            floor_coils=(0, 1, 2, 3),
            door_open_coil=4,
            door_close_coil=None,
            floor_inputs=(0, 1),
            door_open_input=2,
            door_closed_input=3,
            moving_up_input=4,
            moving_down_input=5,
            fire_input=6,
            fault_input=7,
            floor_code="binary",
        )


# ---- against the simulated board on a real pty ---------------------------------------------------------


def stopped_at(floor: str, door: DoorState = DoorState.OPEN) -> Any:
    return lambda s: s.floor == floor and s.door is door and s.motion is MotionState.STOPPED


async def pulses_over(rig: Rig) -> None:
    """Wait (in real time, poll by poll) until the driver has dropped its pulsed relays on the board.

    The car runs in virtual time: without this, a test could run minutes of car time while a
    door-open pulse of a few real milliseconds still holds the doors.
    """
    for _ in range(100):
        if not any(rig.board.coils):
            return
        await asyncio.wait_for(rig.driver.wait_polls(1), 1.0)
    raise AssertionError(f"relays still on: {rig.board.coils}")


async def test_ride_from_1_to_6_and_back(modbus_rig: Rig) -> None:
    """A call to 6 pulses its button: the car rides up (13 s from idle to doors open) and the driver
    reports it there, doors open; a call to 1 brings it back."""
    rig = modbus_rig
    assert await rig.driver.call("6") is DriverResult.SUCCESS
    await rig.drive(lambda c: c.direction is Direction.UP)
    await rig.expect(lambda s: s.motion is MotionState.UP)
    took = await rig.drive(lambda c: c.floor == "6" and c.door is CarDoor.OPEN)
    assert took == pytest.approx(13.0, abs=0.15)
    await rig.expect(stopped_at("6"))
    assert await rig.driver.call("1") is DriverResult.SUCCESS
    await rig.drive(lambda c: c.direction is Direction.DOWN)
    await rig.expect(lambda s: s.motion is MotionState.DOWN)
    await rig.drive(lambda c: c.floor == "1" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("1"))
    await pulses_over(rig)


async def test_door_open_hold_and_close(modbus_rig: Rig) -> None:
    """open_door pulses door-open (the doors open and close by themselves); with hold the relay stays
    on and the doors stay open past any dwell (a plain open meanwhile keeps the hold); close_door
    lets go and closes them."""
    rig = modbus_rig
    assert await rig.driver.open_door() is DriverResult.SUCCESS
    await pulses_over(rig)
    await rig.drive(lambda c: c.door is CarDoor.OPEN)
    await rig.expect(lambda s: s.door is DoorState.OPEN)
    await rig.drive(lambda c: c.door is CarDoor.CLOSED)
    await rig.expect(lambda s: s.door is DoorState.CLOSED)

    assert await rig.driver.open_door(hold=True) is DriverResult.SUCCESS
    await rig.drive(lambda c: c.door is CarDoor.OPEN)
    await rig.clock.run_for(30.0)
    assert rig.car.snapshot().door is CarDoor.OPEN and rig.board.coils[16]
    await rig.expect(lambda s: s.door is DoorState.OPEN)
    assert await rig.driver.open_door() is DriverResult.SUCCESS  # a plain open does not end a hold
    await asyncio.wait_for(rig.driver.wait_polls(5), 2.0)
    assert rig.board.coils[16]
    assert await rig.driver.close_door() is DriverResult.SUCCESS
    assert rig.car.snapshot().door is CarDoor.CLOSING
    await rig.expect(lambda s: s.door is DoorState.MOVING)
    await rig.drive(lambda c: c.door is CarDoor.CLOSED)
    await rig.expect(lambda s: s.door is DoorState.CLOSED)


async def test_a_passenger_call_moves_the_car(modbus_rig: Rig) -> None:
    """A person calling at 4 for 2 moves the car; the driver follows it there and on to 2."""
    rig = modbus_rig
    rig.car.passenger_call("4", "2")
    await rig.drive(lambda c: c.floor == "4" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("4"))
    await rig.drive(lambda c: c.floor == "2" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("2"))
    assert len(rig.car.delivered) == 1


async def test_fire_mode_reports_fire_at_the_fire_floor_and_refuses_calls(modbus_rig: Rig) -> None:
    """Fire recall mid-ride: the driver reports FIRE, then the car at its fire floor with doors open;
    calls are then IMPOSSIBLE."""
    rig = modbus_rig
    await rig.driver.call("5")
    await rig.drive(lambda c: c.floor == "3")
    rig.car.set_fire(True)
    await rig.expect(lambda s: s.mode is LiftMode.FIRE)
    await rig.drive(lambda c: c.floor == "1" and c.door is CarDoor.OPEN)
    status = await rig.expect(stopped_at("1"))
    assert status.mode is LiftMode.FIRE
    assert await rig.driver.call("6") is DriverResult.IMPOSSIBLE


async def test_door_blocked_is_reported(modbus_rig: Rig) -> None:
    """A blocked light curtain keeps the doors open and the driver reports DOOR_BLOCKED; once
    cleared the doors close and the fault goes."""
    rig = modbus_rig
    await rig.driver.open_door()
    await pulses_over(rig)
    rig.car.set_door_blocked(True)
    await rig.drive(lambda c: CarFault.DOOR_BLOCKED in c.faults)
    status = await rig.expect(lambda s: LiftFault.DOOR_BLOCKED in s.faults)
    assert status.door is DoorState.OPEN and status.mode is LiftMode.HUMAN
    rig.car.set_door_blocked(False)
    await rig.drive(lambda c: c.door is CarDoor.CLOSED)
    await rig.expect(lambda s: not s.faults and s.door is DoorState.CLOSED)


async def test_out_of_service_is_offline_and_refuses_calls(modbus_rig: Rig) -> None:
    """Out of service reads as OFFLINE with OUT_OF_SERVICE; calls are IMPOSSIBLE."""
    rig = modbus_rig
    rig.car.set_out_of_service(True)
    await rig.expect(lambda s: LiftFault.OUT_OF_SERVICE in s.faults and s.mode is LiftMode.OFFLINE)
    assert await rig.driver.call("3") is DriverResult.IMPOSSIBLE
    assert await rig.driver.call("7") is DriverResult.IMPOSSIBLE  # not a floor of this lift


async def test_silent_board_goes_offline_within_the_configured_time(modbus_rig: Rig) -> None:
    """A board that stops answering is OFFLINE (NO_REPLY) within offline_after_s plus one timeout;
    verbs answer RETRY; when it answers again the status comes back."""
    rig = modbus_rig
    clock = RealClock()
    rig.car.set_controller_silent(True)
    silent_at = clock.monotonic()
    status = await rig.expect(lambda s: s.mode is LiftMode.OFFLINE)
    limit = rig.driver.config.offline_after_s + rig.driver.config.timeout_s + 0.25
    assert clock.monotonic() - silent_at <= limit
    assert status.faults == (LiftFault.NO_REPLY,) and status.floor is None
    assert await rig.driver.call("2") is DriverResult.RETRY
    rig.car.set_controller_silent(False)
    await rig.expect(lambda s: s.mode is LiftMode.HUMAN and s.floor == "1")
    assert rig.driver.stats.timeouts >= 3 and rig.board.dropped_replies >= 3


async def test_garbage_and_bad_crc_frames_are_counted_and_survived(modbus_rig: Rig) -> None:
    """Noise and frames with a wrong CRC injected on the line are counted; the driver keeps
    polling and a ride still works."""
    rig = modbus_rig
    stats = rig.driver.stats
    noise = b"\x00\xff\x13 line noise \xfe"
    frame = bad_crc(reply_frame([True] * 24))
    for _ in range(3):
        rig.board.inject(noise)
        rig.board.inject(frame)
        await asyncio.wait_for(rig.driver.wait_polls(3), 2.0)
    assert stats.crc_errors >= 3 and stats.garbage_bytes >= 3 * (len(noise) + len(frame))
    assert rig.driver.status().mode is LiftMode.HUMAN
    assert await rig.driver.call("3") is DriverResult.SUCCESS
    await rig.drive(lambda c: c.floor == "3" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("3"))


async def test_unplugged_port_goes_offline_and_reconnects_when_replugged(modbus_rig: Rig) -> None:
    """Pulling the cable: OFFLINE (LINK_DOWN) within offline_after_s, verbs RETRY; plugging it back
    (new pty at the same path, new server): the driver reopens the port and reports again."""
    rig = modbus_rig
    clock = RealClock()
    await rig.board.unplug()
    pulled_at = clock.monotonic()
    status = await rig.expect(lambda s: s.mode is LiftMode.OFFLINE)
    assert clock.monotonic() - pulled_at <= rig.driver.config.offline_after_s + 0.25
    assert status.faults == (LiftFault.LINK_DOWN,)
    assert await rig.driver.call("4") is DriverResult.RETRY
    await rig.board.replug()
    await rig.expect(lambda s: s.mode is LiftMode.HUMAN and s.floor == "1")
    assert rig.driver.stats.opens == 2 and rig.driver.stats.port_losses == 1
    assert await rig.driver.call("4") is DriverResult.SUCCESS
    await rig.drive(lambda c: c.floor == "4" and c.door is CarDoor.OPEN)
    await rig.expect(stopped_at("4"))


async def test_a_board_reset_gets_the_held_door_relay_back(modbus_rig: Rig) -> None:
    """A board that reboots drops every relay (the held door-open too); the driver's read-back sees
    it and writes the relays again, so the doors stay held open."""
    rig = modbus_rig
    await rig.driver.open_door(hold=True)
    await rig.drive(lambda c: c.door is CarDoor.OPEN)
    await rig.board.reset()
    assert not rig.car.snapshot().door_held
    for _ in range(50):
        if rig.board.coils[16]:
            break
        await asyncio.wait_for(rig.driver.wait_polls(1), 1.0)
    assert rig.board.coils[16] and rig.car.snapshot().door_held
    # Rewritten by the read-back, or (on a loaded machine) by the rewrite after a timed-out request.
    assert rig.driver.stats.relay_resyncs + rig.driver.stats.timeouts >= 1
    await rig.clock.run_for(30.0)
    assert rig.car.snapshot().door is CarDoor.OPEN


async def test_polls_at_the_configured_rate(make_modbus_rig: Any) -> None:
    """The driver polls about every poll_s (a round trip takes milliseconds on a pty), and reports at
    least every report_s while nothing changes."""
    rig = await make_modbus_rig(poll_s=0.01, readback_every=1000, report_s=0.2)
    await rig.expect(lambda s: s.floor == "1")
    clock = RealClock()
    stats = rig.driver.stats
    start, polls = clock.monotonic(), stats.polls
    await asyncio.wait_for(rig.driver.wait_polls(30), 5.0)
    rate = (stats.polls - polls) / (clock.monotonic() - start)
    assert 10 < rate <= 1 / 0.01 + 1
    assert stats.round_trip_mean_s < 0.05
    again = await rig.expect(lambda s: True, timeout=1.0)  # nothing changed: a heartbeat report
    assert again.floor == "1" and again.mode is LiftMode.HUMAN
