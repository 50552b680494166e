"""Driver of the cart's compartment locker board: Modbus RTU over RS-485 (``interfaces.modbus_rtu``).

We are the bus master; the board is slave ``device_id``. Compartments are numbered 1..n (n ≤ 64).

Register map (``LockerLayout()``; every base address is configurable)::

    coils (FC05 write one, FC15 write many)
      0 .. n-1      lock solenoid of compartment 1..n — pulsed: on for ``pulse_s``, then off
    discrete inputs (FC02)
      0 .. n-1      door-closed switch of compartment 1..n (1 = closed)
      64 .. 64+n-1  occupancy sensor of compartment 1..n (1 = a parcel inside)
    input registers (FC04, read in one request)
      0             firmware version, major in the high byte (0x0100 = 1.0)
      1             boot counter (the board adds one at every power-up)
      2             compartment count

Polling. Every ``poll_s`` the door and occupancy inputs are read, both ranges in one request when the
gap between them costs less than a second request (always with the standard map: 64 + n bits, at
most 16 bytes). A second request costs about 20 characters on the wire (8-byte request, 5-byte reply
overhead, two 3.5-character silences) plus the board's turn-around; 128 unused input bits cost 16.

Lock pulses. ``open(k)`` switches compartment k's coil on (FC05) and the driver switches it off
``pulse_s`` later on its clock. We do not rely on a board releasing the coil by itself: boards differ
(many hold an output until told) and a lock solenoid left energised overheats; on a board that does
release by itself our "off" is harmless. ``open`` retries a request that got no reply (at most
``open_attempts`` tries in all); a lost reply may hide a coil that did switch on, so the whole lock
bank is written again at the next poll. A compartment whose pulse is still running answers ``SENT``
without a second pulse.

Board resets. The input registers are read at every (re)connection, every ``status_s`` and first
thing after any failed request (a rebooting board stops answering). A changed boot counter is a
reset: ``resets_seen`` goes up, running pulses are forgotten (the board dropped its outputs), every
lock coil is written off and the inputs are read again. The driver never sends a pulse on its own: a
pulse rewritten after a reset would spring a door nobody asked to open. The whole lock bank (off,
except pulses still running) is written (FC15) at every (re)connection, after a reset and after any
failed request, so a lost "off" cannot leave a solenoid energised.

A board that says (register 2) it has fewer compartments than configured is believed: the missing
ones answer ``UNKNOWN_COMPARTMENT`` and are neither read nor written (an error is logged).

Health (``BoardSnapshot.health``, with a one-sentence ``detail`` for the cart's screen): ``STARTING``
until the first good poll; ``OK`` while polls are answered; ``NO_REPLY`` when the port is open but no
poll was answered for ``offline_after_s``; ``LINK_DOWN`` as soon as the port is gone (it is reopened
every ``reconnect_s``). Short glitches (one timed-out request) do not change the health: the stats
count them. ``open`` answers ``BOARD_DOWN`` at once while the port is closed.

Snapshots are published on every change and at least every ``report_s`` (``snapshots()``).

Time: polling, pulses, timeouts and the health timers run on the driver's ``Clock``; with a real port
pass a ``RealClock`` (the default).

Errors: the link's (``ModbusLinkError``: ``LinkDown``, ``NoReply``, ``DeviceRefused``) stay inside;
``open`` answers an ``OpenResult``; ``LockerConfig``/``LockerLayout`` raise ``ValueError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from interfaces.clock import Clock, RealClock
from interfaces.fanout import Fanout, Stream
from interfaces.modbus_rtu import (
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    DeviceRefused,
    LinkDown,
    LinkStats,
    ModbusLinkError,
    NoReply,
    RtuLink,
)
from robots.cart.locker.model import BoardHealth, BoardSnapshot, CompartmentInputs, OpenResult

MAX_COMPARTMENTS = 64
MERGE_GAP_BITS = 128
"""Input ranges this close (or closer) are read in one request (see the module docstring)."""
_ADDRESSES = 0x10000


# ---- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockerLayout:
    """Where each compartment's signals are: 0-based base addresses; compartment k sits at base + k - 1."""

    lock_coil_base: int = 0
    door_input_base: int = 0
    occupied_input_base: int = 64
    firmware_register: int = 0
    boot_register: int = 1
    count_register: int = 2

    def __post_init__(self) -> None:
        for name in (
            "lock_coil_base",
            "door_input_base",
            "occupied_input_base",
            "firmware_register",
            "boot_register",
            "count_register",
        ):
            if not 0 <= getattr(self, name) < _ADDRESSES:
                raise ValueError(f"LockerLayout: {name} must be 0..65535, got {getattr(self, name)}")
        registers = (self.firmware_register, self.boot_register, self.count_register)
        if len(set(registers)) != 3:
            raise ValueError(f"LockerLayout: the three status registers must differ, got {registers}")
        if max(registers) - min(registers) >= MAX_READ_REGISTERS:
            raise ValueError(f"LockerLayout: status registers must lie within {MAX_READ_REGISTERS}")

    def check(self, compartments: int) -> None:
        """``ValueError`` unless ``compartments`` (1..64) fit: door and occupancy inputs must not overlap."""
        if not 1 <= compartments <= MAX_COMPARTMENTS:
            raise ValueError(f"LockerLayout: 1 to {MAX_COMPARTMENTS} compartments, got {compartments}")
        doors = range(self.door_input_base, self.door_input_base + compartments)
        occupied = range(self.occupied_input_base, self.occupied_input_base + compartments)
        if doors.start < occupied.stop and occupied.start < doors.stop:
            raise ValueError(
                f"LockerLayout: door inputs {doors.start}..{doors.stop - 1} overlap occupancy inputs "
                f"{occupied.start}..{occupied.stop - 1} for {compartments} compartments"
            )
        for name, r in (("lock coils", self.lock_coil_base), ("door inputs", doors.start)):
            if r + compartments > _ADDRESSES:
                raise ValueError(f"LockerLayout: {name} run past address 65535")
        if occupied.stop > _ADDRESSES:
            raise ValueError("LockerLayout: occupancy inputs run past address 65535")

    def lock_coil(self, compartment: int) -> int:
        """The coil of compartment ``compartment``'s lock."""
        return self.lock_coil_base + compartment - 1

    def door_input(self, compartment: int) -> int:
        """The discrete input of its door-closed switch."""
        return self.door_input_base + compartment - 1

    def occupied_input(self, compartment: int) -> int:
        """The discrete input of its occupancy sensor."""
        return self.occupied_input_base + compartment - 1

    def coil_span(self, compartments: int) -> tuple[int, int]:
        """``(first, count)`` of the lock coils."""
        return self.lock_coil_base, compartments

    def input_blocks(self, compartments: int) -> list[tuple[int, int]]:
        """The FC02 reads, as ``(first, count)``, covering every door and occupancy input: one when the
        gap between the two ranges is at most ``MERGE_GAP_BITS`` (and fits one request), else two."""
        low, high = sorted((self.door_input_base, self.occupied_input_base))
        gap = high - (low + compartments)
        span = high + compartments - low
        if gap <= MERGE_GAP_BITS and span <= MAX_READ_BITS:
            return [(low, span)]
        return [(low, compartments), (high, compartments)]

    def register_span(self) -> tuple[int, int]:
        """``(first, count)`` of the status registers (one FC04 read)."""
        registers = (self.firmware_register, self.boot_register, self.count_register)
        return min(registers), max(registers) - min(registers) + 1


