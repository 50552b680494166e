"""What goes into the operations core (events) and what comes out (commands).

All are frozen values; times are seconds on the caller's clock (the same clock as the dispatcher's
``now``). A leg sent to a robot is named by a ``token`` (unique over the day), so reports about it
stay unambiguous even when re-plans change the robot's other legs.

Events (facts reported by the world: robots, students, the station, facilities)::

    ParcelsArrived    an inbound batch reached the station (dispatch ``Parcel`` values)
    RequestCreated    a mini-program order came in
    LegArrived        a robot reached the place of a leg (before its service starts)
    LegFinished       a robot finished a leg; ``moved`` lists what it actually loaded/unloaded
    LegFailed         a robot gave a leg up (a hand-off partner that never came, a cancelled leg)
    ParcelPickedUp    a student typed the right code and took the parcel out
    RobotFailed       a robot broke down; what it carries is back at its home at ``recovered_s``
    RobotRecovered    a robot is back in service at its home
    LiftClosed        a lift is out of service (``LiftReopened``: back)
    TimerFired        a timer the core asked for (``SetTimer``) is due

Commands (decisions for the world)::

    StartLeg          execute this leg (live: one VDA 5050 order)
    CancelLeg         stop executing a leg (live: VDA 5050 cancelOrder)
    ReleaseCodes      the recipients of these parcels get their pickup codes (SMS / call)
    SetTimer          wake the core at ``at`` with ``TimerFired(key)``
    Alarm             something an operator should see
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from orchestrator.dispatch.campus import Leg, Parcel, Request
from orchestrator.domain.parcel import Parcel as DomainParcel

# ---- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParcelsArrived:
    """An inbound batch is at the station (the van was unloaded).

    ``stored``: the parcels' domain records as the store holds them (live mode: intake already wrote
    their ``receive``, perhaps a ``sort``, or yesterday's ``return``). The core continues from those
    (same state, next version) instead of receiving the parcel again; without one it is received here.
    """

    parcels: tuple[Parcel, ...]
    stored: Mapping[str, DomainParcel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stored", MappingProxyType(dict(self.stored)))


@dataclass(frozen=True, slots=True)
class RequestCreated:
    """A signed mini-program order was accepted by the partner API and needs a robot."""

    request: Request


@dataclass(frozen=True, slots=True)
class LegArrived:
    """The robot running leg ``token`` reached the leg's place."""

    robot: str
    token: int


@dataclass(frozen=True)
class LegFinished:
    """The robot finished leg ``token``.

    ``moved`` is what actually went in or out during the leg (parcels loaded at a LOAD, handed over at
    a HANDOFF, delivered at a DELIVER, unloaded at a RETURN; request ids at COLLECT/DROP); ``slots``
    maps a loaded parcel or request to its compartment.
    """

    robot: str
    token: int
    moved: tuple[str, ...] = ()
    slots: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", MappingProxyType(dict(self.slots)))


@dataclass(frozen=True, slots=True)
class LegFailed:
    """The robot gave leg ``token`` up without doing it (nothing moved)."""

    robot: str
    token: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParcelPickedUp:
    """The recipient opened the parcel's compartment on ``robot`` with the right code."""

    parcel: str
    robot: str


@dataclass(frozen=True, slots=True)
class RobotFailed:
    """``robot`` broke down; what it carries is brought back to its home by ``recovered_s``."""

    robot: str
    reason: str
    recovered_s: float


@dataclass(frozen=True, slots=True)
class RobotRecovered:
    """``robot`` is repaired and waits at its home."""

    robot: str


@dataclass(frozen=True, slots=True)
class LiftClosed:
    """Lift ``lift`` is out of service."""

    lift: str


@dataclass(frozen=True, slots=True)
class LiftReopened:
    """Lift ``lift`` is back in service."""

    lift: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer set with ``SetTimer(at, key)`` is due."""

    key: str


Event = (
    ParcelsArrived
    | RequestCreated
    | LegArrived
    | LegFinished
    | LegFailed
    | ParcelPickedUp
    | RobotFailed
    | RobotRecovered
    | LiftClosed
    | LiftReopened
    | TimerFired
)

# ---- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartLeg:
    """Send ``leg`` to ``leg.robot`` under ``token`` (live: one VDA 5050 order per leg)."""

    token: int
    leg: Leg


@dataclass(frozen=True, slots=True)
class CancelLeg:
    """Stop leg ``token`` of ``robot`` (its partner is gone); the robot reports ``LegFailed``."""

    robot: str
    token: int


@dataclass(frozen=True, slots=True)
class ReleaseCodes:
    """Tell the recipients of ``parcels`` (on ``robot`` at ``place``) their pickup codes until ``until_s``;
    ``window`` is the delivery window the codes belong to (a cart's codes are per stop and window)."""

    robot: str
    place: str
    parcels: tuple[str, ...]
    until_s: float
    window: str | None = None


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Send ``TimerFired(key)`` at ``at``."""

    at: float
    key: str


@dataclass(frozen=True, slots=True)
class Alarm:
    """An operator alarm: ``kind`` (short code) and one sentence."""

    kind: str
    text: str


Command = StartLeg | CancelLeg | ReleaseCodes | SetTimer | Alarm
