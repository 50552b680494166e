"""The mini-program order state machine (小程序下单: a pickup from a door, or a coffee to an office).

::

    create ─► created ──accept(eta)──► accepted ──assign(robot)──► robot_assigned ──arrive──► robot_at_door
                 │                                  ▲ assign ┘           │
                 └──refuse(reason)──► refused                            └──load──► loaded ──complete──► done
    cancel: from created, accepted, robot_assigned, robot_at_door (never once loaded) ──► cancelled
    fail:   from accepted, robot_assigned, robot_at_door, loaded ──► failed

``refused``, ``done``, ``cancelled`` and ``failed`` are final. For a coffee order "the door" of
``robot_at_door`` is where the robot collects (the shop, ``origin``); ``done`` is the drop at ``place``.
A ``PICKUP`` order collects at ``place`` between ``earliest_at`` and ``latest_at`` and brings the
parcel home; a ``COFFEE`` order collects at ``origin`` and drops at ``place`` in that interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from orchestrator.domain.errors import InvalidData
from orchestrator.domain.events import DomainEvent, EntityKind, JsonScalar
from orchestrator.domain.machine import Rule, check, check_time, check_value, make_event, parse_event
from orchestrator.domain.parcel import MAX_NAME, SizeClass


class OrderKind(StrEnum):
    """What the mini-program asks for."""

    PICKUP = "pickup"  # a robot collects a parcel at the door and brings it to the station
    COFFEE = "coffee"  # a robot collects at a shop and brings it to the door


class OrderState(StrEnum):
    """Where an order is in its life."""

    CREATED = "created"  # stored, not yet answered
    ACCEPTED = "accepted"  # promised, with an ETA
    REFUSED = "refused"  # final: cannot be served (reason)
    ROBOT_ASSIGNED = "robot_assigned"
    ROBOT_AT_DOOR = "robot_at_door"  # at the collect place: the sender's door, or the shop
    LOADED = "loaded"  # the parcel / coffee is in the robot; cannot be cancelled any more
    DONE = "done"  # final
    CANCELLED = "cancelled"  # final
    FAILED = "failed"  # final (reason)


FINAL_ORDER_STATES = frozenset({OrderState.REFUSED, OrderState.DONE, OrderState.CANCELLED, OrderState.FAILED})
"""States an order never leaves."""

CANCELLABLE_ORDER_STATES = frozenset(
    {OrderState.CREATED, OrderState.ACCEPTED, OrderState.ROBOT_ASSIGNED, OrderState.ROBOT_AT_DOOR}
)
"""States in which the partner may still cancel (before anything is loaded)."""


class OrderEvent(StrEnum):
    """What can happen to an order (``CREATE`` only makes one: ``create_order``)."""

    CREATE = "create"
    ACCEPT = "accept"  # data: eta (epoch s)
    REFUSE = "refuse"  # data: reason
    ASSIGN = "assign"  # data: robot, eta?
    ARRIVE = "arrive"
    LOAD = "load"
    COMPLETE = "complete"
    CANCEL = "cancel"  # data: reason?
    FAIL = "fail"  # data: reason


_S = OrderState
_E = OrderEvent
RULES: Mapping[OrderEvent, Rule[OrderState]] = {
    _E.ACCEPT: Rule(frozenset({_S.CREATED}), _S.ACCEPTED, {"eta": float}),
    _E.REFUSE: Rule(frozenset({_S.CREATED}), _S.REFUSED, {"reason": str}),
    _E.ASSIGN: Rule(
        frozenset({_S.ACCEPTED, _S.ROBOT_ASSIGNED}), _S.ROBOT_ASSIGNED, {"robot": str}, {"eta": float}
    ),
    _E.ARRIVE: Rule(frozenset({_S.ROBOT_ASSIGNED}), _S.ROBOT_AT_DOOR),
    _E.LOAD: Rule(frozenset({_S.ROBOT_AT_DOOR}), _S.LOADED),
    _E.COMPLETE: Rule(frozenset({_S.LOADED}), _S.DONE),
    _E.CANCEL: Rule(CANCELLABLE_ORDER_STATES, _S.CANCELLED, {}, {"reason": str}),
    _E.FAIL: Rule(
        frozenset({_S.ACCEPTED, _S.ROBOT_ASSIGNED, _S.ROBOT_AT_DOOR, _S.LOADED}), _S.FAILED, {"reason": str}
    ),
}
"""The order machine: per event, the states it is allowed in, where it leads and the data it takes."""


@dataclass(frozen=True, slots=True)
class Order:
    """A mini-program order and the data its state needs (times in epoch seconds).

    ``partner_ref`` is the partner's own id of the order; ``eta`` the promised time at the collect
    place (pickup) or at the door (coffee); ``robot`` the robot serving it; ``reason`` why it was
    refused, cancelled or failed; ``finished_at`` when it reached a final state.
    """

    id: str
    partner: str
    partner_ref: str
    kind: OrderKind
    place: str
    earliest_at: float
    latest_at: float
    created_at: float
    size: SizeClass = SizeClass.S
    origin: str | None = None
    state: OrderState = OrderState.CREATED
    eta: float | None = None
    robot: str | None = None
    reason: str | None = None
    finished_at: float | None = None
    version: int = 1

    @property
    def final(self) -> bool:
        """Whether the order reached a state it never leaves."""
        return self.state in FINAL_ORDER_STATES

    @property
    def cancellable(self) -> bool:
        """Whether ``cancel`` is allowed now."""
        return self.state in CANCELLABLE_ORDER_STATES


def create_order(
    order_id: str,
    partner: str,
    partner_ref: str,
    kind: OrderKind | str,
    place: str,
    earliest_at: float,
    latest_at: float,
    at: float,
    *,
    size: SizeClass | str = SizeClass.S,
    origin: str | None = None,
) -> tuple[Order, DomainEvent]:
    """A new order and its ``create`` event; ``InvalidData`` if a field is malformed (a coffee order
    without an origin, an interval that ends before it starts or before ``at``)."""
    for what, value in (("order id", order_id), ("partner", partner), ("partner order ref", partner_ref)):
        check_value(what, value, str)
        _check_length(what, value)
    check_value("order place", place, str)
    _check_length("order place", place)
    try:
        kind, size = OrderKind(kind), SizeClass(size)
    except ValueError as exc:
        raise InvalidData(f"order kind must be pickup or coffee and size S, M or L: {exc}") from None
    earliest_at = check_time("order earliest time", earliest_at)
    latest_at = check_time("order latest time", latest_at)
    at = check_time("order creation time", at)
    if latest_at < earliest_at:
        raise InvalidData("the order's latest time is before its earliest time")
    if latest_at < at:
        raise InvalidData("the order's time window has already ended")
    if kind is OrderKind.COFFEE and origin is None:
        raise InvalidData("a coffee order needs an origin (the shop)")
    if origin is not None:
        check_value("order origin", origin, str)
        _check_length("order origin", origin)
    order = Order(
        id=order_id,
        partner=partner,
        partner_ref=partner_ref,
        kind=kind,
        place=place,
        earliest_at=earliest_at,
        latest_at=latest_at,
        created_at=at,
        size=size,
        origin=origin,
    )
    data: dict[str, JsonScalar] = {
        "partner": partner,
        "partner_ref": partner_ref,
        "kind": kind.value,
        "place": place,
        "earliest_at": earliest_at,
        "latest_at": latest_at,
        "size": size.value,
        "origin": origin,
    }
    return order, make_event(EntityKind.ORDER, order_id, OrderEvent.CREATE, None, order.state, at, 1, data)


def transition(
    order: Order, event: OrderEvent | str, at: float, **data: JsonScalar
) -> tuple[Order, DomainEvent]:
    """Apply ``event`` to ``order`` at ``at`` (epoch seconds): the new order and its event.

    Raises ``IllegalTransition`` if the event is not allowed now (e.g. ``cancel`` once loaded) and
    ``InvalidData`` for bad data (see ``OrderEvent`` for what each event takes).
    """
    kind = parse_event(EntityKind.ORDER, OrderEvent, event)
    at = check_time("order event time", at)
    rule = check(EntityKind.ORDER, order.id, order.state, kind, RULES, data)
    new = replace(_apply(order, kind, data), state=rule.target, version=order.version + 1)
    if new.state in FINAL_ORDER_STATES:
        new = replace(new, finished_at=at)
    return new, make_event(EntityKind.ORDER, order.id, kind, order.state, new.state, at, new.version, data)


def _apply(order: Order, kind: OrderEvent, data: Mapping[str, JsonScalar]) -> Order:
    """The order's data after ``kind`` (the state is set by the caller)."""
    eta = data.get("eta")
    reason = data.get("reason")
    match kind:
        case OrderEvent.ACCEPT:
            return replace(order, eta=_float(eta))
        case OrderEvent.ASSIGN:
            return replace(order, robot=str(data["robot"]), eta=_float(eta) if eta is not None else order.eta)
        case OrderEvent.REFUSE | OrderEvent.CANCEL | OrderEvent.FAIL:
            return replace(order, reason=str(reason) if reason is not None else None)
        case _:  # ARRIVE, LOAD, COMPLETE change the state only
            return order


def _float(value: JsonScalar) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidData(f"{value!r} is not a finite number")
    return float(value)


def _check_length(what: str, value: str) -> None:
    if len(value) > MAX_NAME:
        raise InvalidData(f"{what} is longer than {MAX_NAME} characters")