@dataclass(frozen=True, slots=True)
class LockerConfig:
    """One cart's locker board on serial port ``port`` with ``compartments`` compartments."""

    port: str
    compartments: int
    device_id: int = 1
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "N"
    timeout_s: float = 0.2
    poll_s: float = 0.1
    pulse_s: float = 0.3
    report_s: float = 1.0
    offline_after_s: float = 1.0
    reconnect_s: float = 0.5
    status_s: float = 2.0
    """How often the status registers are read to notice a board reset."""
    open_attempts: int = 3
    """Tries of one ``open`` request that gets no reply (1 = no retry)."""
    layout: LockerLayout = field(default_factory=LockerLayout)

    def __post_init__(self) -> None:
        if not self.port:
            raise ValueError("LockerConfig: port must name a serial port")
        if not 1 <= self.device_id <= 247:
            raise ValueError(f"LockerConfig: device_id must be 1..247, got {self.device_id}")
        if self.baudrate <= 0:
            raise ValueError(f"LockerConfig: baudrate must be > 0, got {self.baudrate}")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"LockerConfig: parity must be N, E or O, got {self.parity!r}")
        for name in (
            "timeout_s",
            "poll_s",
            "pulse_s",
            "report_s",
            "offline_after_s",
            "reconnect_s",
            "status_s",
        ):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"LockerConfig: {name} must be a positive number of seconds, got {value}")
        if self.open_attempts < 1:
            raise ValueError(f"LockerConfig: open_attempts must be >= 1, got {self.open_attempts}")
        self.layout.check(self.compartments)


