"""Live mode: one asyncio task owns the operations core, feeds it events and carries its commands out.

``LiveOperations(ops, day, clock, ports)`` is the live counterpart of the simulator's event heap
(``sim.day.engine``). Everything that reports a fact (the leg executor, the cart API, parcel import,
the partner API, lift states) calls ``submit(event)``; one task takes the events from a queue in
order and calls ``ops.on_event(event, now)`` with ``now`` = the ``Clock``'s epoch time converted to
the core's service-day seconds (``ServiceDay.seconds``), so calls never overlap and the core needs
no lock. ``submit`` is for code on the runtime's event loop only (it is not thread-safe; from a
thread use ``loop.call_soon_threadsafe(live.submit, event)``).

After each event, in this order:

1. the ``DomainEvent`` s the event added to ``ops.history`` go to ``ports.history.append`` (their
   ``at`` converted to epoch seconds) **before** any command is carried out (DESIGN.md §5: a state
   change is stored before it is acted on);
2. the commands, in the core's order:

   - ``StartLeg`` → ``ports.legs.start(token, leg)``; ``CancelLeg`` → ``ports.legs.cancel(robot, token)``;
   - ``ReleaseCodes`` → ``ports.codes.release(robot, place, parcels, window, until_epoch)``;
   - ``SetTimer(at, key)`` → a task sleeping on the clock until ``day.epoch(at)`` that then submits
     ``TimerFired(key)``; a newer timer with the same key replaces (cancels) the older one. The
     ``TimerFired`` is handled with ``now`` at least ``at`` (a clock that wakes a hair early, or the
     float round trip through epoch seconds, must not make the core see its timer before it is due:
     it would wait for it again);
   - ``Alarm`` → ``ports.alarms.raise_alarm(kind, text)``.

``now`` never goes backwards from one event to the next.

**Failures never stop the loop.** A port call that raises is logged and becomes an alarm
(``port_failed``, through ``ports.alarms``; if that raises too, it is only logged); the next command
is carried out. The core raising (``OperationsError``: a report about an unknown leg, robot or
parcel) is logged and becomes an alarm ``core_error``; whatever commands were decided by then are
lost, but the parcel events the core recorded before it raised are still stored (the core may be
half-way through the event: an operator looks). When ``history.append`` raises, nothing of that
event is carried out yet: the events and commands are held, an alarm ``history_failed`` is raised,
and the append is tried again after ``history_retry_s`` and with the next event; once it succeeds the
held commands are carried out in order (while the store is down, robots are told nothing new).

**Start and stop.** ``start()`` (on the running loop) starts the task. ``stop(drain=True)`` first
cancels every pending timer and the history retry; then with ``drain`` it handles the events already
queued (their commands are carried out, but timers they set are not started any more), without it
drops them (logged with their count; an event already in progress is finished); then it ends the
task. Commands held for a failed history append are dropped (logged). Do not await ``stop`` from
inside a port call (it waits for the event that made the call). After ``stop``, ``submit`` raises
``RuntimeError``. ``idle()`` waits until the queue is empty and no event is in progress (tests; a
timer not yet due does not count).

The core's ``on_event`` runs on the event loop (a re-plan takes a second or two on a full day and
blocks the loop that long); ``offload=True`` runs it in a worker thread instead (the task still
waits for it, so calls stay serialised; do not read ``ops`` from other tasks meanwhile). Tests on a
``VirtualClock`` keep the default, so virtual time cannot move while the core thinks.

A live core serves one ``ServiceDay``; at the day change the app builds the next day's core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from interfaces.clock import Clock
from orchestrator.domain.events import DomainEvent
from orchestrator.operations.core import Operations
from orchestrator.operations.messages import (
    Alarm,
    CancelLeg,
    Command,
    Event,
    ReleaseCodes,
    SetTimer,
    StartLeg,
    TimerFired,
)
from orchestrator.operations.ports import Ports
from orchestrator.operations.timebase import ServiceDay

HISTORY_RETRY_S = 5.0
"""Seconds (clock time) before a failed history append is tried again."""


@dataclass(frozen=True, slots=True)
class _Item:
    """A queued event and the core time it must not be handled before (timers)."""

    event: Event
    not_before_s: float = -math.inf


class LiveOperations:
    """Drives ``ops`` in live time (see the module docstring)."""

    def __init__(
        self,
        ops: Operations,
        day: ServiceDay,
        clock: Clock,
        ports: Ports,
        *,
        logger: logging.Logger | None = None,
        history_retry_s: float = HISTORY_RETRY_S,
        offload: bool = False,
    ) -> None:
        if not history_retry_s > 0:
            raise ValueError(f"history_retry_s must be > 0, got {history_retry_s}")
        self.ops = ops
        self.day = day
        self.clock = clock
        self.ports = ports
        self.log = logger or logging.getLogger(__name__)
        self.history_retry_s = history_retry_s
        self.offload = offload
        self.handled = 0  # events handled (tests, status)
        self.port_failures = 0  # port calls that raised
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._retry: asyncio.Task[None] | None = None
        self._stored = len(ops.history)  # ops.history[:_stored] went to the history port
        self._held_events: list[DomainEvent] = []
        self._held_commands: list[Command] = []
        self._last_now_s = -math.inf
        self._due_s: dict[str, float] = {}  # timer key -> due time (core seconds)
        self._state = "new"  # new | running | stopping | stopped

    # ---- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the task that owns the core (call on the running event loop, once)."""
        if self._state != "new":
            raise RuntimeError(f"LiveOperations is {self._state}: start() is called once")
        self._state = "running"
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-operations")

    async def stop(self, *, drain: bool = True) -> None:
        """Cancel the timers; handle (``drain``) or drop the queued events; end the task."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        self._state = "stopping"
        for task in [*self._timers.values(), *([self._retry] if self._retry else [])]:
            task.cancel()
        self._timers.clear()
        self._retry = None
        if drain:
            await self._queue.join()
        else:
            dropped = 0
            while not self._queue.empty():
                self._queue.get_nowait()
                self._queue.task_done()
                dropped += 1
            if dropped:
                self.log.warning("operations stopped: %d queued event(s) dropped", dropped)
            await self._queue.join()  # the event in progress, if any, is finished
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._due_s.clear()
        if self._held_commands or self._held_events:
            self.log.error(
                "operations stopped with %d event(s) not stored and %d command(s) not carried out",
                len(self._held_events),
                len(self._held_commands),
            )
        self._state = "stopped"

    async def idle(self) -> None:
        """Wait until the queue is empty and no event is being handled."""
        await self._queue.join()

    def submit(self, event: Event) -> None:
        """Queue ``event`` for the core (loop-only, see the module docstring)."""
        self._put(_Item(event))

    @property
    def running(self) -> bool:
        """Whether the task takes events (started, not stopped)."""
        return self._state == "running"

    def timers(self) -> dict[str, float]:
        """Pending timers: key → due time in the core's seconds (for status pages and tests)."""
        return {key: due for key, due in self._due_s.items() if key in self._timers}

    def now_s(self) -> float:
        """The clock's time now in the core's seconds."""
        return self.day.seconds(self.clock.now())

    # ---- the loop ------------------------------------------------------------------------------

    def _put(self, item: _Item) -> None:
        if self._state not in ("running", "stopping"):
            raise RuntimeError(f"LiveOperations is {self._state}: cannot submit {item.event!r}")
        self._queue.put_nowait(item)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if item.event is _FLUSH:
                    await self._flush()
                else:
                    await self._handle(item)
            except Exception:  # the loop must survive a bug in one event's handling
                self.log.exception("operations: handling %r failed", item.event)
            finally:
                self._queue.task_done()

    async def _handle(self, item: _Item) -> None:
        now = max(self.now_s(), item.not_before_s, self._last_now_s)
        self._last_now_s = now
        self.handled += 1
        try:
            if self.offload:
                commands = await asyncio.to_thread(self.ops.on_event, item.event, now)
            else:
                commands = self.ops.on_event(item.event, now)
        except Exception as exc:
            self.log.exception("operations: the core refused %r at %.1f s", item.event, now)
            await self._raise("core_error", f"the core refused {type(item.event).__name__}: {exc}")
            commands = []  # lost; what the core changed before raising is still stored below
        fresh = self.ops.history[self._stored :]
        self._stored = len(self.ops.history)
        self._held_events.extend(replace(ev, at=self.day.epoch(ev.at)) for ev in fresh)
        self._held_commands.extend(commands)
        await self._flush()

    async def _flush(self) -> None:
        """Store the held history, then carry out the held commands (see the module docstring)."""
        if self._held_events:
            events = list(self._held_events)
            try:
                await self.ports.history.append(events)
            except Exception as exc:
                self.log.exception("operations: storing %d history event(s) failed", len(events))
                await self._raise(
                    "history_failed",
                    f"storing {len(events)} parcel event(s) failed ({type(exc).__name__}: {exc}); "
                    f"{len(self._held_commands)} command(s) wait until it succeeds",
                )
                self._retry_later()
                return
            del self._held_events[: len(events)]
        commands, self._held_commands = self._held_commands, []
        for command in commands:
            await self._carry_out(command)

    def _retry_later(self) -> None:
        if self._retry is not None or self._state != "running":
            return

        async def retry() -> None:
            await self.clock.sleep(self.history_retry_s)
            self._retry = None
            if self._state == "running":
                self._queue.put_nowait(_Item(_FLUSH))

        self._retry = asyncio.get_running_loop().create_task(retry(), name="live-operations-retry")

    async def _carry_out(self, command: Command) -> None:
        match command:
            case StartLeg():
                await self._call(
                    f"legs.start({command.token})", lambda: self.ports.legs.start(command.token, command.leg)
                )
            case CancelLeg():
                await self._call(
                    f"legs.cancel({command.robot}, {command.token})",
                    lambda: self.ports.legs.cancel(command.robot, command.token),
                )
            case ReleaseCodes():
                until = self.day.epoch(command.until_s)
                window = command.window
                await self._call(
                    f"codes.release({command.robot}, {command.place})",
                    lambda: self.ports.codes.release(
                        command.robot, command.place, command.parcels, window, until
                    ),
                )
            case SetTimer():
                self._set_timer(command)
            case Alarm():
                await self._raise(command.kind, command.text, from_core=True)
            case _:
                self.log.error("operations: unknown command %r", command)

    async def _call(self, what: str, call: Callable[[], Awaitable[None]]) -> None:
        try:
            await call()
        except Exception as exc:
            self.port_failures += 1
            self.log.exception("operations: %s failed", what)
            await self._raise("port_failed", f"{what} failed: {type(exc).__name__}: {exc}")

    async def _raise(self, kind: str, text: str, *, from_core: bool = False) -> None:
        if not from_core:
            self.log.error("operations alarm %s: %s", kind, text)
        try:
            await self.ports.alarms.raise_alarm(kind, text)
        except Exception:  # the alarm port itself: only the log is left
            self.port_failures += 1
            self.log.exception("operations: alarms.raise_alarm(%s) failed; the alarm was: %s", kind, text)

    # ---- timers --------------------------------------------------------------------------------

    def _set_timer(self, command: SetTimer) -> None:
        old = self._timers.pop(command.key, None)
        if old is not None:
            old.cancel()
        if self._state != "running":
            self.log.info("operations stopping: timer %s at %.1f s not set", command.key, command.at)
            return
        self._due_s[command.key] = command.at
        task = asyncio.get_running_loop().create_task(
            self._timer(command), name=f"live-operations-timer-{command.key}"
        )
        self._timers[command.key] = task

    async def _timer(self, command: SetTimer) -> None:
        await self.clock.sleep(self.day.epoch(command.at) - self.clock.now())
        if self._timers.get(command.key) is not asyncio.current_task():
            return  # replaced meanwhile
        del self._timers[command.key]
        self._due_s.pop(command.key, None)
        if self._state == "running":
            self._queue.put_nowait(_Item(TimerFired(command.key), command.at))


_FLUSH = TimerFired("\x00flush-history")
"""An internal queue item: try the held history append again (never reaches the core)."""
