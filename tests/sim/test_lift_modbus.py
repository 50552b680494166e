"""The simulated relay board: the socat pty pair, the inputs it shows, and its relays pressing the car's
buttons when written over a real pty."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from pymodbus.pdu.bit_message import ReadDiscreteInputsRequest, WriteSingleCoilRequest

from elevator_bridge.drivers.modbus_relay import ModbusStats, RelayBoardLayout, RtuLink
from interfaces.clock import RealClock
from sim.lift import LiftCar, LiftCarConfig
from sim.lift_modbus import PtyPair, RelayBoardSim, input_bits

FLOORS = ("1", "2", "3", "4")


async def read_some(fd: int, timeout: float = 2.0) -> bytes:
    """The next bytes readable on ``fd`` (the event loop tells us when; no polling)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_reader(fd)
    return os.read(fd, 1024)


async def test_pty_pair_is_a_raw_cable_and_vanishes_when_closed(tmp_path: Path) -> None:
    """Bytes written on one end arrive unchanged on the other (raw: no CR/LF or XON/XOFF games); after
    close both links are gone."""
    pair = PtyPair(tmp_path / "a", tmp_path / "b")
    await pair.open()
    a = os.open(pair.a, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    b = os.open(pair.b, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        data = b"\x01\x02\r\n\x11\x13\x00\xff"
        os.write(a, data)
        assert await read_some(b) == data
        os.write(b, b"back")
        assert await read_some(a) == b"back"
    finally:
        os.close(a)
        os.close(b)
    await pair.close()
    assert not pair.is_open and not pair.a.exists() and not pair.b.exists()


def test_inputs_show_door_zone_sensors_and_the_binary_floor_code() -> None:
    """Between floors no door-zone sensor is on, while the binary code shows the floor passed last."""
    car = LiftCar(LiftCarConfig(floors=FLOORS))
    car.car_call("4")
    car.step(3.0)  # halfway between 2 and 3
    one_hot = input_bits(RelayBoardLayout.standard(4), car.snapshot(), car.floors)
    assert not any(one_hot[a] for a in range(4)) and one_hot[18]  # moving up
    binary = input_bits(RelayBoardLayout.standard(4, "binary"), car.snapshot(), car.floors)
    assert [binary[a] for a in range(3)] == [False, True, False]  # code 2 = floor index 1 ("2")


def test_board_refuses_addresses_beyond_its_blocks(tmp_path: Path) -> None:
    """The simulated board has 32 coils and 32 inputs; a layout beyond them is refused."""
    layout = RelayBoardLayout(
        floor_coils=(0, 1, 2, 3),
        door_open_coil=40,
        door_close_coil=None,
        floor_inputs=(0, 1, 2, 3),
        door_open_input=4,
        door_closed_input=5,
        moving_up_input=6,
        moving_down_input=7,
        fire_input=8,
        fault_input=9,
    )
    with pytest.raises(ValueError, match="below 32"):
        RelayBoardSim(LiftCar(LiftCarConfig(floors=FLOORS)), tmp_path, layout=layout)


async def test_relay_edges_press_the_car_buttons_over_the_line(tmp_path: Path) -> None:
    """Written over a real pty: a floor coil's rising edge is a cabin call; door-open held on holds
    the doors, off releases them; the inputs read back the car's state."""
    car = LiftCar(LiftCarConfig(floors=FLOORS))
    board = RelayBoardSim(car, tmp_path)
    await board.start()
    stats = ModbusStats()
    link = RtuLink(
        board.port,
        device_id=1,
        baudrate=19200,
        parity="N",
        timeout_s=1.0,
        clock=RealClock(),
        stats=stats,
        logger=logging.getLogger("test"),
    )
    link.open()
    try:
        await link.transact(WriteSingleCoilRequest(address=2, bits=[True]), 8)
        assert car.snapshot().car_calls == ("3",)
        await link.transact(WriteSingleCoilRequest(address=16, bits=[True]), 8)
        assert car.snapshot().door_held
        await link.transact(WriteSingleCoilRequest(address=16, bits=[False]), 8)
        assert not car.snapshot().door_held
        reply = await link.transact(ReadDiscreteInputsRequest(address=0, count=24), 8)
        assert reply.bits[0] and not reply.bits[16]  # level at floor 1, doors opening (not yet open)
        assert stats.replies == 4 and stats.timeouts == 0
    finally:
        link.close()
        await board.stop()
