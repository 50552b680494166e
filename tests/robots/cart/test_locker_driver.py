"""The locker-board driver: its register map and configuration without I/O, then against the simulated
board on a real pseudo-terminal pair (socat). Serial I/O runs on the real clock; tests wait on the
driver's snapshots, its polls or the board's state, each with a time-out, never a sleep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.bit_message import ReadDiscreteInputsResponse

from interfaces.clock import RealClock
from interfaces.fanout import Stream
from robots.cart.locker import (
    BoardHealth,
    BoardInfo,
    BoardSnapshot,
    CompartmentInputs,
    LockerConfig,
    LockerDriver,
    LockerLayout,
    LockerPort,
    OpenResult,
    decode_inputs,
)
from sim.locker_board import LockerBoardSim

N = 12
FAST: dict[str, Any] = {  # quick polls; time-outs long enough for a loaded 2-core CI machine
    "poll_s": 0.02,
    "timeout_s": 0.4,
    "offline_after_s": 1.0,
    "reconnect_s": 0.05,
    "pulse_s": 0.05,
    "status_s": 0.2,
    "report_s": 0.5,
}


@dataclass
class Rig:
    """The simulated board, the driver under test and a stream of the driver's snapshots."""

    board: LockerBoardSim
    driver: LockerDriver
    stream: Stream[BoardSnapshot]
    seen: list[BoardSnapshot] = field(default_factory=list)

    async def expect(self, predicate: Callable[[BoardSnapshot], bool], timeout: float = 2.0) -> BoardSnapshot:
        """The first coming snapshot for which ``predicate`` holds (all are kept in ``seen``)."""

        def keep(snapshot: BoardSnapshot) -> bool:
            self.seen.append(snapshot)
            return predicate(snapshot)

        return await asyncio.wait_for(self.stream.until(keep), timeout)

    async def polls(self, count: int = 1, timeout: float = 2.0) -> None:
        """Wait for ``count`` more polls of the driver."""
        await asyncio.wait_for(self.driver.wait_polls(count), timeout)


def ok(snapshot: BoardSnapshot) -> bool:
    return snapshot.health is BoardHealth.OK


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    """Build rigs: ``await make_rig(board_compartments=..., start_board=..., **config)``."""
    rigs: list[Rig] = []

    async def make(board_compartments: int = N, start_board: bool = True, **overrides: Any) -> Rig:
        board = LockerBoardSim(tmp_path, board_compartments, layout=overrides.get("layout"))
        board.load(3, "P-3")
        if start_board:
            await board.start()
        driver = LockerDriver(LockerConfig(port=board.port, compartments=N, **{**FAST, **overrides}))
        rig = Rig(board, driver, driver.snapshots())
        rigs.append(rig)
        await driver.start()
        return rig

    yield make
    for rig in rigs:
        await rig.driver.stop()
        await rig.board.stop()


@pytest.fixture
async def rig(make_rig: Callable[..., Awaitable[Rig]]) -> Rig:
    """A driver with the fast test configuration, reporting OK from a 12-compartment board."""
    made = await make_rig()
    await made.expect(ok)
    return made


# ---- register map, configuration, decoding: no I/O ------------------------------------------------------


def test_the_standard_map_reads_doors_and_occupancy_in_one_request() -> None:
    """Doors at inputs 0..n-1 and occupancy at 64.. are one FC02 read of 64 + n bits; ranges far apart
    are two reads; the status registers are one FC04 read of three."""
    assert LockerLayout().input_blocks(12) == [(0, 76)]
    assert LockerLayout().input_blocks(64) == [(0, 128)]
    assert LockerLayout(occupied_input_base=1000).input_blocks(8) == [(0, 8), (1000, 8)]
    assert LockerLayout(door_input_base=100, occupied_input_base=0).input_blocks(8) == [(0, 108)]
    assert LockerLayout().register_span() == (0, 3)
    assert LockerLayout(lock_coil_base=16).lock_coil(1) == 16


