"""Lift driver for an old lift wired to a Modbus RTU relay board on RS-485 (pyserial + pymodbus PDUs).

The board sits beside the lift controller: its relays are wired in parallel with the cabin's buttons,
its inputs to the controller's signal outputs. We are the bus master; the board is slave ``device_id``.

Standard wiring (``RelayBoardLayout.standard``; every address is configurable)::

    coils (FC05 write one, FC15 write many, FC01 read back)
      0 .. n-1   floor buttons, lowest floor first — pulsed (on for ``pulse_s``, then off)
      16         door-open button — pulsed to open, held on while a robot holds the doors
      17         door-close button — pulsed to close at once
    discrete inputs (FC02, all read in one request per poll)
      0 .. n-1   door-zone sensors, one per floor ("one_hot"), or the position indicator as a binary
                 floor code on inputs 0..k-1, LSB first, value = floor index + 1, 0 = none ("binary")
      16 door fully open    17 door fully closed    18 moving up    19 moving down
      20 fire service (recall active)    21 lift fault (any)    22 door obstructed    23 out of service

The driver polls the inputs every ``poll_s`` and reports a ``LiftStatus`` whenever it changes (and at
least every ``report_s``). Mode: fire input → FIRE; out of service → OFFLINE with ``OUT_OF_SERVICE``;
otherwise HUMAN (normal passenger service). Faults use ``LiftFault`` names.

Robustness. The RTU master (``interfaces.modbus_rtu.RtuLink``, shared with the cart's locker driver)
owns framing: garbage bytes, frames with a wrong CRC and requests without a valid reply within
``timeout_s`` are survived and counted in ``stats``. When the port vanishes (USB adapter unplugged,
pty closed) it is reopened every ``reconnect_s``. After any failed transaction, on every
(re)connection and when the periodic coil read-back (every ``readback_every`` polls) disagrees — a
board that reset itself — the whole relay bank is written to the state we want, so a held door-open
comes back and no floor button stays pressed. Without a good reply for
``offline_after_s`` the status becomes ``mode=OFFLINE`` with ``NO_REPLY`` (or ``LINK_DOWN`` when the port
is gone); verbs then answer RETRY.

Time: polling, pulses, timeouts and the offline timer all run on the driver's ``Clock``; with a real
port pass a ``RealClock`` (the default).

Errors (``interfaces.modbus_rtu``'s, re-exported here; verbs turn them into ``DriverResult``)::

    ModbusLinkError
    ├── LinkDown        the port is missing, closed or vanished            → RETRY
    ├── NoReply         no valid reply within timeout_s                    → RETRY
    └── DeviceRefused   the board answered with a Modbus exception code   → IMPOSSIBLE
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Literal

from elevator_bridge.drivers.base import (
    DriverResult,
    LiftFault,
    LiftStatus,
    StatusFanout,
    StatusStream,
)
from interfaces.clock import Clock, RealClock
from interfaces.lift import DoorState, LiftMode, MotionState
from interfaces.modbus_rtu import (
    DeviceRefused,
    FrameScan,
    LinkDown,
    LinkStats,
    ModbusLinkError,
    NoReply,
    RtuLink,
    count_bad_frames,
    crc_ok,
    scan_reply,
)

__all__ = [  # the RTU master moved to interfaces.modbus_rtu; its names stay importable from here
    "BoardInputs",
    "DeviceRefused",
    "FrameScan",
    "LinkDown",
    "ModbusLinkError",
    "ModbusRelayConfig",
    "ModbusRelayDriver",
    "ModbusStats",
    "NoReply",
    "RelayBoardLayout",
    "RtuLink",
    "count_bad_frames",
    "crc_ok",
    "decode_inputs",
    "scan_reply",
    "status_from_inputs",
]

FloorCode = Literal["one_hot", "binary"]


# ---- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelayBoardLayout:
    """Where each signal is wired: 0-based coil and discrete-input addresses.

    ``floor_inputs`` are door-zone sensors, one per floor lowest first (``floor_code="one_hot"``), or the
    bits of the position indicator's binary floor code, LSB first (``"binary"``: value = index + 1).
    """

    floor_coils: tuple[int, ...]
    door_open_coil: int
    door_close_coil: int | None
    floor_inputs: tuple[int, ...]
    door_open_input: int
    door_closed_input: int
    moving_up_input: int
    moving_down_input: int
    fire_input: int
    fault_input: int
    door_blocked_input: int | None = None
    out_of_service_input: int | None = None
    floor_code: FloorCode = "one_hot"

    @classmethod
    def standard(cls, floors: int, floor_code: FloorCode = "one_hot") -> RelayBoardLayout:
        """The wiring of the module docstring for a lift serving ``floors`` floors (at most 16)."""
        if not 2 <= floors <= 16:
            raise ValueError(f"RelayBoardLayout.standard: 2 to 16 floors, got {floors}")
        bits = max(1, math.ceil(math.log2(floors + 1)))
        return cls(
            floor_coils=tuple(range(floors)),
            door_open_coil=16,
            door_close_coil=17,
            floor_inputs=tuple(range(floors if floor_code == "one_hot" else bits)),
            door_open_input=16,
            door_closed_input=17,
            moving_up_input=18,
            moving_down_input=19,
            fire_input=20,
            fault_input=21,
            door_blocked_input=22,
            out_of_service_input=23,
            floor_code=floor_code,
        )

    def __post_init__(self) -> None:
        coils = self.coils()
        if len(set(coils)) != len(coils) or min(coils) < 0:
            raise ValueError(f"RelayBoardLayout: coil addresses must be distinct and >= 0, got {coils}")
        inputs = self.inputs()
        if len(set(inputs)) != len(inputs) or min(inputs) < 0:
            raise ValueError(f"RelayBoardLayout: input addresses must be distinct and >= 0, got {inputs}")
        if self.floor_code not in ("one_hot", "binary"):
            raise ValueError(f"RelayBoardLayout: floor_code must be one_hot or binary, got {self.floor_code}")
        if self.floor_code == "one_hot" and len(self.floor_inputs) != len(self.floor_coils):
            raise ValueError("RelayBoardLayout: one_hot needs one floor input per floor coil")
        if self.floor_code == "binary" and 2 ** len(self.floor_inputs) <= len(self.floor_coils):
            raise ValueError(f"RelayBoardLayout: {len(self.floor_inputs)} code bits cannot number the floors")

    def coils(self) -> list[int]:
        """Every coil address in use."""
        extra = [] if self.door_close_coil is None else [self.door_close_coil]
        return [*self.floor_coils, self.door_open_coil, *extra]

    def inputs(self) -> list[int]:
        """Every discrete-input address in use."""
        named = [
            self.door_open_input,
            self.door_closed_input,
            self.moving_up_input,
            self.moving_down_input,
            self.fire_input,
            self.fault_input,
            self.door_blocked_input,
            self.out_of_service_input,
        ]
        return [*self.floor_inputs, *(a for a in named if a is not None)]

    def coil_span(self) -> tuple[int, int]:
        """``(first, count)`` of the coil block covering every coil."""
        coils = self.coils()
        return min(coils), max(coils) - min(coils) + 1

    def input_span(self) -> tuple[int, int]:
        """``(first, count)`` of the input block read in one request."""
        inputs = self.inputs()
        return min(inputs), max(inputs) - min(inputs) + 1


@dataclass(frozen=True, slots=True)
class ModbusRelayConfig:
    """One lift's relay board. ``floors`` are our floor names, lowest first (one floor coil each)."""

    port: str
    floors: tuple[str, ...]
    layout: RelayBoardLayout | None = None  # None: RelayBoardLayout.standard(len(floors))
    device_id: int = 1
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "N"
    poll_s: float = 0.1
    timeout_s: float = 0.2
    offline_after_s: float = 1.0
    reconnect_s: float = 0.5
    pulse_s: float = 0.3
    readback_every: int = 10
    report_s: float = 1.0

    def __post_init__(self) -> None:
        if len(self.floors) < 2 or len(set(self.floors)) != len(self.floors):
            raise ValueError(f"ModbusRelayConfig: floors must be 2 or more distinct names, got {self.floors}")
        if not 1 <= self.device_id <= 247:
            raise ValueError(f"ModbusRelayConfig: device_id must be 1..247, got {self.device_id}")
        for name in ("poll_s", "timeout_s", "offline_after_s", "reconnect_s", "pulse_s", "report_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ModbusRelayConfig: {name} must be > 0, got {getattr(self, name)}")
        if self.readback_every < 1:
            raise ValueError(f"ModbusRelayConfig: readback_every must be >= 1, got {self.readback_every}")
        if self.layout is not None and len(self.layout.floor_coils) != len(self.floors):
            raise ValueError("ModbusRelayConfig: the layout needs exactly one floor coil per floor")

    def board_layout(self) -> RelayBoardLayout:
        """The configured layout, or the standard one for this many floors."""
        return self.layout or RelayBoardLayout.standard(len(self.floors))


