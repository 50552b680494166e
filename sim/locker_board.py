"""A simulated locker board of a delivery cart, on a real pseudo-terminal pair (a virtual RS-485 cable).

``LockerBoardSim`` is the board of ``robots.cart.locker.LockerDriver``: a pymodbus RTU slave on one end
of a pty pair made by ``socat`` (``sim.pty``); the driver opens the other end, ``port``. The register
map is the driver's ``LockerLayout``. Each compartment has a latch, a door and maybe a parcel:

- a rising edge of its lock coil pulls the latch and the door springs open, unless the lock is
  jammed (``jam(n)``: nothing moves) or the door sticks (``stick(n)``: it stays shut; a person can
  pull it open, ``open_door(n)``, while the coil is on, else the latch catches again when it drops);
- a person can ``open_door(n)`` (only while unlatched), ``take(n)`` / ``put(n, parcel)`` (only with
  the door open) and ``close_door(n)``: the spring latch catches as the door shuts (or, while the lock
  coil is still on, as soon as it drops);
- ``load(n, parcel)`` puts a parcel in without a person (setting up a scenario).

Inputs show the doors (1 = closed) and the occupancy sensors (1 = parcel inside) at the moment they
are read; input registers show the firmware (0x0100 = 1.0), the boot counter and the compartment count.
Writing coils beyond the board's compartments is refused with ILLEGAL_ADDRESS, switching on a lock
broken with ``break_lock(n)`` with DEVICE_FAILURE. The board does not release a coil by itself: the
driver ends every pulse.

Faults for tests and demos:

- ``silent = True``: the board still reads and acts on requests but sends no replies (a dead
  transmitter); ``drop_replies(k)`` drops only the next ``k`` replies (optionally of one function code);
- ``unplug()`` / ``replug()``: the cable is pulled (both pty ends vanish, the driver's port hangs up)
  and put back (a new pty pair at the same paths and a new server: pymodbus does not reopen a port);
  coils keep their state, as on a powered board whose cable was pulled;
- ``reset()``: the board reboots: boot counter + 1, every coil drops, the server restarts;
- ``inject(data)``: raw bytes onto the line towards the driver (noise, frames with a bad CRC).

Tests wait on the board instead of sleeping: ``await sim.wait_for(lambda: sim.door_open(7))`` returns
once the condition holds (checked after every request served and every change), ``TimeoutError``
after ``timeout`` seconds. Everything is deterministic: no randomness, and the board acts only on
requests and on calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from interfaces.clock import Clock, RealClock
from robots.cart.locker.driver import LockerLayout
from sim.pty import RtuBoardOnPty

FIRMWARE = 0x0100  # 1.0


class LockerSimError(RuntimeError):
    """A simulated person tried what the locker does not allow (a locked door, an empty compartment)."""


@dataclass(slots=True)
class _Compartment:
    latched: bool = True
    door_open: bool = False
    parcel: str | None = None
    jammed: bool = False
    stuck: bool = False
    broken: bool = False
    pulses: int = 0
    opened: int = 0
    coil_on_since: float | None = None
    coil_on_times: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CompartmentView:
    """One compartment as the simulation sees it (``coil_on_times``: how long each pulse lasted, s)."""

    latched: bool
    door_open: bool
    parcel: str | None
    jammed: bool
    stuck: bool
    coil_on: bool
    pulses: int
    opened: int
    coil_on_times: tuple[float, ...]


def _round16(bits: int) -> int:
    return max(16, (bits + 15) // 16 * 16)


class LockerBoardSim(RtuBoardOnPty):
    """The locker board of one cart on a pty pair in ``directory`` (see the module docstring).

    The driver opens ``port`` (``directory/locker-line``); the board holds ``directory/locker-board``.
    ``clock`` only times how long coils stay on (``CompartmentView.coil_on_times``).
    """

    def __init__(
        self,
        directory: Path,
        compartments: int,
        *,
        device_id: int = 1,
        baudrate: int = 19200,
        layout: LockerLayout | None = None,
        logger: logging.Logger | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.layout = layout or LockerLayout()
        self.layout.check(compartments)
        self.compartments = compartments
        self._log = logger or logging.getLogger("robopost.sim.locker_board")
        super().__init__(
            Path(directory) / "locker-board",
            Path(directory) / "locker-line",
            device_id=device_id,
            baudrate=baudrate,
            logger=self._log,
        )
        self.boots = 1
        self.silent = False
        self.requests = 0
        self.dropped_replies = 0
        self._drop: list[int | None] = []  # replies still to drop: function code, or None for any
        self._lockers = {k: _Compartment() for k in range(1, compartments + 1)}
        self._coil_bits = _round16(self.layout.lock_coil_base + compartments)
        inputs_end = max(self.layout.door_input_base, self.layout.occupied_input_base) + compartments
        self._input_bits = _round16(inputs_end)
        self._coils = [False] * self._coil_bits
        self._clock = clock or RealClock()
        self._change = asyncio.Event()

    # ---- power and cable -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Power the board off and pull the cable."""
        await super().stop()
        self._changed()

    async def replug(self) -> None:
        """Put the cable back: a new pty pair at the same paths and a new server on it."""
        await super().replug()
        self._changed()

    async def reset(self) -> None:
        """The board reboots: every coil drops, the boot counter goes up, replies resume."""
        await self._stop_server()
        self.boots += 1
        self._apply_coils(0, [False] * self._coil_bits)
        await self._start_server()
        self._changed()

    def drop_replies(self, count: int, function_code: int | None = None) -> None:
        """Send no reply to the next ``count`` requests (of ``function_code`` only, when given); the
        board still acts on them."""
        self._drop += [function_code] * count

    # ---- the people at the cart ---------------------------------------------------------------------

    def load(self, compartment: int, parcel: str = "parcel") -> None:
        """Put ``parcel`` in without opening anything (setting up a scenario)."""
        box = self._box(compartment)
        if box.parcel is not None:
            raise LockerSimError(f"compartment {compartment} already holds {box.parcel!r}")
        box.parcel = parcel
        self._changed()

    def jam(self, compartment: int, jammed: bool = True) -> None:
        """Jam the lock: a pulse no longer releases the latch."""
        self._box(compartment).jammed = jammed
        self._changed()

    def break_lock(self, compartment: int, broken: bool = True) -> None:
        """Break the lock's output: the board refuses to switch it on (Modbus exception 4, device
        failure), as boards that check their solenoid's current do."""
        self._box(compartment).broken = broken
        self._changed()

    def stick(self, compartment: int, stuck: bool = True) -> None:
        """Make the door stick: a pulse unlatches it but it stays shut; ``open_door`` during the pulse."""
        self._box(compartment).stuck = stuck
        self._changed()

    def open_door(self, compartment: int) -> None:
        """A person pulls the door open (only when it is unlatched and shut)."""
        box = self._box(compartment)
        if box.door_open:
            raise LockerSimError(f"compartment {compartment}'s door is already open")
        if box.latched:
            raise LockerSimError(f"compartment {compartment} is locked")
        box.door_open = True
        box.opened += 1
        self._changed()

    def close_door(self, compartment: int) -> None:
        """A person shuts the door; the latch catches unless the lock coil is still on."""
        box = self._box(compartment)
        if not box.door_open:
            raise LockerSimError(f"compartment {compartment}'s door is already shut")
        box.door_open = False
        box.latched = not self._coils[self.layout.lock_coil(compartment)]
        self._changed()

    def take(self, compartment: int) -> str:
        """A person takes the parcel out (the door must be open)."""
        box = self._box(compartment)
        if not box.door_open:
            raise LockerSimError(f"compartment {compartment}'s door is shut")
        if box.parcel is None:
            raise LockerSimError(f"compartment {compartment} is empty")
        parcel, box.parcel = box.parcel, None
        self._changed()
        return parcel

    def put(self, compartment: int, parcel: str = "parcel") -> None:
        """A person puts a parcel in (the door must be open, the compartment empty)."""
        box = self._box(compartment)
        if not box.door_open:
            raise LockerSimError(f"compartment {compartment}'s door is shut")
        if box.parcel is not None:
            raise LockerSimError(f"compartment {compartment} already holds {box.parcel!r}")
        box.parcel = parcel
        self._changed()

    # ---- what the board is --------------------------------------------------------------------------

    def door_open(self, compartment: int) -> bool:
        """Whether the door is open."""
        return self._box(compartment).door_open

    def occupied(self, compartment: int) -> bool:
        """Whether a parcel is inside."""
        return self._box(compartment).parcel is not None

    def coil_on(self, compartment: int) -> bool:
        """Whether the lock coil is energised."""
        return self._coils[self.layout.lock_coil(compartment)]

    def coils_on(self) -> list[int]:
        """The compartments whose lock coil is energised."""
        return [k for k in self._lockers if self.coil_on(k)]

    def pulses(self, compartment: int) -> int:
        """How many rising edges its lock coil has seen."""
        return self._box(compartment).pulses

    def compartment(self, compartment: int) -> CompartmentView:
        """Everything about one compartment."""
        box = self._box(compartment)
        return CompartmentView(
            latched=box.latched,
            door_open=box.door_open,
            parcel=box.parcel,
            jammed=box.jammed,
            stuck=box.stuck,
            coil_on=self.coil_on(compartment),
            pulses=box.pulses,
            opened=box.opened,
            coil_on_times=tuple(box.coil_on_times),
        )

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        """Return once ``predicate()`` holds (checked after every change and request served);
        ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._change.wait()

    # ---- the Modbus server ---------------------------------------------------------------------------

    def _registers(self) -> list[int]:
        layout = self.layout
        count = max(layout.firmware_register, layout.boot_register, layout.count_register) + 1
        values = [0] * count
        values[layout.firmware_register] = FIRMWARE
        values[layout.boot_register] = self.boots & 0xFFFF
        values[layout.count_register] = self.compartments
        return values

    def _device(self) -> SimDevice:
        return SimDevice(
            self.device_id,
            simdata=(
                [SimData(0, values=list(self._coils), datatype=DataType.BITS)],
                [SimData(0, count=self._input_bits, values=False, datatype=DataType.BITS)],
                [SimData(0, values=[0], datatype=DataType.REGISTERS)],  # none used; pymodbus needs one
                [SimData(0, values=self._registers(), datatype=DataType.REGISTERS)],
            ),
            action=self._on_access,
        )

    def _trace(self, sending: bool, data: bytes) -> bytes:
        """pymodbus hands us every packet: a silent board, or a dropped reply, sends nothing."""
        if not sending:
            return data
        code = data[1] & 0x7F if len(data) > 1 else None
        if self._drop and self._drop[0] in (None, code):
            self._drop.pop(0)
        elif not self.silent:
            return data
        self.dropped_replies += 1
        self._changed()
        return b""

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        _count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this on every access: fill in the inputs and registers, act on the coils."""
        self.requests += 1
        refused = None
        if function_code == 2:
            bits = [False] * (16 * (len(registers) - 1))
            for k, box in self._lockers.items():
                bits[self.layout.door_input(k) - 16 * start_address] = not box.door_open
                bits[self.layout.occupied_input(k) - 16 * start_address] = box.parcel is not None
            registers[: len(registers) - 1] = SimUtils.bitsToRegisters(bits)
        elif function_code == 4:
            current = self._registers()  # the block starts at address 0
            registers[: len(current)] = current
        elif function_code in (5, 15) and values is not None:
            first = self.layout.lock_coil_base
            if address < first or address + len(values) > first + self.compartments:
                refused = ExcCodes.ILLEGAL_ADDRESS
            elif any(on and self._lockers[address - first + 1 + i].broken for i, on in enumerate(values)):
                refused = ExcCodes.DEVICE_FAILURE
            else:
                self._apply_coils(address, [bool(v) for v in values])
        self._changed()
        return refused

    def _apply_coils(self, first: int, values: list[bool]) -> None:
        """Set coils from ``first`` on; a rising edge pulls a latch, a falling one lets it catch."""
        for offset, on in enumerate(values):
            coil = first + offset
            if coil >= self._coil_bits or self._coils[coil] == on:
                continue
            self._coils[coil] = on
            compartment = coil - self.layout.lock_coil_base + 1
            if compartment in self._lockers:
                self._edge(self._lockers[compartment], on)

    def _edge(self, box: _Compartment, on: bool) -> None:
        now = self._clock.monotonic()
        if not on:
            if box.coil_on_since is not None:
                box.coil_on_times.append(now - box.coil_on_since)
                box.coil_on_since = None
            if not box.door_open:
                box.latched = True  # the spring latch catches again
            return
        box.coil_on_since = now
        box.pulses += 1
        if box.jammed:
            return
        box.latched = False
        if not box.door_open and not box.stuck:
            box.door_open = True
            box.opened += 1

    def _box(self, compartment: int) -> _Compartment:
        try:
            return self._lockers[compartment]
        except KeyError:
            raise ValueError(
                f"LockerBoardSim: no compartment {compartment} (1..{self.compartments})"
            ) from None

    def _changed(self) -> None:
        """Wake every ``wait_for``."""
        self._change.set()
        self._change = asyncio.Event()