def test_inputs_decode_per_compartment() -> None:
    """Door-closed and occupancy bits land on their compartment, numbered from 1."""
    bits = dict.fromkeys(range(76), False)
    bits[0] = True  # door 1 closed
    bits[64 + 1] = True  # compartment 2 occupied
    inputs = decode_inputs(LockerLayout(), 12, bits)
    assert inputs[1] == CompartmentInputs(door_closed=True, occupied=False)
    assert inputs[2] == CompartmentInputs(door_closed=False, occupied=True)
    assert len(inputs) == 12


def test_firmware_version_reads_major_dot_minor() -> None:
    """Register value 0x0102 is firmware 1.2."""
    assert BoardInfo(firmware=0x0102, boots=1, compartments=8).firmware_version == "1.2"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"compartments": 0}, "1 to 64"),
        ({"compartments": 65}, "1 to 64"),
        ({"device_id": 0}, "device_id"),
        ({"parity": "X"}, "parity"),
        ({"poll_s": 0}, "poll_s"),
        ({"pulse_s": float("nan")}, "pulse_s"),
        ({"open_attempts": 0}, "open_attempts"),
        ({"port": ""}, "port"),
        ({"layout": LockerLayout(occupied_input_base=10)}, "overlap"),
    ],
)
def test_bad_config_is_refused(kw: dict[str, Any], match: str) -> None:
    """Impossible configurations are refused with a ValueError that names the field."""
    with pytest.raises(ValueError, match=match):
        LockerConfig(**{"port": "/dev/ttyUSB0", "compartments": 12, **kw})


def test_bad_layout_is_refused() -> None:
    """Two status values on one register, or a negative address, are refused."""
    with pytest.raises(ValueError, match="must differ"):
        LockerLayout(boot_register=0)
    with pytest.raises(ValueError, match="lock_coil_base"):
        LockerLayout(lock_coil_base=-1)


def test_the_driver_is_a_locker_port() -> None:
    """``LockerDriver`` offers everything of ``LockerPort`` (what the cart service relies on)."""
    driver: LockerPort = LockerDriver(LockerConfig(port="/dev/null", compartments=4))
    assert driver.snapshot().health is BoardHealth.STARTING


# ---- against the simulated board ------------------------------------------------------------------------


