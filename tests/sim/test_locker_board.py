"""The simulated locker board: latches, doors and parcels driven over a real pty by a bare RTU master,
the person's rules, and its faults (silence, dropped replies, reset, unplugging, line noise)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interfaces.clock import RealClock
from interfaces.modbus_rtu import DeviceRefused, LinkDown, LinkStats, NoReply, RtuLink
from robots.cart.locker import LockerLayout
from sim.locker_board import FIRMWARE, LockerBoardSim, LockerSimError

N = 8


def make_link(port: str, stats: LinkStats, timeout_s: float = 1.0) -> RtuLink:
    """A bare RTU master on ``port`` (what the driver uses underneath)."""
    return RtuLink(
        port,
        device_id=1,
        baudrate=19200,
        parity="N",
        timeout_s=timeout_s,
        clock=RealClock(),
        stats=stats,
        logger=logging.getLogger("test.locker_board"),
    )


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[LockerBoardSim]:
    """A board with 8 compartments on a real pty pair, powered up."""
    sim = LockerBoardSim(tmp_path, N)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def link(board: LockerBoardSim) -> AsyncIterator[RtuLink]:
    """An open RTU master on the board's line (short timeout: used by the fault tests)."""
    rtu = make_link(board.port, LinkStats(), timeout_s=0.2)
    rtu.open()
    yield rtu
    rtu.close()


async def read_doors_and_parcels(link: RtuLink) -> tuple[list[bool], list[bool]]:
    """Door-closed and occupied inputs of compartments 1..N, in one request as the driver does."""
    bits = await link.read_discrete_inputs(0, 64 + N)
    return bits[:N], bits[64 : 64 + N]


async def test_a_lock_pulse_springs_the_door_and_the_latch_catches_when_shut(
    board: LockerBoardSim, link: RtuLink
) -> None:
    """A rising edge of coil 6 opens compartment 7 (the inputs show it open); the person takes the
    parcel and shuts the door after the coil dropped: latched, closed and empty again."""
    board.load(7, "P-7")
    doors, parcels = await read_doors_and_parcels(link)
    assert all(doors) and parcels == [k == 7 for k in range(1, N + 1)]
    await link.write_coil(6, True)
    view = board.compartment(7)
    assert view.door_open and not view.latched and view.coil_on and view.pulses == 1
    await link.write_coil(6, False)
    assert len(board.compartment(7).coil_on_times) == 1
    doors, _ = await read_doors_and_parcels(link)
    assert doors == [k != 7 for k in range(1, N + 1)]
    assert board.take(7) == "P-7"
    board.close_door(7)
    doors, parcels = await read_doors_and_parcels(link)
    assert all(doors) and not any(parcels) and board.compartment(7).latched


async def test_a_door_shut_while_the_coil_is_on_latches_when_it_drops(
    board: LockerBoardSim, link: RtuLink
) -> None:
    """The latch cannot catch while the solenoid holds it back: it does when the coil drops."""
    await link.write_coil(0, True)
    board.close_door(1)
    assert not board.compartment(1).latched
    await link.write_coil(0, False)
    assert board.compartment(1).latched


async def test_a_jammed_lock_does_not_open(board: LockerBoardSim, link: RtuLink) -> None:
    """A jammed lock sees the pulse but the latch does not move: the door stays shut and locked."""
    board.jam(4)
    await link.write_coil(3, True)
    await link.write_coil(3, False)
    view = board.compartment(4)
    assert view.pulses == 1 and view.latched and not view.door_open
    with pytest.raises(LockerSimError, match="locked"):
        board.open_door(4)


async def test_a_sticking_door_opens_only_when_pulled_during_the_pulse(
    board: LockerBoardSim, link: RtuLink
) -> None:
    """A sticking door stays shut on a pulse; pulled while the coil is on it opens; if nobody pulls,
    the latch catches again when the coil drops."""
    board.stick(2)
    board.stick(3)
    await link.write_coils(1, [True, True])
    assert not board.door_open(2) and not board.compartment(2).latched
    board.open_door(2)
    await link.write_coils(1, [False, False])
    assert board.door_open(2)
    assert board.compartment(3).latched and not board.door_open(3)


async def test_the_person_follows_the_lockers_rules(board: LockerBoardSim) -> None:
    """Locked doors do not open, nothing is taken or put through a shut door, a full compartment
    takes no second parcel, an unknown compartment is an error."""
    board.load(1)
    with pytest.raises(LockerSimError, match="locked"):
        board.open_door(1)
    with pytest.raises(LockerSimError, match="shut"):
        board.take(1)
    with pytest.raises(LockerSimError, match="shut"):
        board.put(2)
    with pytest.raises(LockerSimError, match="already shut"):
        board.close_door(2)
    with pytest.raises(LockerSimError, match="already holds"):
        board.load(1)
    with pytest.raises(ValueError, match="no compartment 9"):
        board.door_open(9)


