"""The mini-program order state machine: accept or refuse, serve, cancel only before loading."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from orchestrator.domain import (
    CANCELLABLE_ORDER_STATES,
    FINAL_ORDER_STATES,
    EntityKind,
    IllegalTransition,
    InvalidData,
    Order,
    OrderEvent,
    OrderKind,
    OrderState,
    create_order,
    transition,
)
from orchestrator.domain.order import RULES

T0 = 1_800_000_000.0

VALID_DATA: dict[OrderEvent, dict[str, Any]] = {
    OrderEvent.ACCEPT: {"eta": T0 + 600},
    OrderEvent.REFUSE: {"reason": "no robot free in time"},
    OrderEvent.ASSIGN: {"robot": "indoor-1"},
    OrderEvent.ARRIVE: {},
    OrderEvent.LOAD: {},
    OrderEvent.COMPLETE: {},
    OrderEvent.CANCEL: {"reason": "changed my mind"},
    OrderEvent.FAIL: {"reason": "lift out of order"},
}


def _order(kind: str = "pickup", origin: str | None = None) -> Order:
    return create_order("ord_1", "ems", "ref-9", kind, "dorm-7-302", T0 + 300, T0 + 1800, T0, origin=origin)[
        0
    ]


def test_create_makes_a_created_order_and_its_event() -> None:
    """create_order gives an order in 'created' (version 1) and its creation event with the request data."""
    order, event = create_order(
        "ord_1", "ems", "ref-9", "coffee", "admin-201", T0, T0 + 900, T0, origin="cafe"
    )
    assert order.state is OrderState.CREATED and order.kind is OrderKind.COFFEE
    assert (order.version, order.created_at, order.origin) == (1, T0, "cafe")
    assert (event.entity, event.entity_id, event.kind) == (EntityKind.ORDER, "ord_1", "create")
    assert (event.from_state, event.to_state, event.sequence) == (None, "created", 1)
    assert event.data["origin"] == "cafe" and event.data["latest_at"] == T0 + 900


def test_happy_path_pickup() -> None:
    """accept(eta) → assign(robot) → arrive → load → complete: done, with the ETA and robot kept."""
    order, at, events = _order(), T0, []
    steps: list[tuple[OrderEvent, dict[str, Any]]] = [
        (OrderEvent.ACCEPT, {"eta": T0 + 600}),
        (OrderEvent.ASSIGN, {"robot": "indoor-1"}),
        (OrderEvent.ARRIVE, {}),
        (OrderEvent.LOAD, {}),
        (OrderEvent.COMPLETE, {}),
    ]
    for event, data in steps:
        at += 60
        order, ev = transition(order, event, at, **data)
        events.append(ev)
    assert [e.to_state for e in events] == ["accepted", "robot_assigned", "robot_at_door", "loaded", "done"]
    assert (order.eta, order.robot, order.finished_at, order.version) == (T0 + 600, "indoor-1", at, 6)
    assert order.final and not order.cancellable


def test_refused_order_is_final_with_its_reason() -> None:
    """refuse keeps the reason and ends the order."""
    order, event = transition(_order(), "refuse", T0 + 1, reason="outside service hours")
    assert order.state is OrderState.REFUSED and order.reason == "outside service hours"
    assert order.final and order.finished_at == T0 + 1
    assert event.data == {"reason": "outside service hours"}


def test_reassigning_keeps_the_eta_unless_a_new_one_is_given() -> None:
    """assign again (another robot) keeps the state; a new eta replaces the promised one."""
    order, _ = transition(_order(), "accept", T0, eta=T0 + 600)
    order, _ = transition(order, "assign", T0 + 1, robot="r1")
    order, ev = transition(order, "assign", T0 + 2, robot="r2")
    assert (order.state, order.robot, order.eta) == (OrderState.ROBOT_ASSIGNED, "r2", T0 + 600)
    assert ev.from_state == ev.to_state == "robot_assigned"
    order, _ = transition(order, "assign", T0 + 3, robot="r3", eta=T0 + 900)
    assert order.eta == T0 + 900


@pytest.mark.parametrize("state", sorted(CANCELLABLE_ORDER_STATES))
def test_cancel_is_allowed_before_loading(state: OrderState) -> None:
    """Until something is loaded the partner may cancel; the order then is final."""
    order, event = transition(replace(_order(), state=state), "cancel", T0 + 5)
    assert order.state is OrderState.CANCELLED and order.final and order.reason is None
    assert event.from_state == state.value


@pytest.mark.parametrize("state", [OrderState.LOADED, *sorted(FINAL_ORDER_STATES)])
def test_cancel_is_refused_once_loaded_or_final(state: OrderState) -> None:
    """A loaded, done, refused, cancelled or failed order cannot be cancelled."""
    with pytest.raises(IllegalTransition, match=f"cannot 'cancel' while '{state.value}'"):
        transition(replace(_order(), state=state), "cancel", T0 + 5)


@pytest.mark.parametrize(
    ("event", "source"), [(e, s) for e, rule in RULES.items() for s in sorted(rule.sources)], ids=str
)
def test_every_legal_transition(event: OrderEvent, source: OrderState) -> None:
    """Each (event, state) pair of the table leads to the rule's target with exactly one event."""
    order = replace(_order(), state=source)
    new, ev = transition(order, event, T0 + 1, **VALID_DATA[event])
    assert new.state is RULES[event].target
    assert (ev.from_state, ev.to_state, ev.sequence) == (source.value, new.state.value, 2)
    assert (new.finished_at is not None) == new.final


