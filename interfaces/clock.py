"""Time for every part of robopost: one ``Clock`` protocol, a real clock and a virtual one.

No module reads wall time directly (DESIGN.md §5): code takes a ``Clock`` in its constructor, so the
same code runs in real time (``RealClock``), in virtual time (``VirtualClock``, used by tests and by
the simulator's fast mode) and in scaled time (``ScaledClock``: ``factor`` times real speed, the live
demo's simulated hardware).

``VirtualClock`` never waits. Its time moves only when told to:

- ``advance(dt)`` jumps ``dt`` seconds at once; the sleepers that fall due are woken in the order of
  their due time (ties in the order they went to sleep). When they run, ``now()`` already reads the
  end of the jump.
- ``await run_until(t)`` / ``await run_for(dt)`` step from one due time to the next and let the event
  loop run the woken tasks in between, so each sleeper sees ``now()`` equal to its own due time and
  sleeps started along the way are served in the same call (SimPy-style stepping).

This module imports nothing of ours.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

_SETTLE_LIMIT = 10_000
"""Most loop turns ``VirtualClock.settle`` waits for woken tasks to block again."""


@runtime_checkable
class Clock(Protocol):
    """A source of time. ``now`` is wall time, ``monotonic`` measures durations, ``sleep`` waits."""

    def now(self) -> float:
        """Seconds since the Unix epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes backwards. Use it for durations and timeouts."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` of this clock's time."""
        ...


