"""The parcel state machine (window delivery to a stop, or office delivery through a hand-off).

::

    receive ─► received ─sort─► sorted ─load─► loaded ─arrive─► at_stop ─pick_up─► picked_up
                                 │  ▲ ▲            │                │
                           sort ─┘  │ └─unload─────┤                │
                                    │              └────return──────┴──► returned
                                    └────────────roll (next window, rolled + 1)─────┘
    office parcels (sorted with office=True):
      loaded ─hand_off─► handed_off ─load_robot─► in_robot ─deliver─► delivered
                             └──────fail──────► failed ◄──fail──┘
                                                  └──return──► returned

``picked_up`` and ``delivered`` are final. ``sort`` (and ``roll``) decide whether the parcel is an
office parcel (``office=True``: it goes through a building's hand-off point to an indoor robot);
office parcels never ``arrive`` at a stop and window parcels are never handed off.

Use ``receive_parcel`` to make a parcel and ``transition`` for every change; each returns the new
frozen ``Parcel`` and the one ``DomainEvent`` to store before acting on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from orchestrator.domain.errors import IllegalTransition, InvalidData
from orchestrator.domain.events import DomainEvent, EntityKind, JsonScalar
from orchestrator.domain.machine import Rule, check, check_time, make_event, parse_event

MAX_TRACKING_NUMBER = 64
"""Longest tracking number accepted (the store column's width)."""

MAX_NAME = 128
"""Longest building, room, dorm, place, window, stop, cart, compartment or robot name."""

_TRACKING_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SizeClass(StrEnum):
    """Parcel size (S ⊂ M ⊂ L compartments; ``orchestrator.dispatch.campus.Size[size.value]``)."""

    S = "S"
    M = "M"
    L = "L"


class ParcelState(StrEnum):
    """Where a parcel is in its life."""

    RECEIVED = "received"  # at the station, not yet given a window
    SORTED = "sorted"  # given a window and a stop (or hand-off point), waiting at the station
    LOADED = "loaded"  # in a cart compartment
    AT_STOP = "at_stop"  # the cart is at the stop: the recipient may pick it up with the code
    PICKED_UP = "picked_up"  # final: the recipient took it (已取件)
    RETURNED = "returned"  # back at the station unclaimed or undeliverable (已退回)
    HANDED_OFF = "handed_off"  # office parcel at the building's hand-off point (交接点)
    IN_ROBOT = "in_robot"  # office parcel in an indoor robot's compartment
    DELIVERED = "delivered"  # final: the indoor robot handed it over at the office
    FAILED = "failed"  # office delivery failed; waits to go back to the station


FINAL_PARCEL_STATES = frozenset({ParcelState.PICKED_UP, ParcelState.DELIVERED})
"""States a parcel never leaves."""


class ParcelEvent(StrEnum):
    """What can happen to a parcel (``RECEIVE`` only creates one: ``receive_parcel``)."""

    RECEIVE = "receive"
    SORT = "sort"  # data: window, stop, office=False
    LOAD = "load"  # data: cart, compartment
    UNLOAD = "unload"  # taken back out at the station; data: reason?
    ARRIVE = "arrive"  # window parcel: the cart reached its stop
    PICK_UP = "pick_up"  # the right code opened its compartment
    RETURN = "return"  # back at the station; data: reason?
    ROLL = "roll"  # a returned parcel goes out in a later window; data: window, stop, office=False
    HAND_OFF = "hand_off"  # office parcel left the cart at the hand-off point; data: place?
    LOAD_ROBOT = "load_robot"  # data: robot, compartment
    DELIVER = "deliver"
    FAIL = "fail"  # data: reason


_S = ParcelState
_E = ParcelEvent
RULES: Mapping[ParcelEvent, Rule[ParcelState]] = {
    _E.SORT: Rule(
        frozenset({_S.RECEIVED, _S.SORTED}), _S.SORTED, {"window": str, "stop": str}, {"office": bool}
    ),
    _E.ROLL: Rule(frozenset({_S.RETURNED}), _S.SORTED, {"window": str, "stop": str}, {"office": bool}),
    _E.LOAD: Rule(frozenset({_S.SORTED}), _S.LOADED, {"cart": str, "compartment": str}),
    _E.UNLOAD: Rule(frozenset({_S.LOADED}), _S.SORTED, {}, {"reason": str}),
    _E.ARRIVE: Rule(frozenset({_S.LOADED}), _S.AT_STOP),
    _E.PICK_UP: Rule(frozenset({_S.AT_STOP}), _S.PICKED_UP),
    _E.RETURN: Rule(frozenset({_S.LOADED, _S.AT_STOP, _S.FAILED}), _S.RETURNED, {}, {"reason": str}),
    _E.HAND_OFF: Rule(frozenset({_S.LOADED}), _S.HANDED_OFF, {}, {"place": str}),
    _E.LOAD_ROBOT: Rule(frozenset({_S.HANDED_OFF}), _S.IN_ROBOT, {"robot": str, "compartment": str}),
    _E.DELIVER: Rule(frozenset({_S.IN_ROBOT}), _S.DELIVERED),
    _E.FAIL: Rule(frozenset({_S.HANDED_OFF, _S.IN_ROBOT}), _S.FAILED, {"reason": str}),
}
"""The parcel machine: per event, the states it is allowed in, where it leads and the data it takes."""


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a parcel goes, as the station's sorting system says: a ``dorm`` or a ``building``, a
    ``room`` in it if known, and ``place``, the campus-map place it resolves to (when resolved)."""

    building: str | None = None
    room: str | None = None
    dorm: str | None = None
    place: str | None = None

    def __post_init__(self) -> None:
        if (self.building is None) == (self.dorm is None):
            raise InvalidData("a destination needs either a building or a dorm, not both and not neither")
        for name in ("building", "room", "dorm", "place"):
            value = getattr(self, name)
            if value is not None:
                _check_name(f"destination {name}", value)


@dataclass(frozen=True, slots=True)
class Parcel:
    """A parcel and the data its state needs.

    ``window``/``stop`` are set from ``sorted`` on (kept after ``returned`` until the next ``roll``);
    ``cart``/``compartment`` while it is on a cart (``loaded``, ``at_stop``); ``robot``/``compartment``
    while it is in an indoor robot; ``rolled`` counts the windows it went out in and came back from
    (its pickup rounds); ``reason`` is the last failure or return reason. Times are epoch seconds;
    ``finished_at`` is set on reaching a final state. ``version`` counts its events.
    """

    tracking_number: str
    size: SizeClass
    destination: Destination
    received_at: float
    state: ParcelState = ParcelState.RECEIVED
    office: bool = False
    window: str | None = None
    stop: str | None = None
    cart: str | None = None
    compartment: str | None = None
    robot: str | None = None
    rolled: int = 0
    reason: str | None = None
    finished_at: float | None = None
    version: int = 1

    @property
    def final(self) -> bool:
        """Whether the parcel reached a state it never leaves."""
        return self.state in FINAL_PARCEL_STATES


def check_tracking_number(tracking_number: str) -> str:
    """The tracking number if well formed (letters, digits, ``.``, ``_``, ``-``; at most 64), else
    ``InvalidData`` saying why."""
    if not isinstance(tracking_number, str) or not tracking_number:
        raise InvalidData("a tracking number must not be empty")
    if len(tracking_number) > MAX_TRACKING_NUMBER:
        raise InvalidData(f"tracking number is longer than {MAX_TRACKING_NUMBER} characters")
    if not _TRACKING_NUMBER.fullmatch(tracking_number):
        raise InvalidData(
            f"tracking number {tracking_number!r} may hold only letters, digits, '.', '_' and '-'"
        )
    return tracking_number


def receive_parcel(
    tracking_number: str, size: SizeClass | str, destination: Destination, at: float
) -> tuple[Parcel, DomainEvent]:
    """A parcel received at the station, and its ``receive`` event; ``InvalidData`` if malformed."""
    check_tracking_number(tracking_number)
    try:
        size = SizeClass(size)
    except ValueError:
        raise InvalidData(f"size class {size!r} is not one of S, M, L") from None
    at = check_time("receive time", at)
    parcel = Parcel(tracking_number=tracking_number, size=size, destination=destination, received_at=at)
    data: dict[str, JsonScalar] = {"size": size.value}
    data.update({k: v for k, v in _destination_data(destination).items() if v is not None})
    event = make_event(
        EntityKind.PARCEL, tracking_number, ParcelEvent.RECEIVE, None, parcel.state, at, 1, data
    )
    return parcel, event


def transition(
    parcel: Parcel, event: ParcelEvent | str, at: float, **data: JsonScalar
) -> tuple[Parcel, DomainEvent]:
    """Apply ``event`` to ``parcel`` at ``at`` (epoch seconds): the new parcel and its event.

    Raises ``IllegalTransition`` if the event is not allowed now and ``InvalidData`` for bad data
    (see ``ParcelEvent`` for what each event takes).
    """
    kind = parse_event(EntityKind.PARCEL, ParcelEvent, event)
    at = check_time("parcel event time", at)
    rule = check(EntityKind.PARCEL, parcel.tracking_number, parcel.state, kind, RULES, data)
    _check_route(parcel, kind)
    for name in ("window", "stop", "cart", "compartment", "robot", "place"):
        value = data.get(name)
        if isinstance(value, str):
            _check_name(name, value)
    new = replace(_apply(parcel, kind, at, data), state=rule.target, version=parcel.version + 1)
    return new, make_event(
        EntityKind.PARCEL, parcel.tracking_number, kind, parcel.state, new.state, at, new.version, data
    )


def _apply(parcel: Parcel, kind: ParcelEvent, at: float, data: Mapping[str, JsonScalar]) -> Parcel:
    """The parcel's data after ``kind`` (the state is set by the caller)."""
    match kind:
        case ParcelEvent.SORT | ParcelEvent.ROLL:
            return replace(
                parcel,
                window=str(data["window"]),
                stop=str(data["stop"]),
                office=bool(data.get("office") or False),
                cart=None,
                compartment=None,
                robot=None,
                rolled=parcel.rolled + (1 if kind is ParcelEvent.ROLL else 0),
            )
        case ParcelEvent.LOAD:
            return replace(parcel, cart=str(data["cart"]), compartment=str(data["compartment"]))
        case ParcelEvent.UNLOAD | ParcelEvent.RETURN:
            reason = data.get("reason")
            return replace(
                parcel,
                cart=None,
                compartment=None,
                robot=None,
                reason=str(reason) if reason is not None else parcel.reason,
            )
        case ParcelEvent.HAND_OFF:
            return replace(parcel, cart=None, compartment=None)
        case ParcelEvent.LOAD_ROBOT:
            return replace(parcel, robot=str(data["robot"]), compartment=str(data["compartment"]))
        case ParcelEvent.FAIL:
            return replace(parcel, reason=str(data["reason"]))
        case ParcelEvent.PICK_UP | ParcelEvent.DELIVER:
            return replace(parcel, compartment=None, finished_at=at)
        case _:  # ARRIVE changes the state only
            return parcel


def _check_route(parcel: Parcel, kind: ParcelEvent) -> None:
    """Office parcels go through a hand-off, window parcels wait at a stop; never the other way."""
    if kind is ParcelEvent.ARRIVE and parcel.office:
        why = "it is an office parcel, which goes through a hand-off point, not a stop"
    elif kind is ParcelEvent.HAND_OFF and not parcel.office:
        why = "it is a window parcel, which waits at a stop, not at a hand-off point"
    else:
        return
    raise IllegalTransition(
        EntityKind.PARCEL, parcel.tracking_number, parcel.state.value, kind.value, why=why
    )


def _check_name(what: str, value: str) -> None:
    if not value.strip():
        raise InvalidData(f"{what} must not be blank")
    if len(value) > MAX_NAME:
        raise InvalidData(f"{what} is longer than {MAX_NAME} characters")


def _destination_data(destination: Destination) -> dict[str, str | None]:
    return {
        "building": destination.building,
        "room": destination.room,
        "dorm": destination.dorm,
        "place": destination.place,
    }