# ---- what the driver counts and reads ------------------------------------------------------------------


@dataclass(slots=True)
class LockerStats(LinkStats):
    """The link's counts (``opens`` = port openings) plus the driver's (``open_time_*`` in seconds)."""

    polls: int = 0
    resets: int = 0  # board resets noticed (boot counter changed)
    pulses: int = 0  # lock pulses the board confirmed (open() answered SENT with a new pulse)
    open_retries: int = 0  # open() requests sent again after no reply
    bank_writes: int = 0  # the whole lock bank written (connection, reset, after a failed request)
    open_time_total_s: float = 0.0
    open_time_max_s: float = 0.0

    @property
    def open_time_mean_s(self) -> float:
        """Mean time from ``open()`` called to the board's confirmation, over the pulses (0 before any)."""
        return self.open_time_total_s / self.pulses if self.pulses else 0.0


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """The board's status registers."""

    firmware: int
    boots: int
    compartments: int

    @property
    def firmware_version(self) -> str:
        """``"major.minor"`` (0x0100 → ``"1.0"``)."""
        return f"{self.firmware >> 8}.{self.firmware & 0xFF}"


def decode_inputs(
    layout: LockerLayout, compartments: int, bits: Mapping[int, bool]
) -> dict[int, CompartmentInputs]:
    """Each compartment's inputs from the discrete inputs read (``bits``: address → on)."""
    return {
        k: CompartmentInputs(door_closed=bits[layout.door_input(k)], occupied=bits[layout.occupied_input(k)])
        for k in range(1, compartments + 1)
    }


# ---- the driver ------------------------------------------------------------------------------------------


