"""A pair of linked pseudo-terminals made by ``socat``: a virtual serial cable for simulated boards.

A simulated Modbus board (``sim.lift_modbus``, ``sim.locker_board``) serves one end; the driver under
test opens the other as if it were ``/dev/ttyUSB0``. Closing the pair makes both ends vanish, which
the driver sees as a hang-up (a pulled cable). Needs the Debian package ``socat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import SimDevice


class PtyPairError(RuntimeError):
    """socat could not make the pty pair."""


class PtyPair:
    """Two linked pseudo-terminals made by socat, reachable through two symlinks (raw, no echo)."""

    def __init__(self, a: Path, b: Path, *, logger: logging.Logger | None = None) -> None:
        self.a, self.b = a, b
        self._log = logger or logging.getLogger("robopost.sim.pty")
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        """Whether socat runs (both ends exist)."""
        return self._proc is not None

    async def open(self, timeout: float = 5.0) -> None:
        """Start socat and return once both ends exist; ``PtyPairError`` when it fails."""
        socat = shutil.which("socat")
        if socat is None:
            raise PtyPairError("socat is not installed (Debian package socat)")
        for link in (self.a, self.b):
            with contextlib.suppress(FileNotFoundError):
                link.unlink()  # a link left behind by a killed socat
        args = [f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"]
        proc = await asyncio.create_subprocess_exec(socat, "-d", "-d", *args, stderr=asyncio.subprocess.PIPE)
        self._proc = proc
        try:
            await asyncio.wait_for(self._until_ready(proc), timeout)
        except (TimeoutError, PtyPairError):
            await self.close()
            raise PtyPairError(f"socat did not link {self.a} and {self.b} within {timeout} s") from None
        self._drain = asyncio.create_task(self._drain_log(proc), name=f"socat log {self.a.name}")

    async def close(self) -> None:
        """Stop socat: both ends vanish (whoever holds them open sees a hang-up)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        if self._drain is not None:
            await self._drain
            self._drain = None

    async def _until_ready(self, proc: asyncio.subprocess.Process) -> None:
        if proc.stderr is None:
            raise PtyPairError("socat has no stderr pipe")
        while line := await proc.stderr.readline():
            self._log.debug("socat: %s", line.decode(errors="replace").rstrip())
            if b"starting data transfer loop" in line:
                return
        raise PtyPairError("socat exited")

    async def _drain_log(self, proc: asyncio.subprocess.Process) -> None:
        """Keep reading socat's log so its pipe never fills."""
        if proc.stderr is None:
            return
        while line := await proc.stderr.readline():
            self._log.debug("socat: %s", line.decode(errors="replace").rstrip())


class RtuBoardOnPty:
    """A simulated Modbus RTU board: a pymodbus slave on the ``board_end`` of a pty pair whose other end,
    ``port``, the driver opens. Subclasses give the device (``_device``), may filter what goes on the
    line (``_trace``) and add what their board does.

    Power and cable: ``start``/``stop``; ``unplug``/``replug`` pull and put back the cable (both pty ends
    vanish, then a new pair and a new server: pymodbus does not reopen a port); ``inject`` writes raw
    bytes towards the driver (noise, frames with a bad CRC); ``_restart_server`` is a reboot's core.
    """

    def __init__(
        self,
        board_end: Path,
        port: Path,
        *,
        device_id: int,
        baudrate: int,
        logger: logging.Logger,
    ) -> None:
        self.device_id = device_id
        self.baudrate = baudrate
        self.board_end = board_end
        self.port = str(port)
        self._pty = PtyPair(board_end, port, logger=logger)
        self._server: ModbusSerialServer | None = None

    async def start(self) -> None:
        """Plug the cable in and power the board up."""
        await self._pty.open()
        await self._start_server()

    async def stop(self) -> None:
        """Power the board off and pull the cable."""
        await self._stop_server()
        await self._pty.close()

    async def unplug(self) -> None:
        """Pull the cable: the driver's port hangs up; the board keeps its state."""
        await self.stop()

    async def replug(self) -> None:
        """Put the cable back: a new pty pair at the same paths and a new server on it."""
        await self.start()

    def inject(self, data: bytes) -> None:
        """Write raw bytes onto the line towards the driver (noise, frames with a bad CRC)."""
        fd = os.open(self.board_end, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _device(self) -> SimDevice:
        raise NotImplementedError

    def _trace(self, sending: bool, data: bytes) -> bytes:
        """Every packet passes here (``sending``: towards the driver); return what goes on the line."""
        return data

    async def _start_server(self) -> None:
        self._server = ModbusSerialServer(
            self._device(),
            framer=FramerType.RTU,
            port=str(self.board_end),
            baudrate=self.baudrate,
            trace_packet=self._trace,
        )
        await self._server.serve_forever(background=True)

    async def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()