class RealClock:
    """The machine's clocks and asyncio's sleep."""

    def now(self) -> float:
        """Seconds since the Unix epoch, from the system clock."""
        return time.time()

    def monotonic(self) -> float:
        """The system's monotonic clock in seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep in real time (``asyncio.sleep``)."""
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Virtual time running ``factor`` times as fast as real time, from a start instant (live mode).

    The live demo runs simulated robots at, say, ten times real speed: a 30-second state period is
    3 real seconds, a 100 m drive at 1.5 m/s takes 6.7 real seconds. Unlike ``VirtualClock`` this
    clock does wait, for ``seconds / factor`` real seconds, so it suits processes that talk to others
    in real time.

    ``epoch`` is what ``now()`` reads at the start instant (default: the real time then). The start
    instant is when the clock is made, unless ``origin`` names it as a real epoch time: then every
    process given the same ``factor``, ``epoch`` and ``origin`` reads the same virtual time (up to
    the skew of the machine's clocks), however late it was started. ``monotonic()`` starts at 0
    when the clock is made and runs ``factor`` times as fast as the machine's monotonic clock, which
    also measures ``now()``'s progress (a wall-clock step does not move virtual time).

    ``sleep(s)`` returns only once ``monotonic()`` has moved at least ``s`` on (asyncio may wake a
    timer a hair early; the remainder is slept again).
    """

    def __init__(self, factor: float, *, epoch: float | None = None, origin: float | None = None) -> None:
        for name, value in (("factor", factor), ("epoch", epoch), ("origin", origin)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"ScaledClock: {name} must be a finite number, got {value}")
        if not factor > 0:
            raise ValueError(f"ScaledClock: factor must be > 0, got {factor}")
        self.factor = float(factor)
        self._mono0 = time.monotonic()
        real_now = time.time()
        start = real_now if epoch is None else float(epoch)
        since_origin = 0.0 if origin is None else real_now - float(origin)
        self.epoch = start
        """Virtual epoch seconds at the start instant."""
        self._now0 = start + since_origin * self.factor

    def now(self) -> float:
        """Virtual epoch seconds: ``epoch`` plus ``factor`` times the real time since the start instant."""
        return self._now0 + self.monotonic()

    def monotonic(self) -> float:
        """Virtual seconds since the clock was made (``factor`` times the real seconds)."""
        return (time.monotonic() - self._mono0) * self.factor

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time (``seconds / factor`` real); ``seconds <= 0`` yields once."""
        if not math.isfinite(seconds):
            raise ValueError(f"ScaledClock: seconds must be a finite number, got {seconds}")
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        due = self.monotonic() + seconds
        while (left := due - self.monotonic()) > 0:
            await asyncio.sleep(left / self.factor)

    def real_seconds(self, seconds: float) -> float:
        """How many real seconds ``seconds`` of this clock's time take."""
        return seconds / self.factor


@dataclass(order=True)
class _Sleeper:
    """One pending ``VirtualClock.sleep``: ordered by due time, then by arrival."""

    due: float
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class VirtualClock:
    """A clock whose time moves only by ``advance``/``run_until``; sleepers are futures it resolves.

    ``start`` is the epoch time ``now()`` reads at first; ``monotonic()`` starts at 0.
    """

    def __init__(self, start: float = 0.0) -> None:
        _check_finite("start", start)
        self._start = float(start)
        self._elapsed = 0.0
        self._sleepers: list[_Sleeper] = []
        self._seq = 0

    def now(self) -> float:
        """Virtual epoch seconds: ``start`` plus the time advanced so far."""
        return self._start + self._elapsed

    def monotonic(self) -> float:
        """Virtual seconds advanced since the clock was made."""
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been moved ``seconds`` on; ``seconds <= 0`` only yields once."""
        _check_finite("seconds", seconds)
        if seconds <= 0:
            await asyncio.sleep(0)  # give others a turn, as asyncio.sleep(0) does; no time passes
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, _Sleeper(self._elapsed + seconds, self._seq, future))
        self._seq += 1
        await future

    @property
    def pending(self) -> int:
        """How many sleepers are still waiting (cancelled ones are not counted)."""
        return sum(1 for s in self._sleepers if not s.future.done())

    def next_wakeup(self) -> float | None:
        """The epoch time of the earliest pending sleeper, or ``None`` when nobody sleeps."""
        self._drop_cancelled()
        return self._start + self._sleepers[0].due if self._sleepers else None

    def advance(self, seconds: float) -> int:
        """Move time ``seconds`` on at once, waking due sleepers in time order; return how many woke."""
        _check_finite("seconds", seconds)
        if seconds < 0:
            raise ValueError(f"VirtualClock.advance: seconds must be >= 0, got {seconds}")
        target = self._elapsed + seconds
        woken = 0
        while self._wake_next(target):
            woken += 1
        self._elapsed = target
        return woken

    async def run_until(self, when: float) -> int:
        """Step to epoch time ``when``, running woken tasks at each due time; return how many woke.

        Tasks woken at a due time run (until they block again) before the clock moves further, so a
        sleep they start that falls due by ``when`` is woken in this same call.
        """
        _check_finite("when", when)
        target = when - self._start
        if target < self._elapsed:
            raise ValueError(f"VirtualClock.run_until: {when} is in the past (now {self.now()})")
        woken = 0
        await self.settle()
        while self._wake_next(target, when):
            woken += 1
            await self.settle()
        self._elapsed = max(self._elapsed, target)
        await self.settle()
        return woken

    async def run_for(self, seconds: float) -> int:
        """``run_until(now() + seconds)``."""
        _check_finite("seconds", seconds)
        if seconds < 0:
            raise ValueError(f"VirtualClock.run_for: seconds must be >= 0, got {seconds}")
        return await self.run_until(self.now() + seconds)

    async def settle(self) -> None:
        """Yield to the event loop until every runnable task has run and blocked again.

        On CPython's own event loop this watches the loop's ready queue; on another loop it yields a
        fixed number of turns.
        """
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # CPython's BaseEventLoop keeps runnable callbacks here
        for _ in range(_SETTLE_LIMIT if ready is not None else 100):
            await asyncio.sleep(0)
            if ready is not None and not ready:
                return

    def _wake_next(self, target: float, when: float | None = None) -> bool:
        """Wake the earliest sleeper due by ``target`` (moving time to its due time); False if none.

        ``when`` is the same bound as epoch time: a sleeper whose epoch due time (``next_wakeup()``)
        is ``<= when`` is due even where ``when - start`` rounds to just below its elapsed due time.
        """
        self._drop_cancelled()
        if not self._sleepers:
            return False
        due = self._sleepers[0].due
        if due > target and (when is None or self._start + due > when):
            return False
        sleeper = heapq.heappop(self._sleepers)
        self._elapsed = max(self._elapsed, sleeper.due)
        sleeper.future.set_result(None)
        return True

    def _drop_cancelled(self) -> None:
        """Forget sleepers whose task was cancelled."""
        while self._sleepers and self._sleepers[0].future.done():
            heapq.heappop(self._sleepers)


def _check_finite(name: str, value: float) -> None:
    """Refuse NaN and infinities, which would stall or corrupt the time line."""
    if not math.isfinite(value):
        raise ValueError(f"VirtualClock: {name} must be a finite number, got {value}")


async def within(clock: Clock, timeout: float, awaitable: Awaitable[Any]) -> bool:
    """Await ``awaitable`` for at most ``timeout`` seconds of ``clock``; True when it finished in time.

    On time-out it is cancelled; when it raised, the exception propagates. Drivers time their I/O with
    this, so one clock rules all their waits.
    """
    work = asyncio.ensure_future(awaitable)
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({work, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        if not work.done():
            work.cancel()
    if not work.done() or work.cancelled():
        return False
    work.result()  # re-raise what it raised
    return True
