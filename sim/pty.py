"""A pair of linked pseudo-terminals made by ``socat``: a virtual serial cable for simulated boards.

A simulated Modbus board (``sim.lift_modbus``, ``sim.locker_board``) serves one end; the driver under
test opens the other as if it were ``/dev/ttyUSB0``. Closing the pair makes both ends vanish, which
the driver sees as a hang-up (a pulled cable). Needs the Debian package ``socat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path


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