@pytest.mark.parametrize(
    ("event", "state"),
    [(e, s) for e, rule in RULES.items() for s in OrderState if s not in rule.sources],
    ids=str,
)
def test_every_illegal_transition_raises(event: OrderEvent, state: OrderState) -> None:
    """An event outside its allowed states raises IllegalTransition."""
    with pytest.raises(IllegalTransition) as info:
        transition(replace(_order(), state=state), event, T0 + 1, **VALID_DATA[event])
    assert (info.value.entity, info.value.from_state, info.value.event) == ("order", state, event)


def test_final_states_are_exactly_those_without_a_way_out() -> None:
    """A state is final iff no rule allows any event from it."""
    sources = {s for rule in RULES.values() for s in rule.sources}
    assert set(OrderState) - sources == FINAL_ORDER_STATES


@pytest.mark.parametrize(
    ("event", "data", "message"),
    [
        ("accept", {}, "needs eta"),
        ("accept", {"eta": "soon"}, "eta must be a finite number"),
        ("accept", {"eta": True}, "eta must be a finite number"),
        ("accept", {"eta": float("inf")}, "eta must be a finite number"),
        ("refuse", {"reason": ""}, "reason must be a non-empty text"),
        ("create", {}, "'create' happens only when the order is created"),
    ],
)
def test_malformed_event_data_is_refused(event: str, data: dict[str, Any], message: str) -> None:
    """Missing or mistyped data is InvalidData; the creation event cannot be applied to an order."""
    with pytest.raises((InvalidData, IllegalTransition), match=message):
        transition(_order(), event, T0, **data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "coffee"}, "coffee order needs an origin"),
        ({"kind": "laundry"}, "order kind must be pickup or coffee"),
        ({"earliest_at": T0 + 100, "latest_at": T0 + 50}, "latest time is before its earliest"),
        ({"earliest_at": T0 - 100, "latest_at": T0 - 50}, "already ended"),
        ({"place": ""}, "order place must be a non-empty text"),
        ({"partner_ref": "x" * 200}, "longer than 128"),
        ({"size": "XL"}, "size S, M or L"),
    ],
)
def test_create_refuses_malformed_orders(kwargs: dict[str, Any], message: str) -> None:
    """create_order checks kind, size, origin, the time interval and the text fields."""
    args: dict[str, Any] = {
        "order_id": "ord_1", "partner": "ems", "partner_ref": "r", "kind": "pickup", "place": "p",
        "earliest_at": T0, "latest_at": T0 + 60, "at": T0,
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(InvalidData, match=message):
        create_order(**args)
