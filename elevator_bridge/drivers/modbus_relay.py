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

Robustness. The serial port is read by the event loop (``add_reader``), so the driver owns framing:
bytes that arrive when no reply is due are discarded and counted (``stats.garbage_bytes``), a complete
frame with a wrong CRC is counted (``stats.crc_errors``) and skipped, and a reply is the first frame
from our slave with the expected function code and a good CRC, wherever it starts in the buffer. A
request without a valid reply within ``timeout_s`` counts in ``stats.timeouts``. When the port
vanishes (USB adapter unplugged, pty closed) it is reopened every ``reconnect_s``. After any failed
transaction, on every (re)connection and when the periodic coil read-back (every ``readback_every``
polls) disagrees — a board that reset itself — the whole relay bank is written to the state we want,
so a held door-open comes back and no floor button stays pressed. Without a good reply for
``offline_after_s`` the status becomes ``mode=OFFLINE`` with ``NO_REPLY`` (or ``LINK_DOWN`` when the port
is gone); verbs then answer RETRY.

Time: polling, pulses, timeouts and the offline timer all run on the driver's ``Clock``; with a real
port pass a ``RealClock`` (the default).

Errors (internal; verbs turn them into ``DriverResult``)::

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
import os
from dataclasses import dataclass, field, replace
from typing import Literal

import serial
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadDiscreteInputsRequest,
    WriteMultipleCoilsRequest,
    WriteSingleCoilRequest,
)

from elevator_bridge.drivers.base import (
    DriverResult,
    LiftFault,
    LiftStatus,
    StatusFanout,
    StatusStream,
    within,
)
from interfaces.clock import Clock, RealClock
from interfaces.lift import DoorState, LiftMode, MotionState

FloorCode = Literal["one_hot", "binary"]
_BIT_READS = (1, 2)  # function codes whose reply carries a byte count
_FIXED_REPLIES = (5, 15)  # function codes whose reply is 8 bytes


class ModbusLinkError(Exception):
    """Base of the RTU link's errors."""


class LinkDown(ModbusLinkError):
    """The serial port is missing, closed or vanished."""


class NoReply(ModbusLinkError):
    """The slave sent no valid reply in time."""


class DeviceRefused(ModbusLinkError):
    """The slave answered with a Modbus exception."""

    def __init__(self, function_code: int, exception_code: int) -> None:
        super().__init__(f"function {function_code} refused with exception code {exception_code}")
        self.exception_code = exception_code


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
class ModbusStats:
    """What the link has seen since the driver started (``round_trip_*`` in seconds)."""

    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    garbage_bytes: int = 0
    exceptions: int = 0
    bad_replies: int = 0  # a sound frame that is no valid reply PDU
    opens: int = 0
    port_losses: int = 0
    relay_resyncs: int = 0
    polls: int = 0
    round_trip_total_s: float = 0.0
    round_trip_max_s: float = 0.0

    @property
    def round_trip_mean_s(self) -> float:
        """Mean request → reply time over the answered requests (0 before any)."""
        return self.round_trip_total_s / self.replies if self.replies else 0.0


# ---- RTU framing (pure) ----------------------------------------------------------------------------


def crc_ok(frame: bytes) -> bool:
    """Whether the last two bytes of ``frame`` are the Modbus CRC-16 of the rest."""
    return len(frame) >= 4 and FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big"))


def _frame_length(buf: bytes, i: int) -> int | None:
    """Length of the reply frame that would start at ``buf[i]``; None when it cannot be a reply."""
    if i + 1 >= len(buf):
        return None
    code = buf[i + 1]
    if code & 0x80 and (code & 0x7F) in (*_BIT_READS, *_FIXED_REPLIES):
        return 5
    if code in _FIXED_REPLIES:
        return 8
    if code in _BIT_READS and i + 2 < len(buf):
        return 5 + buf[i + 2]
    return None


@dataclass(frozen=True, slots=True)
class FrameScan:
    """Where the awaited reply starts in a buffer (None: not there yet) and how many bad frames precede."""

    start: int | None
    length: int = 0
    crc_errors: int = 0