async def test_reports_starting_then_the_board(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    """The first snapshot is STARTING (with a sentence), then OK with every compartment's inputs, the
    boot counter and no detail; the board's status registers are kept."""
    rig = await make_rig()
    first = await rig.expect(lambda s: True)
    assert first.health is BoardHealth.STARTING and first.detail and not first.compartments
    snapshot = await rig.expect(ok)
    assert snapshot.detail == "" and snapshot.boots == 1 and snapshot.resets_seen == 0
    assert len(snapshot.compartments) == N
    assert snapshot.compartments[3] == CompartmentInputs(door_closed=True, occupied=True)
    assert snapshot.compartments[4] == CompartmentInputs(door_closed=True, occupied=False)
    assert rig.driver.board == BoardInfo(firmware=0x0100, boots=1, compartments=N)
    assert rig.driver.snapshot() == snapshot


async def test_open_pulses_the_lock_and_the_door_springs_open(rig: Rig) -> None:
    """open(7): SENT once the board confirmed; the board sees one rising edge, the door springs open
    and the driver reports it; the coil is switched off after pulse_s."""
    assert await rig.driver.open(7) is OpenResult.SENT
    assert rig.board.pulses(7) == 1 and rig.board.door_open(7)
    await rig.expect(lambda s: not s.compartments[7].door_closed)
    await rig.board.wait_for(lambda: not rig.board.coil_on(7))
    (on_for,) = rig.board.compartment(7).coil_on_times
    assert on_for >= rig.driver.config.pulse_s
    stats = rig.driver.stats
    assert stats.pulses == 1 and 0 < stats.open_time_mean_s < rig.driver.config.timeout_s


async def test_a_second_open_during_the_pulse_sends_no_second_pulse(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    """While compartment 2's pulse runs, open(2) is SENT without another edge on the board."""
    rig = await make_rig(pulse_s=1.0)
    await rig.expect(ok)
    assert await rig.driver.open(2) is OpenResult.SENT
    assert await rig.driver.open(2) is OpenResult.SENT
    assert rig.board.pulses(2) == 1 and rig.driver.pulsing == {2} and rig.driver.stats.pulses == 1


async def test_inputs_follow_the_door_and_the_parcel(rig: Rig) -> None:
    """The student opens 3, takes the parcel and shuts the door: the snapshots show the door open,
    then the compartment empty, then the door closed; a courier's parcel put in 5 shows as occupied."""
    assert await rig.driver.open(3) is OpenResult.SENT
    await rig.expect(lambda s: s.compartments[3] == CompartmentInputs(door_closed=False, occupied=True))
    assert rig.board.take(3) == "P-3"
    await rig.expect(lambda s: s.compartments[3] == CompartmentInputs(door_closed=False, occupied=False))
    await rig.board.wait_for(lambda: not rig.board.coil_on(3))
    rig.board.close_door(3)
    await rig.expect(lambda s: s.compartments[3] == CompartmentInputs(door_closed=True, occupied=False))
    assert rig.board.compartment(3).latched

    assert await rig.driver.open(5) is OpenResult.SENT
    rig.board.put(5, "P-5")
    await rig.expect(lambda s: s.compartments[5] == CompartmentInputs(door_closed=False, occupied=True))


async def test_unknown_compartments_are_answered_as_such(rig: Rig) -> None:
    """Compartments 0, -1 and 13 of a 12-compartment locker: UNKNOWN_COMPARTMENT, no lock moves."""
    for compartment in (0, -1, N + 1):
        assert await rig.driver.open(compartment) is OpenResult.UNKNOWN_COMPARTMENT
    assert rig.board.coils_on() == [] and rig.driver.stats.pulses == 0
    assert not any(rig.board.pulses(k) for k in range(1, N + 1))


async def test_a_board_reset_is_noticed_and_no_lock_is_energised_again(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    """The board reboots in the middle of a long pulse: its coils drop; the driver sees the boot
    counter change (resets_seen 1, boots 2), forgets the pulse and writes every coil off: the lock is
    not energised again (one edge only) and stays off."""
    rig = await make_rig(pulse_s=5.0)
    await rig.expect(ok)
    assert await rig.driver.open(2) is OpenResult.SENT
    assert rig.board.coil_on(2)
    await rig.board.reset()
    assert rig.board.coils_on() == []
    snapshot = await rig.expect(lambda s: s.resets_seen == 1)
    assert snapshot.boots == 2 and snapshot.health is BoardHealth.OK
    assert rig.driver.stats.resets == 1 and rig.driver.pulsing == frozenset()
    await rig.polls(5)
    assert rig.board.coils_on() == [] and rig.board.pulses(2) == 1
    assert await rig.driver.open(2) is OpenResult.SENT  # and the lock works again
    assert rig.board.pulses(2) == 2


async def test_garbage_and_bad_crc_frames_are_counted_and_survived(rig: Rig) -> None:
    """Noise and a reply-shaped frame with a wrong CRC injected on the line are counted; the health
    stays OK and the next open works."""
    good = FramerRTU(DecodePDU(is_server=True)).buildFrame(
        ReadDiscreteInputsResponse(bits=[True] * 80, dev_id=1)
    )
    bad = good[:-1] + bytes([good[-1] ^ 0x5A])
    noise = b"\x00\xff\x13 line noise \xfe"
    rig.seen.clear()
    for _ in range(3):
        rig.board.inject(noise)
        rig.board.inject(bad)
        await rig.polls(2)
    stats = rig.driver.stats
    assert stats.crc_errors >= 3 and stats.garbage_bytes >= 3 * (len(noise) + len(bad))
    assert await rig.driver.open(9) is OpenResult.SENT
    await rig.expect(lambda s: not s.compartments[9].door_closed)
    assert all(s.health is BoardHealth.OK for s in rig.seen)


async def test_a_silent_board_is_no_reply_then_ok_again(rig: Rig) -> None:
    """A board that stops answering is NO_REPLY (with a sentence naming the port) within
    offline_after_s plus one timeout; open() tries open_attempts times and answers BOARD_DOWN; when
    the board answers again the health is OK and the lock it switched on unheard is switched off."""
    clock = RealClock()
    config = rig.driver.config
    rig.board.silent = True
    silent_at = clock.monotonic()
    snapshot = await rig.expect(lambda s: s.health is BoardHealth.NO_REPLY)
    assert clock.monotonic() - silent_at <= config.offline_after_s + config.timeout_s + 1.0
    assert config.port in snapshot.detail and "answered" in snapshot.detail
    assert await rig.driver.open(4) is OpenResult.BOARD_DOWN
    assert rig.driver.stats.open_retries == config.open_attempts - 1
    assert rig.board.door_open(4)  # the board did act: only its replies are lost
    rig.board.silent = False
    snapshot = await rig.expect(ok)
    assert snapshot.detail == "" and not snapshot.compartments[4].door_closed
    await rig.board.wait_for(lambda: not rig.board.coil_on(4))
    assert rig.driver.stats.timeouts >= 3


async def test_open_retries_a_lost_reply(rig: Rig) -> None:
    """The board's reply to the lock "on" is lost once: open() tries again and answers SENT; the
    second "on" makes no second edge, and the coil is switched off after the pulse."""
    rig.board.drop_replies(1, function_code=5)
    assert await rig.driver.open(6) is OpenResult.SENT
    assert rig.driver.stats.open_retries == 1 and rig.driver.stats.timeouts == 1
    assert rig.board.pulses(6) == 1 and rig.board.door_open(6)
    await rig.board.wait_for(lambda: not rig.board.coil_on(6))


async def test_unplugged_is_link_down_and_replugged_reconnects(rig: Rig) -> None:
    """Pulling the cable: LINK_DOWN at once (the sentence names the port), open() answers BOARD_DOWN;
    putting it back: the driver reopens the port, reports OK and opens locks again."""
    await rig.board.unplug()
    snapshot = await rig.expect(lambda s: s.health is BoardHealth.LINK_DOWN)
    assert rig.driver.config.port in snapshot.detail and "gone" in snapshot.detail
    assert snapshot.compartments  # the last inputs read stay, marked by the health
    assert await rig.driver.open(1) is OpenResult.BOARD_DOWN
    await rig.board.replug()
    snapshot = await rig.expect(ok)
    assert snapshot.detail == "" and snapshot.resets_seen == 0
    assert rig.driver.stats.port_losses == 1 and rig.driver.stats.opens == 2
    assert await rig.driver.open(1) is OpenResult.SENT
    assert rig.board.door_open(1)


async def test_a_pulse_cut_by_an_unplugged_cable_is_switched_off_after_replug(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    """The cable is pulled while a lock is energised: the board keeps it on; once the cable is back
    the driver writes every lock off (without a new edge)."""
    rig = await make_rig(pulse_s=0.2)
    await rig.expect(ok)
    assert await rig.driver.open(8) is OpenResult.SENT
    await rig.board.unplug()
    assert rig.board.coil_on(8)
    await rig.expect(lambda s: s.health is BoardHealth.LINK_DOWN)
    await asyncio.wait_for(rig.driver.wait_pulses(), 2.0)  # its "off" failed: the port is gone
    await rig.board.replug()
    await rig.expect(ok)
    await rig.board.wait_for(lambda: not rig.board.coil_on(8))
    assert rig.board.pulses(8) == 1


async def test_a_missing_port_is_link_down_until_the_board_appears(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    """Started before the cable is in: LINK_DOWN with a sentence; once the port exists the driver
    opens it and reports OK."""
    rig = await make_rig(start_board=False)
    snapshot = await rig.expect(lambda s: s.health is BoardHealth.LINK_DOWN)
    assert rig.driver.config.port in snapshot.detail
    assert await rig.driver.open(1) is OpenResult.BOARD_DOWN
    await rig.board.start()
    snapshot = await rig.expect(ok)
    assert snapshot.boots == 1 and rig.driver.stats.opens == 1


async def test_a_board_with_fewer_compartments_is_believed(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    """Configured for 12 compartments on a board that says it has 8: compartments 9..12 are unknown
    (not read, not written, not in the snapshots); the board is OK and open(8) works."""
    rig = await make_rig(board_compartments=8)
    snapshot = await rig.expect(ok)
    assert rig.driver.board is not None and rig.driver.compartments == 8
    assert sorted(snapshot.compartments) == list(range(1, 9))
    assert await rig.driver.open(10) is OpenResult.UNKNOWN_COMPARTMENT
    assert await rig.driver.open(8) is OpenResult.SENT
    await rig.expect(lambda s: ok(s) and not s.compartments[8].door_closed)
    assert rig.driver.stats.exceptions == 0


async def test_a_lock_the_board_refuses_is_refused(rig: Rig) -> None:
    """A board that answers "open 5" with a Modbus exception (a failed lock output): REFUSED, no
    retry; the board stays OK and the other locks work."""
    rig.board.break_lock(5)
    assert await rig.driver.open(5) is OpenResult.REFUSED
    assert rig.driver.stats.exceptions == 1 and rig.driver.stats.open_retries == 0
    assert not rig.board.door_open(5)
    assert await rig.driver.open(6) is OpenResult.SENT
    await rig.polls(2)
    assert rig.driver.snapshot().health is BoardHealth.OK


async def test_a_jammed_lock_is_sent_but_the_door_stays_shut(rig: Rig) -> None:
    """The driver cannot see a jammed lock: open(11) is SENT, the board saw the pulse, the door stays
    closed (the cart service notices the door never opened)."""
    rig.board.jam(11)
    assert await rig.driver.open(11) is OpenResult.SENT
    assert rig.board.pulses(11) == 1 and not rig.board.door_open(11)
    await rig.board.wait_for(lambda: not rig.board.coil_on(11))
    await rig.polls(2)
    assert rig.driver.snapshot().compartments[11].door_closed


async def test_snapshots_repeat_every_report_s_while_nothing_changes(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    """With nothing changing, a snapshot still comes about every report_s (a heartbeat), no more
    often: the polls in between publish nothing."""
    rig = await make_rig(report_s=0.15)
    first = await rig.expect(ok)
    polls = rig.driver.stats.polls
    again = await rig.expect(lambda s: True, timeout=1.0)
    assert again.health is BoardHealth.OK and again.compartments == first.compartments
    assert again.time - first.time >= 0.1
    assert rig.driver.stats.polls - polls >= 2


async def test_stop_switches_every_lock_off(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    """Stopping in the middle of a pulse still leaves no lock energised."""
    rig = await make_rig(pulse_s=5.0)
    await rig.expect(ok)
    assert await rig.driver.open(12) is OpenResult.SENT
    assert rig.board.coil_on(12)
    await rig.driver.stop()
    assert rig.board.coils_on() == [] and rig.driver.pulsing == frozenset()


async def test_a_layout_with_far_apart_inputs_is_read_in_two_requests(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    """Occupancy sensors wired from input 1000: doors and parcels are read in two requests per poll
    and still land on the right compartments; locks from coil 20 open the right doors."""
    layout = LockerLayout(lock_coil_base=20, occupied_input_base=1000)
    rig = await make_rig(layout=layout)
    snapshot = await rig.expect(ok)
    assert snapshot.compartments[3].occupied and not snapshot.compartments[2].occupied
    assert await rig.driver.open(2) is OpenResult.SENT
    assert rig.board.door_open(2) and rig.board.pulses(3) == 0
    await rig.expect(lambda s: not s.compartments[2].door_closed)