@dataclass(slots=True)
class ModbusStats(LinkStats):
    """What the link has seen since the driver started, plus the driver's own counts."""

    relay_resyncs: int = 0  # the read-back found the relays not as wanted (a board that reset)
    polls: int = 0


# ---- decoding the inputs (pure) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoardInputs:
    """The discrete inputs, by meaning. ``floor`` is a floor index, None when no floor reads."""

    floor: int | None
    door_open: bool
    door_closed: bool
    moving_up: bool
    moving_down: bool
    fire: bool
    fault: bool
    door_blocked: bool
    out_of_service: bool


def decode_inputs(layout: RelayBoardLayout, first: int, bits: list[bool]) -> BoardInputs:
    """Read the board's inputs (``bits[0]`` is input ``first``) according to ``layout``."""

    def bit(address: int | None) -> bool:
        return address is not None and bits[address - first]

    floor_bits = [bit(a) for a in layout.floor_inputs]
    if layout.floor_code == "binary":
        code = sum(1 << i for i, on in enumerate(floor_bits) if on)
        floor = code - 1 if 1 <= code <= len(layout.floor_coils) else None
    else:
        lit = [i for i, on in enumerate(floor_bits) if on]
        floor = lit[0] if len(lit) == 1 else None
    return BoardInputs(
        floor=floor,
        door_open=bit(layout.door_open_input),
        door_closed=bit(layout.door_closed_input),
        moving_up=bit(layout.moving_up_input),
        moving_down=bit(layout.moving_down_input),
        fire=bit(layout.fire_input),
        fault=bit(layout.fault_input),
        door_blocked=bit(layout.door_blocked_input),
        out_of_service=bit(layout.out_of_service_input),
    )