def scan_reply(buf: bytes, device_id: int, function_code: int, reply_len: int) -> FrameScan:
    """Find the first complete reply from ``device_id`` to ``function_code`` with a good CRC.

    A normal reply must be ``reply_len`` bytes long, an exception reply 5; complete candidates with a
    wrong CRC are skipped and counted. Bytes before the reply are garbage.
    """
    crc_errors = 0
    for i in range(len(buf) - 3):
        if buf[i] != device_id or buf[i + 1] & 0x7F != function_code:
            continue
        length = 5 if buf[i + 1] & 0x80 else reply_len
        if function_code in _BIT_READS and not buf[i + 1] & 0x80 and buf[i + 2] != reply_len - 5:
            continue
        if i + length > len(buf):
            continue
        if crc_ok(buf[i : i + length]):
            return FrameScan(i, length, crc_errors)
        crc_errors += 1
    return FrameScan(None, 0, crc_errors)


def count_bad_frames(buf: bytes, device_id: int) -> int:
    """How many complete reply-shaped frames from ``device_id`` in ``buf`` have a wrong CRC."""
    bad, i = 0, 0
    while i < len(buf) - 3:
        length = _frame_length(buf, i) if buf[i] == device_id else None
        if length is None or i + length > len(buf):
            i += 1
        elif crc_ok(buf[i : i + length]):
            i += length  # a stale but sound reply: garbage, not an error
        else:
            bad += 1
            i += 1
    return bad


# ---- the link --------------------------------------------------------------------------------------


