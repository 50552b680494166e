"""The one interface between the bridge's session logic and a lift's equipment.

A driver turns verbs (call the cabin to a floor, open/hold/close the doors) into whatever the equipment
speaks (a vendor IoT box over MQTT, a relay board over Modbus RTU) and reports what the equipment says
as ``LiftStatus``. Verbs answer with a ``DriverResult`` instead of raising for expected failures:
``SUCCESS`` (accepted), ``RETRY`` (could not be sent now: timeout, link down, board busy; try again) or
``IMPOSSIBLE`` (will never work: unknown floor, out of service). Drivers never sleep on the wall clock
for timing decisions the session logic makes; they only wait on their I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from interfaces.fanout import Fanout, Stream
from interfaces.lift import DoorState, LiftMode, MotionState


class LiftFault(StrEnum):
    """Fault names every driver uses in ``LiftStatus.faults``, before any vendor code of its own.

    So the session logic can react to a blocked door or a silent controller whatever the equipment;
    vendor codes (e.g. ``E12``) follow for the logs.
    """

    DOOR_BLOCKED = "DOOR_BLOCKED"  # the doors cannot close (obstruction, light curtain)
    OUT_OF_SERVICE = "OUT_OF_SERVICE"  # key switch, inspection, independent service
    LIFT_FAULT = "LIFT_FAULT"  # the controller reports a fault it does not name
    NO_REPLY = "NO_REPLY"  # the controller stopped answering or reporting
    LINK_DOWN = "LINK_DOWN"  # our link to it is gone (port vanished, box went offline)


class DriverResult(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    IMPOSSIBLE = "impossible"


@dataclass(frozen=True, slots=True)
class LiftStatus:
    """What the equipment reports. ``floor`` is None while unknown; ``faults`` are vendor codes."""

    time: float
    floor: str | None
    motion: MotionState = MotionState.UNKNOWN
    door: DoorState = DoorState.CLOSED
    mode: LiftMode = LiftMode.UNKNOWN
    faults: tuple[str, ...] = field(default_factory=tuple)


class LiftDriver(Protocol):
    """A lift's equipment. ``floors`` are the floor names the lift serves, lowest first."""

    floors: list[str]

    async def start(self) -> None:
        """Open the link (MQTT, serial port); reporting starts."""

    async def stop(self) -> None:
        """Close the link."""

    async def call(self, floor: str) -> DriverResult:
        """Send the cabin to ``floor`` (like pressing its button inside the cabin)."""

    async def open_door(self, hold: bool = False) -> DriverResult:
        """Open the doors; ``hold`` keeps them open until ``close_door`` (door-open button held)."""

    async def close_door(self) -> DriverResult:
        """Release a hold and let the doors close."""

    def status(self) -> LiftStatus | None:
        """The latest status, or None before the first report."""

    def statuses(self) -> AsyncIterator[LiftStatus]:
        """Every status report from now on, in order."""


StatusFanout = Fanout[LiftStatus]
"""Hands every published ``LiftStatus`` to each open ``statuses()`` stream (for driver authors)."""

StatusStream = Stream[LiftStatus]
"""Reports in order; ``async for`` over it, ``await get()`` or ``until(predicate)``; ``close()`` to stop."""