def status_from_inputs(inputs: BoardInputs, floor: str | None, time: float) -> LiftStatus:
    """The ``LiftStatus`` the inputs say (``floor``: the floor name to report)."""
    motion = {
        (True, False): MotionState.UP,
        (False, True): MotionState.DOWN,
        (False, False): MotionState.STOPPED,
    }.get((inputs.moving_up, inputs.moving_down), MotionState.UNKNOWN)
    door = {(True, False): DoorState.OPEN, (False, True): DoorState.CLOSED}.get(
        (inputs.door_open, inputs.door_closed), DoorState.MOVING
    )
    faults: list[str] = []
    if inputs.door_blocked:
        faults.append(LiftFault.DOOR_BLOCKED)
    if inputs.out_of_service:
        faults.append(LiftFault.OUT_OF_SERVICE)
    if inputs.fault and not inputs.door_blocked:
        faults.append(LiftFault.LIFT_FAULT)
    mode = LiftMode.HUMAN
    if inputs.out_of_service:
        mode = LiftMode.OFFLINE
    if inputs.fire:
        mode = LiftMode.FIRE
    return LiftStatus(time, floor, motion, door, mode, tuple(faults))


# ---- the driver --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Relays:
    """The relay states we want, and when each pulsed relay is due to drop."""

    wanted: dict[int, bool]
    drop_at: dict[int, float] = field(default_factory=dict)
    resync: bool = True  # write the whole bank at the next chance