async def test_status_registers_and_a_reset(board: LockerBoardSim, link: RtuLink) -> None:
    """The input registers read firmware 1.0, boot 1, 8 compartments; a reset drops every coil and
    counts a boot."""
    assert await link.read_input_registers(0, 3) == [FIRMWARE, 1, N]
    await link.write_coil(2, True)
    await board.reset()
    assert board.coils_on() == [] and board.boots == 2
    assert await link.read_input_registers(0, 3) == [FIRMWARE, 2, N]
    assert await link.read_coils(0, N) == [False] * N


async def test_coils_beyond_the_compartments_are_refused(board: LockerBoardSim, link: RtuLink) -> None:
    """Coil 8 of an 8-compartment board is an illegal address (Modbus exception 2); so is a bank
    write that runs past the last compartment."""
    with pytest.raises(DeviceRefused) as refused:
        await link.write_coil(N, True)
    assert refused.value.exception_code == 2
    with pytest.raises(DeviceRefused):
        await link.write_coils(4, [False] * 5)
    assert board.coils_on() == []


async def test_a_silent_board_acts_but_does_not_answer(board: LockerBoardSim, link: RtuLink) -> None:
    """Silent: the request is carried out (the door opens) but no reply comes; speaking again, the
    next request is answered."""
    board.silent = True
    with pytest.raises(NoReply):
        await link.write_coil(0, True)
    assert board.door_open(1) and board.dropped_replies == 1
    board.silent = False
    await link.write_coil(0, False)
    assert not board.coil_on(1)


async def test_dropped_replies_of_one_function_code(board: LockerBoardSim, link: RtuLink) -> None:
    """``drop_replies(1, 5)`` loses only the next FC05 reply: reads before it are answered."""
    board.drop_replies(1, function_code=5)
    await read_doors_and_parcels(link)
    with pytest.raises(NoReply):
        await link.write_coil(4, True)
    await link.write_coil(4, True)
    assert board.pulses(5) == 1 and board.dropped_replies == 1


async def test_unplugged_line_hangs_up_and_replugged_line_answers(tmp_path: Path) -> None:
    """Pulling the cable hangs up the master's port (LinkDown) while the coils keep their state; a
    new port opened on the replugged line is answered."""
    board = LockerBoardSim(tmp_path, N)
    await board.start()
    stats = LinkStats()
    link = make_link(board.port, stats)
    link.open()
    try:
        await link.write_coil(1, True)
        await board.unplug()
        with pytest.raises(LinkDown):
            await link.read_coils(0, N)
        assert stats.port_losses == 1 and board.coil_on(2)
        await board.replug()
        link.open()
        assert await link.read_coils(0, N) == [k == 1 for k in range(N)]
    finally:
        link.close()
        await board.stop()


async def test_injected_bytes_reach_the_master_as_garbage(board: LockerBoardSim) -> None:
    """Bytes injected on the line arrive at the master, which discards and counts them."""
    stats = LinkStats()
    link = make_link(board.port, stats)
    link.open()
    try:
        board.inject(b"\x00\xffnoise")
        # The noise went onto the line before the request was sent, so it arrives before the reply.
        await link.read_coils(0, N)
        await link.read_coils(0, N)
        assert stats.garbage_bytes == 7 and stats.replies == 2
    finally:
        link.close()


async def test_wait_for_returns_on_a_change_and_times_out(board: LockerBoardSim, link: RtuLink) -> None:
    """``wait_for`` wakes when the condition becomes true by a request; it raises TimeoutError when
    it does not."""
    await link.write_coil(5, True)
    await board.wait_for(lambda: board.door_open(6), timeout=1.0)
    with pytest.raises(TimeoutError):
        await board.wait_for(lambda: board.door_open(5), timeout=0.05)


def test_a_board_needs_1_to_64_compartments_and_a_sound_layout(tmp_path: Path) -> None:
    """0 or 65 compartments, or door inputs overlapping occupancy inputs, are refused."""
    with pytest.raises(ValueError, match="1 to 64"):
        LockerBoardSim(tmp_path, 0)
    with pytest.raises(ValueError, match="1 to 64"):
        LockerBoardSim(tmp_path, 65)
    with pytest.raises(ValueError, match="overlap"):
        LockerBoardSim(tmp_path, 8, layout=LockerLayout(occupied_input_base=4))


async def test_a_board_of_64_compartments_with_its_own_layout(tmp_path: Path) -> None:
    """64 compartments with locks from coil 16 and occupancy sensors at input 300 work end to end."""
    layout = LockerLayout(lock_coil_base=16, occupied_input_base=300)
    board = LockerBoardSim(tmp_path, 64, layout=layout)
    board.load(64)
    await board.start()
    link = make_link(board.port, LinkStats())
    link.open()
    try:
        await link.write_coil(16 + 63, True)
        assert board.door_open(64)
        assert (await link.read_discrete_inputs(300, 64))[63]
        assert not (await link.read_discrete_inputs(0, 64))[63]
        with pytest.raises(DeviceRefused):
            await link.write_coil(15, True)
    finally:
        link.close()
        await board.stop()