class LockerDriver:
    """``LockerPort`` for a Modbus RTU locker board (see the module docstring)."""

    def __init__(
        self, config: LockerConfig, clock: Clock | None = None, logger: logging.Logger | None = None
    ) -> None:
        self.config = config
        self.layout = config.layout
        self.stats = LockerStats()
        self.board: BoardInfo | None = None
        """The status registers as last read (None before the first read)."""
        self._clock = clock or RealClock()
        self._log = logger or logging.getLogger("robopost.cart.locker")
        self._link = RtuLink(
            config.port,
            device_id=config.device_id,
            baudrate=config.baudrate,
            parity=config.parity,
            timeout_s=config.timeout_s,
            clock=self._clock,
            stats=self.stats,
            logger=self._log,
        )
        self._health = BoardHealth.STARTING
        self._detail = f"Waiting for the first reply from the locker board on {config.port}."
        self._inputs: Mapping[int, CompartmentInputs] = MappingProxyType({})
        self._pulses: dict[int, asyncio.Task[None]] = {}  # compartment → the task ending its pulse
        self._coils = asyncio.Lock()  # decide-and-write of lock coils, one at a time
        self._resync = True  # read the status and write the whole lock bank at the next poll
        self._status_due = -math.inf
        self._last_ok = self._clock.monotonic()
        self._reported_at = -math.inf
        self._poll_failures = 0
        self._fanout: Fanout[BoardSnapshot] = Fanout(self._snapshot_now())
        self._polled = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    # ---- LockerPort ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the port (or keep trying every ``reconnect_s``) and start polling; returns at once."""
        if self._task is not None:
            return
        self._last_ok = self._clock.monotonic()
        self._report()
        self._task = asyncio.create_task(self._run(), name=f"locker board {self.config.port}")

    async def stop(self) -> None:
        """Stop polling, switch every lock coil off (best effort) and close the port."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._coils:
            ended = self._forget_pulses()
            if self._link.is_open:
                with contextlib.suppress(ModbusLinkError):
                    await self._write_bank()
        self._link.close()
        await asyncio.gather(*ended, return_exceptions=True)

    async def open(self, compartment: int) -> OpenResult:
        """Pulse compartment ``compartment``'s lock (see "Lock pulses" in the module docstring)."""
        started = self._clock.monotonic()
        if not 1 <= compartment <= self.compartments:
            return OpenResult.UNKNOWN_COMPARTMENT
        async with self._coils:  # one open is one pulse: no bank write between its tries
            return await self._pulse(compartment, started)

    def snapshot(self) -> BoardSnapshot:
        """The latest snapshot."""
        latest = self._fanout.latest
        return latest if latest is not None else self._snapshot_now()

    def snapshots(self) -> Stream[BoardSnapshot]:
        """Every new snapshot from now on (on every change, and at least every ``report_s``)."""
        return self._fanout.stream()

    # ---- for tests and health checks ----------------------------------------------------------------

    async def wait_polls(self, count: int = 1) -> None:
        """Return once ``count`` more polls have finished, answered or not (none run while the port is
        closed)."""
        target = self.stats.polls + count
        async with self._polled:
            await self._polled.wait_for(lambda: self.stats.polls >= target)

    async def wait_pulses(self) -> None:
        """Return once every lock pulse running now has ended (its coil switched off, or the "off"
        failed and is left to the next bank write)."""
        running = set(self._pulses.values())
        if running:
            await asyncio.wait(running)  # not gather: cancelling the waiter must not cancel them

    @property
    def compartments(self) -> int:
        """The compartments in use: the configured count, or the board's when it says it has fewer
        (the others are ``UNKNOWN_COMPARTMENT``, and left out of reads, writes and snapshots)."""
        board = self.board.compartments if self.board is not None else 0
        return board if 1 <= board < self.config.compartments else self.config.compartments

    @property
    def pulsing(self) -> frozenset[int]:
        """The compartments whose lock pulse is running."""
        return frozenset(self._pulses)

    # ---- polling ------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._link.is_open and not self._try_open():
                self._set_health(BoardHealth.LINK_DOWN)
                self._report()
                await self._clock.sleep(self.config.reconnect_s)
                continue
            await self._poll_once()
            self._report()
            async with self._polled:
                self._polled.notify_all()
            await self._clock.sleep(self.config.poll_s)

    def _try_open(self) -> bool:
        if not self._link.try_open(self.config.reconnect_s):
            return False
        self._resync = True  # whatever the board did meanwhile: write the lock bank
        return True

    async def _poll_once(self) -> None:
        """One poll: check the board (status, lock bank) when due, read the inputs, note the health."""
        self.stats.polls += 1
        try:
            await self._check_board()
            inputs = await self._read_inputs()
        except ModbusLinkError as exc:
            self._resync = True
            self._poll_failures += 1
            refused = isinstance(exc, DeviceRefused)  # wiring or configuration: say so, once a streak
            level = logging.WARNING if refused and self._poll_failures == 1 else logging.DEBUG
            self._log.log(level, "locker %s: poll failed: %s", self.config.port, exc)
            self._note_trouble()
            return
        self._poll_failures = 0
        self._last_ok = self._clock.monotonic()
        self._inputs = MappingProxyType(inputs)
        self._set_health(BoardHealth.OK)

    async def _check_board(self) -> None:
        """Read the status registers when due or after trouble; write the lock bank after trouble."""
        if not self._resync and self._clock.monotonic() < self._status_due:
            return
        async with self._coils:
            if self._resync or self._clock.monotonic() >= self._status_due:
                await self._read_status()
                self._status_due = self._clock.monotonic() + self.config.status_s
            if self._resync:
                await self._write_bank()

    async def _read_status(self) -> None:
        """Read the status registers; a changed boot counter is a board reset."""
        first, count = self.layout.register_span()
        registers = await self._link.read_input_registers(first, count)
        layout = self.layout
        info = BoardInfo(
            firmware=registers[layout.firmware_register - first],
            boots=registers[layout.boot_register - first],
            compartments=registers[layout.count_register - first],
        )
        previous, self.board = self.board, info
        if previous is None:
            self._log.info(
                "locker %s: board firmware %s, boot %d, %d compartments",
                self.config.port,
                info.firmware_version,
                info.boots,
                info.compartments,
            )
            if info.compartments != self.config.compartments:
                self._log.error(
                    "locker %s: the board has %d compartments, the configuration %d: using %d",
                    self.config.port,
                    info.compartments,
                    self.config.compartments,
                    self.compartments,
                )
        elif info.boots != previous.boots:
            self.stats.resets += 1
            self._log.warning(
                "locker %s: the board reset (boot %d → %d): lock coils off, inputs read again",
                self.config.port,
                previous.boots,
                info.boots,
            )
            self._forget_pulses()
            self._resync = True

    async def _read_inputs(self) -> dict[int, CompartmentInputs]:
        bits: dict[int, bool] = {}
        for first, count in self.layout.input_blocks(self.compartments):
            values = await self._link.read_discrete_inputs(first, count)
            bits.update(zip(range(first, first + count), values, strict=True))
        return decode_inputs(self.layout, self.compartments, bits)

    # ---- lock coils (callers hold self._coils) --------------------------------------------------------

    async def _pulse(self, compartment: int, started: float) -> OpenResult:
        """Switch the lock coil on (tries ``open_attempts`` times) and schedule it off; ``started``:
        when ``open`` was called (for ``stats.open_time_*``)."""
        if compartment in self._pulses:
            return OpenResult.SENT  # its pulse is running: a second "on" makes no new edge
        coil = self.layout.lock_coil(compartment)
        for attempt in range(1, self.config.open_attempts + 1):
            if not self._link.is_open:
                return OpenResult.BOARD_DOWN
            try:
                await self._link.write_coil(coil, True)
            except NoReply as exc:
                self._resync = True  # it may have switched on: the next poll writes the bank
                self._log.info("locker: open %d, try %d: %s", compartment, attempt, exc)
                if attempt < self.config.open_attempts:
                    self.stats.open_retries += 1
                continue
            except LinkDown:
                return OpenResult.BOARD_DOWN
            except DeviceRefused as exc:
                self._log.error("locker: the board refused to open compartment %d: %s", compartment, exc)
                return OpenResult.REFUSED
            self._pulses[compartment] = asyncio.create_task(
                self._end_pulse(compartment), name=f"locker pulse {compartment}"
            )
            self._count_open(self._clock.monotonic() - started)
            return OpenResult.SENT
        return OpenResult.BOARD_DOWN

    async def _write_bank(self) -> None:
        """Every lock coil as wanted: on for a running pulse, else off."""
        first, count = self.layout.coil_span(self.compartments)
        await self._link.write_coils(first, [k in self._pulses for k in range(1, count + 1)])
        self.stats.bank_writes += 1
        self._resync = False

    def _forget_pulses(self) -> list[asyncio.Task[None]]:
        """Cancel the running pulses' endings (their coils are or will be written off); return them."""
        tasks = list(self._pulses.values())
        for task in tasks:
            task.cancel()
        self._pulses.clear()
        return tasks

    async def _end_pulse(self, compartment: int) -> None:
        await self._clock.sleep(self.config.pulse_s)
        async with self._coils:
            if self._pulses.get(compartment) is not asyncio.current_task():
                return  # forgotten meanwhile (reset, stop)
            del self._pulses[compartment]
            try:
                await self._link.write_coil(self.layout.lock_coil(compartment), False)
            except ModbusLinkError as exc:
                self._resync = True  # the next good poll writes it off with the whole bank
                self._log.info("locker: lock %d not switched off yet: %s", compartment, exc)

    def _count_open(self, seconds: float) -> None:
        self.stats.pulses += 1
        self.stats.open_time_total_s += seconds
        self.stats.open_time_max_s = max(self.stats.open_time_max_s, seconds)

    # ---- health and reporting -----------------------------------------------------------------------

    def _note_trouble(self) -> None:
        """A poll failed: LINK_DOWN when the port is gone, NO_REPLY after ``offline_after_s``."""
        if not self._link.is_open:
            self._set_health(BoardHealth.LINK_DOWN)
        elif self._clock.monotonic() - self._last_ok >= self.config.offline_after_s:
            self._set_health(BoardHealth.NO_REPLY)

    def _set_health(self, health: BoardHealth) -> None:
        if health is not self._health:
            self._log.info("locker %s: %s → %s", self.config.port, self._health, health)
        self._health = health
        self._detail = self._describe(health)

    def _describe(self, health: BoardHealth) -> str:
        port = self.config.port
        if health is BoardHealth.LINK_DOWN:
            every = self.config.reconnect_s
            return (
                f"The serial port {port} is gone (cable or adapter unplugged?); retrying every {every:g} s."
            )
        if health is BoardHealth.NO_REPLY:
            return f"The locker board on {port} has not answered for {self.config.offline_after_s:g} s."
        if health is BoardHealth.STARTING:
            return f"Waiting for the first reply from the locker board on {port}."
        return ""

    def _snapshot_now(self) -> BoardSnapshot:
        return BoardSnapshot(
            time=self._clock.now(),
            health=self._health,
            compartments=self._inputs,
            detail=self._detail,
            boots=self.board.boots if self.board is not None else None,
            resets_seen=self.stats.resets,
        )

    def _report(self) -> None:
        """Publish a snapshot when it differs from the last one, or ``report_s`` after it."""
        snapshot = self._snapshot_now()
        latest = self._fanout.latest
        now = self._clock.monotonic()
        unchanged = latest is not None and replace(latest, time=snapshot.time) == snapshot
        if unchanged and now - self._reported_at < self.config.report_s:
            return
        self._reported_at = now
        self._fanout.publish(snapshot)
