"""Pickup tracking per compartment: pure logic over the locker board's inputs and the clock.

A right code starts a watch on its compartment::

    OPENING ──door opens──▶ OPEN ──door closes──▶ empty?  yes ─▶ PickedUp (the parcel was taken)
       │                     │                            no  ─▶ NotTaken (the compartment stays reserved:
       │                     │                                   the same code opens it again)
       │                     └─ open longer than door_alarm_s ─▶ DoorLeftOpen (screen + operator alarm),
       │                                                         again every remind_s; DoorClosed clears it
       └─ still shut after open_timeout_s ─▶ Jammed (the lock did not release: nothing else can open that
                                             parcel, so report it and tell the student whom to ask)

A door cycle too quick for the poll (occupied, then shut and empty) counts as opened and closed.
Staff openings (loading at the station) are watched for the door only: no pickup, no alarm; the
robot's own openings (``openCompartment``) keep the door alarm but make no pickup. A door
that opens with no opening asked for is ``DoorForced`` (an alarm) and then watched like any other.
Nothing here reads the time: callers pass ``now``, and ``next_deadline`` says when ``tick`` is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from robots.cart.locker.model import CompartmentInputs


class Phase(StrEnum):
    OPENING = "opening"
    """The lock was pulsed; the door has not opened yet."""
    OPEN = "open"
    """The door is open."""
    JAMMED = "jammed"
    """The lock was pulsed but the door never opened."""


@dataclass(frozen=True, slots=True)
class Watch:
    """One compartment being watched."""

    compartment: int
    parcel: str | None
    code_hash: str | None
    phase: Phase
    since: float
    """When the current phase began."""
    staff: bool = False
    alarm: bool = False
    """Whether the door-left-open alarm is raised."""
    next_reminder: float | None = None


@dataclass(frozen=True, slots=True)
class DoorOpened:
    compartment: int
    at: float


@dataclass(frozen=True, slots=True)
class PickedUp:
    """The door closed on an empty compartment: ``parcel`` was taken."""

    compartment: int
    parcel: str
    code_hash: str
    at: float


@dataclass(frozen=True, slots=True)
class NotTaken:
    """The door closed with the parcel still inside: the compartment stays reserved."""

    compartment: int
    parcel: str
    at: float


@dataclass(frozen=True, slots=True)
class DoorClosed:
    """A watched door closed (clears its door-left-open alarm)."""

    compartment: int
    at: float
    alarm_cleared: bool


@dataclass(frozen=True, slots=True)
class DoorLeftOpen:
    """A door has been open since ``since`` (first alarm, then a reminder every ``remind_s``)."""

    compartment: int
    since: float
    reminder: int
    at: float


@dataclass(frozen=True, slots=True)
class Jammed:
    """The lock was pulsed at ``since`` but the door did not open."""

    compartment: int
    parcel: str | None
    since: float
    at: float


@dataclass(frozen=True, slots=True)
class DoorForced:
    """A door opened although nobody asked to open it."""

    compartment: int
    at: float


Outcome = DoorOpened | PickedUp | NotTaken | DoorClosed | DoorLeftOpen | Jammed | DoorForced


class PickupTracker:
    """Watches compartments from opening to pickup (see the module docstring)."""

    def __init__(
        self, *, door_alarm_s: float = 30.0, remind_s: float = 30.0, open_timeout_s: float = 3.0
    ) -> None:
        if min(door_alarm_s, remind_s, open_timeout_s) <= 0:
            raise ValueError("PickupTracker: door_alarm_s, remind_s and open_timeout_s must be > 0")
        self.door_alarm_s, self.remind_s, self.open_timeout_s = door_alarm_s, remind_s, open_timeout_s
        self._watches: dict[int, Watch] = {}
        self._last: dict[int, CompartmentInputs] = {}
        self._reminders: dict[int, int] = {}

    def watches(self) -> tuple[Watch, ...]:
        """The compartments being watched, by number."""
        return tuple(self._watches[n] for n in sorted(self._watches))

    def watch(self, compartment: int) -> Watch | None:
        """The watch on ``compartment`` (None when it is not watched)."""
        return self._watches.get(compartment)

    def opening(
        self,
        compartment: int,
        now: float,
        *,
        parcel: str | None = None,
        code_hash: str | None = None,
        staff: bool = False,
    ) -> None:
        """``compartment``'s lock was pulsed: for ``parcel`` after a right code (a pickup when the door
        closes on an empty compartment), for staff (door watched, no alarm), or for the robot's own
        action (door watched with its alarm, no pickup)."""
        self._watches[compartment] = Watch(compartment, parcel, code_hash, Phase.OPENING, now, staff=staff)

    def inputs(self, compartments: Mapping[int, CompartmentInputs], now: float) -> list[Outcome]:
        """The board's latest inputs: door edges move the watches on."""
        out: list[Outcome] = []
        for number, state in sorted(compartments.items()):
            before = self._last.get(number)
            self._last[number] = state
            watch = self._watches.get(number)
            if not state.door_closed and watch is not None and watch.phase is not Phase.OPEN:
                self._watches[number] = _replace(watch, phase=Phase.OPEN, since=now)
                out.append(DoorOpened(number, now))
            elif not state.door_closed and watch is None and before is not None and before.door_closed:
                self._watches[number] = Watch(number, None, None, Phase.OPEN, now)
                out.append(DoorForced(number, now))
            elif state.door_closed and watch is not None and watch.phase is Phase.OPEN:
                out.extend(self._closed(watch, state, now))
            elif watch is not None and _emptied_unseen(before, state):
                # the whole door cycle fell between two polls: the parcel is gone, the door shut again
                out.append(DoorOpened(number, now))
                out.extend(self._closed(watch, state, now))
        return out

    def tick(self, now: float) -> list[Outcome]:
        """Timeouts due at ``now``: jammed locks, doors left open."""
        out: list[Outcome] = []
        for number, watch in list(self._watches.items()):
            if watch.phase is Phase.OPENING and now >= watch.since + self.open_timeout_s:
                self._watches[number] = _replace(watch, phase=Phase.JAMMED, since=now)
                out.append(Jammed(number, watch.parcel, watch.since, now))
            elif watch.phase is Phase.OPEN and not watch.staff:
                due = watch.next_reminder if watch.alarm else watch.since + self.door_alarm_s
                if due is not None and now >= due:
                    count = self._reminders.get(number, 0)
                    self._reminders[number] = count + 1
                    self._watches[number] = _replace(watch, alarm=True, next_reminder=now + self.remind_s)
                    out.append(DoorLeftOpen(number, watch.since, count, now))
        return out

    def next_deadline(self) -> float | None:
        """When ``tick`` next has something to do (None: nothing is timed)."""
        times: list[float] = []
        for watch in self._watches.values():
            if watch.phase is Phase.OPENING:
                times.append(watch.since + self.open_timeout_s)
            elif watch.phase is Phase.OPEN and not watch.staff:
                times.append(watch.next_reminder if watch.next_reminder else watch.since + self.door_alarm_s)
        return min(times, default=None)

    def forget(self, compartment: int) -> None:
        """Stop watching ``compartment`` (a jammed lock reported, or staff cleared it)."""
        self._watches.pop(compartment, None)
        self._reminders.pop(compartment, None)

    def _closed(self, watch: Watch, state: CompartmentInputs, now: float) -> list[Outcome]:
        number = watch.compartment
        del self._watches[number]
        self._reminders.pop(number, None)
        out: list[Outcome] = [DoorClosed(number, now, watch.alarm)]
        if watch.parcel is not None and watch.code_hash is not None:
            if state.occupied:
                out.append(NotTaken(number, watch.parcel, now))
            else:
                out.append(PickedUp(number, watch.parcel, watch.code_hash, now))
        return out


def _emptied_unseen(before: CompartmentInputs | None, now: CompartmentInputs) -> bool:
    """Occupied before, empty and shut now: the door opened and closed between two readings."""
    return before is not None and before.occupied and now.door_closed and not now.occupied


def _replace(watch: Watch, **changes: object) -> Watch:
    return replace(watch, **changes)  # type: ignore[arg-type]
