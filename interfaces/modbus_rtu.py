"""A Modbus RTU master on one serial port (pyserial + pymodbus PDUs), for every RS-485 board we drive.

Used by the elevator bridge's relay-board driver and the cart's locker-board driver (peer processes,
hence here: ``interfaces`` is the one package both may import). It knows the protocol, not the boards.

Why our own framing. The port is read by the event loop (``add_reader``), so this link owns framing:
bytes that arrive when no reply is due are discarded and counted (``LinkStats.garbage_bytes``), a
complete frame with a wrong CRC is counted (``crc_errors``) and skipped, and a reply is the first frame
from our slave with the expected function code and a good CRC, wherever it starts in the buffer. A
request without a valid reply within ``timeout_s`` counts in ``timeouts``. A port that vanishes (USB
adapter unplugged, pty closed) is closed and counted (``port_losses``); reopening it is the owner's
decision (``open()`` again).

Function codes understood in replies: 1, 2 (read coils / discrete inputs), 3, 4 (read holding / input
registers) — replies with a byte count — and 5, 6, 15, 16 (write one / many coils / registers) —
8-byte echoes. Exception replies (function | 0x80) are 5 bytes.

Time: reply timeouts run on the link's ``Clock``; with a real port pass a ``RealClock``.

Errors::

    ModbusLinkError
    ├── LinkDown        the port is missing, closed or vanished
    ├── NoReply         no valid reply within timeout_s
    └── DeviceRefused   the slave answered with a Modbus exception code

This module imports nothing of ours but ``interfaces.clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import serial
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadDiscreteInputsRequest,
    WriteMultipleCoilsRequest,
    WriteSingleCoilRequest,
)
from pymodbus.pdu.register_message import ReadInputRegistersRequest

from interfaces.clock import Clock, within

_COUNTED_REPLIES = (1, 2, 3, 4)  # function codes whose reply carries a byte count
_FIXED_REPLIES = (5, 6, 15, 16)  # function codes whose reply is an 8-byte echo
_ECHO_LEN = 8
_EXCEPTION_LEN = 5
MAX_READ_BITS = 2000
"""Most coils or discrete inputs one request may read (Modbus application protocol §6.1, §6.2)."""
MAX_READ_REGISTERS = 125
"""Most registers one request may read (Modbus application protocol §6.3, §6.4)."""
MAX_WRITE_COILS = 1968
"""Most coils one FC15 request may write (Modbus application protocol §6.11)."""


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
        self.function_code = function_code
        self.exception_code = exception_code


@dataclass(slots=True)
class LinkStats:
    """What the link has seen since it was made (``round_trip_*`` in seconds).

    Owners that count more (polls, board resets) subclass it and hand the subclass to ``RtuLink``.
    """

    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    garbage_bytes: int = 0
    exceptions: int = 0
    bad_replies: int = 0  # a sound frame that is no valid reply PDU
    opens: int = 0  # times the port was opened
    port_losses: int = 0
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


def reply_length(function_code: int, count: int = 0) -> int:
    """Length of the normal reply frame to a request: ``count`` bits (FC 1, 2) or registers (FC 3, 4)
    read; writes (FC 5, 6, 15, 16) are echoed in 8 bytes. ``ValueError`` for other function codes."""
    if function_code in (1, 2):
        return 5 + (count + 7) // 8
    if function_code in (3, 4):
        return 5 + 2 * count
    if function_code in _FIXED_REPLIES:
        return _ECHO_LEN
    raise ValueError(f"reply_length: function code {function_code} is not supported")


def _frame_length(buf: bytes, i: int) -> int | None:
    """Length of the reply frame that would start at ``buf[i]``; None when it cannot be a reply."""
    if i + 1 >= len(buf):
        return None
    code = buf[i + 1]
    if code & 0x80 and (code & 0x7F) in (*_COUNTED_REPLIES, *_FIXED_REPLIES):
        return _EXCEPTION_LEN
    if code in _FIXED_REPLIES:
        return _ECHO_LEN
    if code in _COUNTED_REPLIES and i + 2 < len(buf):
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
        exception = bool(buf[i + 1] & 0x80)
        length = _EXCEPTION_LEN if exception else reply_len
        if function_code in _COUNTED_REPLIES and not exception and buf[i + 2] != reply_len - 5:
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
    """A Modbus RTU master on one serial port: one transaction at a time, faults counted in ``stats``.

    ``transact`` sends any request PDU; the ``read_*`` / ``write_*`` helpers build the common ones and
    know their reply lengths.
    """

    def __init__(
        self,
        port: str,
        *,
        device_id: int,
        baudrate: int,
        parity: str,
        timeout_s: float,
        clock: Clock,
        stats: LinkStats,
        logger: logging.Logger,
    ) -> None:
        self.port = port
        self.device_id = device_id
        self.stats = stats
        self._baudrate, self._parity, self._timeout_s = baudrate, parity, timeout_s
        self._clock = clock
        self._log = logger
        self._serial: serial.Serial | None = None
        self._open_failures = 0
        self._rx = bytearray()
        self._rx_event = asyncio.Event()
        self._lock = asyncio.Lock()
        self._framer = FramerRTU(DecodePDU(is_server=False))
        self._decoder = DecodePDU(is_server=False)

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._serial is not None

    def try_open(self, retry_s: float) -> bool:
        """Open the port if it can be; whether it is open now. The first failure of a streak is logged
        as a warning (saying it is retried every ``retry_s``), the next ones at debug level."""
        try:
            self.open()
        except LinkDown as exc:
            self._open_failures += 1
            level = logging.WARNING if self._open_failures == 1 else logging.DEBUG
            self._log.log(level, "%s (retrying every %s s)", exc, retry_s)
            return False
        self._open_failures = 0
        self._log.info("modbus %s: port open", self.port)
        return True

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

    # ---- common requests ----------------------------------------------------------------------------

    async def read_coils(self, address: int, count: int) -> list[bool]:
        """FC01: ``count`` coils from ``address``."""
        _check_count("read_coils", count, MAX_READ_BITS)
        reply = await self.transact(ReadCoilsRequest(address=address, count=count), reply_length(1, count))
        return [bool(b) for b in reply.bits[:count]]

    async def read_discrete_inputs(self, address: int, count: int) -> list[bool]:
        """FC02: ``count`` discrete inputs from ``address``."""
        _check_count("read_discrete_inputs", count, MAX_READ_BITS)
        request = ReadDiscreteInputsRequest(address=address, count=count)
        reply = await self.transact(request, reply_length(2, count))
        return [bool(b) for b in reply.bits[:count]]

    async def read_input_registers(self, address: int, count: int) -> list[int]:
        """FC04: ``count`` input registers from ``address``."""
        _check_count("read_input_registers", count, MAX_READ_REGISTERS)
        request = ReadInputRegistersRequest(address=address, count=count)
        reply = await self.transact(request, reply_length(4, count))
        if len(reply.registers) != count:
            self.stats.bad_replies += 1
            raise NoReply(f"{self.port}: {len(reply.registers)} registers in reply, asked for {count}")
        return list(reply.registers)

    async def write_coil(self, address: int, on: bool) -> None:
        """FC05: switch one coil."""
        await self.transact(WriteSingleCoilRequest(address=address, bits=[on]), _ECHO_LEN)

    async def write_coils(self, address: int, bits: Sequence[bool]) -> None:
        """FC15: switch ``len(bits)`` coils from ``address``."""
        _check_count("write_coils", len(bits), MAX_WRITE_COILS)
        await self.transact(WriteMultipleCoilsRequest(address=address, bits=list(bits)), _ECHO_LEN)

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


def _check_count(what: str, count: int, most: int) -> None:
    if not 1 <= count <= most:
        raise ValueError(f"RtuLink.{what}: count must be 1..{most}, got {count}")