class ModbusRelayDriver:
    """``LiftDriver`` for a Modbus RTU relay board (see the module docstring)."""

    def __init__(
        self,
        config: ModbusRelayConfig,
        *,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.floors = list(config.floors)
        self.layout = config.board_layout()
        self.stats = ModbusStats()
        self._clock = clock or RealClock()
        self._log = logger or logging.getLogger("robopost.elevator_bridge.modbus")
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
        self._relays = _Relays({coil: False for coil in self.layout.coils()})
        self._fanout = StatusFanout()
        self._task: asyncio.Task[None] | None = None
        self._last_ok = 0.0
        self._last_floor: str | None = None
        self._reported_at = -math.inf
        self._polled = asyncio.Condition()

    # ---- LiftDriver ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the port (or keep trying) and start polling."""
        if self._task is not None:
            return
        self._last_ok = self._clock.monotonic()
        self._task = asyncio.create_task(self._run(), name=f"modbus-relay {self.config.port}")

    async def stop(self) -> None:
        """Stop polling, let go of every relay (best effort) and close the port."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._relays.wanted = dict.fromkeys(self._relays.wanted, False)
        if self._link.is_open:
            with contextlib.suppress(ModbusLinkError):
                await self._write_bank()
        self._link.close()

    async def call(self, floor: str) -> DriverResult:
        """Pulse the floor's button relay."""
        if floor not in self.floors:
            return DriverResult.IMPOSSIBLE
        refused = self._refusal()
        if refused is not None:
            return refused
        return await self._pulse(self.layout.floor_coils[self.floors.index(floor)])

    async def open_door(self, hold: bool = False) -> DriverResult:
        """Pulse door-open, or hold it on until ``close_door``."""
        refused = self._refusal()
        if refused is not None:
            return refused
        coil = self.layout.door_open_coil
        if hold:
            return await self._set_relay(coil, True)
        if self._relays.wanted[coil] and coil not in self._relays.drop_at:
            return DriverResult.SUCCESS  # already held open: a pulse would end the hold
        return await self._pulse(coil)

    async def close_door(self) -> DriverResult:
        """Let go of door-open and pulse door-close (when wired)."""
        result = await self._set_relay(self.layout.door_open_coil, False)
        if result is not DriverResult.SUCCESS or self.layout.door_close_coil is None:
            return result
        return await self._pulse(self.layout.door_close_coil)

    def status(self) -> LiftStatus | None:
        """The latest status, or None before the first report."""
        return self._fanout.latest

    def statuses(self) -> StatusStream:
        """Every status report from now on, in order."""
        return self._fanout.stream()

    async def wait_polls(self, count: int = 1) -> None:
        """Return once ``count`` more polls have finished, answered or not (none run while the port is
        closed). For tests and health checks."""
        target = self.stats.polls + count
        async with self._polled:
            await self._polled.wait_for(lambda: self.stats.polls >= target)

    # ---- polling ------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._link.is_open and not self._try_open():
                self._check_offline()
                await self._clock.sleep(self.config.reconnect_s)
                continue
            await self._poll_once()
            async with self._polled:
                self._polled.notify_all()
            await self._clock.sleep(self.config.poll_s)

    def _try_open(self) -> bool:
        if not self._link.try_open(self.config.reconnect_s):
            return False
        self._relays.resync = True  # whatever the board did meanwhile: write the relay bank
        return True

    async def _poll_once(self) -> None:
        """One poll: drop due pulses, keep the relays right, read the inputs, report."""
        self.stats.polls += 1
        try:
            await self._service_relays()
            inputs = await self._read_inputs()
            if self.stats.polls % self.config.readback_every == 0:
                await self._verify_relays()
        except ModbusLinkError as exc:
            self._relays.resync = True
            level = logging.WARNING if isinstance(exc, DeviceRefused) else logging.DEBUG  # wiring/config
            self._log.log(level, "modbus %s: poll failed: %s", self.config.port, exc)
            self._check_offline()
            return
        self._last_ok = self._clock.monotonic()
        if inputs.floor is not None:
            self._last_floor = self.floors[inputs.floor]
        self._report(status_from_inputs(inputs, self._last_floor, self._clock.now()))

    async def _read_inputs(self) -> BoardInputs:
        first, count = self.layout.input_span()
        return decode_inputs(self.layout, first, await self._link.read_discrete_inputs(first, count))

    async def _service_relays(self) -> None:
        now = self._clock.monotonic()
        due = [coil for coil, at in self._relays.drop_at.items() if now >= at]
        if self._relays.resync:
            for coil in due:
                self._drop_pulse(coil)
            await self._write_bank()
            return
        for coil in due:
            await self._write_coil(coil, False)
            self._drop_pulse(coil)

    async def _verify_relays(self) -> None:
        """Read the coils back; a board that lost them (reset, power dip) gets the whole bank again."""
        first, count = self.layout.coil_span()
        bits = await self._link.read_coils(first, count)
        actual = {coil: bits[coil - first] for coil in self._relays.wanted}
        if actual != self._relays.wanted:
            self.stats.relay_resyncs += 1
            port, wanted = self.config.port, self._relays.wanted
            self._log.warning("modbus %s: relays read %s, want %s: rewriting them", port, actual, wanted)
            await self._write_bank()

    async def _write_bank(self) -> None:
        first, count = self.layout.coil_span()
        bits = [self._relays.wanted.get(first + i, False) for i in range(count)]
        await self._link.write_coils(first, bits)
        self._relays.resync = False

    async def _write_coil(self, coil: int, on: bool) -> None:
        await self._link.write_coil(coil, on)

    def _drop_pulse(self, coil: int) -> None:
        self._relays.wanted[coil] = False
        self._relays.drop_at.pop(coil, None)

    # ---- verbs' helpers -----------------------------------------------------------------------------

    async def _set_relay(self, coil: int, on: bool) -> DriverResult:
        try:
            await self._write_coil(coil, on)
        except DeviceRefused as exc:
            self._log.error("modbus %s: coil %d refused: %s", self.config.port, coil, exc)
            return DriverResult.IMPOSSIBLE
        except ModbusLinkError as exc:
            self._relays.resync = True  # the board may or may not have switched: put it right later
            self._log.info("modbus %s: coil %d not written: %s", self.config.port, coil, exc)
            return DriverResult.RETRY
        self._relays.wanted[coil] = on
        self._relays.drop_at.pop(coil, None)
        return DriverResult.SUCCESS

    async def _pulse(self, coil: int) -> DriverResult:
        result = await self._set_relay(coil, True)
        if result is DriverResult.SUCCESS:
            self._relays.drop_at[coil] = self._clock.monotonic() + self.config.pulse_s
        return result

    def _refusal(self) -> DriverResult | None:
        """RETRY while the board is unreachable; IMPOSSIBLE in fire recall or out of service."""
        if not self._link.is_open:
            return DriverResult.RETRY
        latest = self._fanout.latest
        if latest is not None and latest.mode is LiftMode.FIRE:
            return DriverResult.IMPOSSIBLE
        if latest is not None and LiftFault.OUT_OF_SERVICE in latest.faults:
            return DriverResult.IMPOSSIBLE
        return None

    # ---- reporting ----------------------------------------------------------------------------------

    def _check_offline(self) -> None:
        """No good reply for ``offline_after_s``: report OFFLINE (floor and motion unknown)."""
        if self._clock.monotonic() - self._last_ok < self.config.offline_after_s:
            return
        latest = self._fanout.latest
        why = LiftFault.NO_REPLY if self._link.is_open else LiftFault.LINK_DOWN
        door = latest.door if latest is not None else DoorState.CLOSED
        self._report(LiftStatus(self._clock.now(), None, MotionState.UNKNOWN, door, LiftMode.OFFLINE, (why,)))

    def _report(self, status: LiftStatus) -> None:
        """Publish ``status`` when it differs from the last report, or ``report_s`` after it."""
        latest = self._fanout.latest
        now = self._clock.monotonic()
        unchanged = latest is not None and replace(latest, time=status.time) == status
        if unchanged and now - self._reported_at < self.config.report_s:
            return
        self._reported_at = now
        self._fanout.publish(status)