class RtuLink:
    """A Modbus RTU master on one serial port: one transaction at a time, faults counted in ``stats``."""

    def __init__(
        self,
        port: str,
        *,
        device_id: int,
        baudrate: int,
        parity: str,
        timeout_s: float,
        clock: Clock,
        stats: ModbusStats,
        logger: logging.Logger,
    ) -> None:
        self.port = port
        self.device_id = device_id
        self.stats = stats
        self._baudrate, self._parity, self._timeout_s = baudrate, parity, timeout_s
        self._clock = clock
        self._log = logger
        self._serial: serial.Serial | None = None
        self._rx = bytearray()
        self._rx_event = asyncio.Event()
        self._lock = asyncio.Lock()
        self._framer = FramerRTU(DecodePDU(is_server=False))
        self._decoder = DecodePDU(is_server=False)

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._serial is not None

    def open(self) -> None:
        """Open and configure the port (8 data bits, 1 stop bit); ``LinkDown`` when it cannot be."""
        try:
            port = serial.Serial(
                self.port,
                baudrate=self._baudrate,
                parity=self._parity,
                timeout=0,
                write_timeout=self._timeout_s,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkDown(f"{self.port}: cannot open: {exc}") from None
        self._serial = port
        self._rx.clear()
        asyncio.get_running_loop().add_reader(port.fileno(), self._on_readable)
        self.stats.opens += 1

    def close(self) -> None:
        """Close the port (nothing happens when it is closed)."""
        port, self._serial = self._serial, None
        if port is None:
            return
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(port.fileno())
        with contextlib.suppress(serial.SerialException, OSError):
            port.close()
        self._rx_event.set()  # wake a transaction waiting for bytes that will not come

    async def transact(self, request: ModbusPDU, reply_len: int) -> ModbusPDU:
        """Send ``request`` and return the slave's reply PDU (``reply_len``: the normal reply's length)."""
        async with self._lock:
            port = self._serial
            if port is None:
                raise LinkDown(f"{self.port}: not open")
            self._discard_stray()
            request.dev_id = self.device_id
            started = self._clock.monotonic()
            try:
                port.write(self._framer.buildFrame(request))
            except (serial.SerialException, OSError) as exc:
                self._lost(f"write failed: {exc}")
                raise LinkDown(f"{self.port}: write failed: {exc}") from None
            self.stats.requests += 1
            frame = await self._await_reply(request.function_code, reply_len, started + self._timeout_s)
            self._count_round_trip(self._clock.monotonic() - started)
            return self._decode(frame, request.function_code)

    # ---- internals ----------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        """The event loop says the port has bytes (or hung up): take them, never block."""
        port = self._serial
        if port is None:
            return
        try:
            data = os.read(port.fileno(), 4096)  # non-blocking: pyserial opened the port O_NONBLOCK
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(f"read failed: {exc}")
            return
        if not data:
            self._lost("port hung up")
            return
        self._rx += data
        self._rx_event.set()

    def _lost(self, why: str) -> None:
        if self._serial is None:
            return
        self.stats.port_losses += 1
        self._log.warning("modbus %s: port lost (%s)", self.port, why)
        self.close()

    def _discard_stray(self) -> None:
        """Bytes nobody asked for: count them (and the bad frames among them) and drop them."""
        if not self._rx:
            return
        stray = bytes(self._rx)
        self._rx.clear()
        self.stats.garbage_bytes += len(stray)
        self.stats.crc_errors += count_bad_frames(stray, self.device_id)
        self._log.debug("modbus %s: discarded %d stray bytes", self.port, len(stray))

    async def _await_reply(self, function_code: int, reply_len: int, deadline: float) -> bytes:
        """Collect bytes until a valid reply frame is there; ``NoReply`` at the deadline."""
        while True:
            self._rx_event.clear()
            found = scan_reply(bytes(self._rx), self.device_id, function_code, reply_len)
            if found.start is not None:
                end = found.start + found.length
                frame = bytes(self._rx[found.start : end])
                self.stats.garbage_bytes += found.start
                self.stats.crc_errors += found.crc_errors
                del self._rx[:end]
                return frame
            if self._serial is None:
                raise LinkDown(f"{self.port}: port lost while waiting for a reply")
            left = deadline - self._clock.monotonic()
            if left <= 0 or not await within(self._clock, left, self._rx_event.wait()):
                self.stats.timeouts += 1
                raise NoReply(f"{self.port}: no reply to function {function_code} in {self._timeout_s} s")

    def _decode(self, frame: bytes, function_code: int) -> ModbusPDU:
        pdu = self._decoder.decode(frame[1:-2])
        if pdu is None:
            self.stats.bad_replies += 1
            raise NoReply(f"{self.port}: undecodable reply {frame.hex()}")
        if isinstance(pdu, ExceptionResponse):
            self.stats.exceptions += 1
            raise DeviceRefused(function_code, pdu.exception_code)
        return pdu

    def _count_round_trip(self, seconds: float) -> None:
        self.stats.replies += 1
        self.stats.round_trip_total_s += seconds
        self.stats.round_trip_max_s = max(self.stats.round_trip_max_s, seconds)


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
        self._open_failures = 0
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
        try:
            self._link.open()
        except LinkDown as exc:
            self._open_failures += 1
            level = logging.WARNING if self._open_failures == 1 else logging.DEBUG
            self._log.log(level, "modbus: %s (retrying every %s s)", exc, self.config.reconnect_s)
            return False
        self._open_failures = 0
        self._relays.resync = True
        self._log.info("modbus %s: port open", self.config.port)
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
        request = ReadDiscreteInputsRequest(address=first, count=count)
        reply = await self._link.transact(request, 5 + (count + 7) // 8)
        return decode_inputs(self.layout, first, list(reply.bits[:count]))

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
        reply = await self._link.transact(ReadCoilsRequest(address=first, count=count), 5 + (count + 7) // 8)
        actual = {coil: bool(reply.bits[coil - first]) for coil in self._relays.wanted}
        if actual != self._relays.wanted:
            self.stats.relay_resyncs += 1
            port, wanted = self.config.port, self._relays.wanted
            self._log.warning("modbus %s: relays read %s, want %s: rewriting them", port, actual, wanted)
            await self._write_bank()

    async def _write_bank(self) -> None:
        first, count = self.layout.coil_span()
        bits = [self._relays.wanted.get(first + i, False) for i in range(count)]
        await self._link.transact(WriteMultipleCoilsRequest(address=first, bits=bits), 8)
        self._relays.resync = False

    async def _write_coil(self, coil: int, on: bool) -> None:
        await self._link.transact(WriteSingleCoilRequest(address=coil, bits=[on]), 8)

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
