"""Random event sequences (Hypothesis): the machines never reach an undefined state, every accepted
transition yields exactly one event, a refused one changes nothing, and final states are never left.

Each step draws, three times out of four, an event allowed in the current state (so runs get deep:
delivered, done), else any event (illegal ones, the creation event, unknown names); its data are
mostly well formed, sometimes missing, extra or mistyped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.domain import (
    FINAL_ORDER_STATES,
    FINAL_PARCEL_STATES,
    FINAL_TASK_STATES,
    Destination,
    DomainError,
    DomainEvent,
    IllegalTransition,
    InvalidData,
    OrderEvent,
    OrderState,
    ParcelEvent,
    ParcelState,
    TaskEvent,
    TaskState,
    create_order,
    plan_task,
    receive_parcel,
    transition,
)
from orchestrator.domain import order as order_machine
from orchestrator.domain import parcel as parcel_machine
from orchestrator.domain import task as task_machine
from orchestrator.domain.machine import Rule

T0 = 1_800_000_000.0
MAX_STEPS = 25

_names = st.sampled_from(["w1", "w2", "stop-a", "cart-01", "7", "indoor-1", "reason"])
_junk = st.one_of(st.none(), st.just(""), st.integers(), st.floats(allow_nan=True), st.booleans())


_NO_DATA: st.SearchStrategy[dict[str, Any]] = st.one_of(st.just({}), st.just({"bogus": 1}))


def _data(rule: Rule[Any] | None) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly well-formed data for the rule's fields; sometimes broken, empty or with an extra field."""
    fields = {**rule.required, **rule.optional} if rule is not None else {}
    good = {name: (st.booleans() if kind is bool else st.floats(T0, T0 + 1e5) if kind is float else _names)
            for name, kind in fields.items()}  # fmt: skip
    valid = st.fixed_dictionaries(good)
    broken = st.fixed_dictionaries({name: _junk for name in fields}) if fields else st.just({"bogus": 1})
    return st.one_of(valid, valid, valid, valid, broken, st.just({}))


def _walk(
    data: st.DataObject,
    entity: Any,
    rules: Mapping[Any, Rule[Any]],
    events: type[StrEnum],
    finals: frozenset[Any],
    check: Callable[[Any], None] = lambda _: None,
) -> list[DomainEvent]:
    """Drive ``entity`` with random events, checking the transition contract at every step."""
    states = type(entity.state)
    choices = _choices(rules, events)
    payloads: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        e.value: _data(rules.get(e)) for e in events.__members__.values()
    }
    history: list[DomainEvent] = []
    at = T0
    for _ in range(data.draw(st.integers(0, MAX_STEPS), label="steps")):
        name = data.draw(choices[entity.state], label="event")
        rule = rules.get(events(name)) if name in payloads else None
        payload = data.draw(payloads.get(name, _NO_DATA), label="data")
        at += 1.0
        before = entity
        try:
            entity, event = transition(entity, name, at, **payload)
        except DomainError as exc:
            assert isinstance(exc, IllegalTransition | InvalidData) and str(exc)
            allowed = rule is not None and before.state in rule.sources
            assert isinstance(exc, InvalidData) or not allowed or "parcel" in str(exc)
            continue
        assert rule is not None and before.state in rule.sources, "an event outside the table was accepted"
        assert before.state not in finals, f"left the final state {before.state}"
        assert entity.state in states and entity.state is rule.target
        assert (event.from_state, event.to_state, event.kind, event.at) == (
            before.state.value, entity.state.value, name, at,
        )  # fmt: skip
        assert event.sequence == entity.version == before.version + 1
        assert (entity.finished_at is not None) == (entity.state in finals)
        check(entity)
        history.append(event)
    for earlier, later in itertools.pairwise(history):
        assert later.from_state == earlier.to_state and later.sequence == earlier.sequence + 1
    return history


def _choices(rules: Mapping[Any, Rule[Any]], events: type[StrEnum]) -> dict[Any, st.SearchStrategy[str]]:
    """Per state: an event allowed there three times out of four, else any event or an unknown name."""
    anything = st.sampled_from([*(e.value for e in events), "bogus"])
    choices = {}
    for state in {s for rule in rules.values() for s in (*rule.sources, rule.target)}:
        legal = [e.value for e, rule in rules.items() if state in rule.sources]
        choices[state] = (
            st.one_of(st.sampled_from(legal), st.sampled_from(legal), st.sampled_from(legal), anything)
            if legal
            else anything
        )
    return choices


def _parcel_is_in_one_place(parcel: Any) -> None:
    """A parcel is never in two places, and has the data its state needs."""
    assert not (parcel.cart and parcel.robot), "on a cart and in a robot at once"
    if parcel.cart is not None:
        assert parcel.state in (ParcelState.LOADED, ParcelState.AT_STOP, ParcelState.PICKED_UP)
    if parcel.robot is not None:
        assert parcel.state in (ParcelState.IN_ROBOT, ParcelState.FAILED, ParcelState.DELIVERED)
    if parcel.state in (ParcelState.LOADED, ParcelState.AT_STOP):
        assert parcel.cart and parcel.compartment
    if parcel.state is ParcelState.IN_ROBOT:
        assert parcel.robot and parcel.compartment
    if parcel.state is not ParcelState.RECEIVED:
        assert parcel.window and parcel.stop
    if parcel.state in (ParcelState.HANDED_OFF, ParcelState.IN_ROBOT, ParcelState.DELIVERED):
        assert parcel.office
    if parcel.state is ParcelState.AT_STOP:
        assert not parcel.office


@settings(max_examples=150, deadline=None)
@given(data=st.data(), office=st.booleans())
def test_random_parcel_sequences(data: st.DataObject, office: bool) -> None:
    """Any sequence of parcel events keeps the parcel in a defined state, in one place, with the data
    its state needs; its version counts its events."""
    destination = Destination(building="admin", room="1") if office else Destination(dorm="d7")
    parcel, first = receive_parcel("SF1", "S", destination, T0)
    assert (first.sequence, first.from_state, first.to_state) == (1, None, "received")
    history = _walk(
        data, parcel, parcel_machine.RULES, ParcelEvent, FINAL_PARCEL_STATES, _parcel_is_in_one_place
    )
    assert all(e.entity_id == "SF1" for e in history)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_random_order_sequences(data: st.DataObject) -> None:
    """Any sequence of order events keeps the order in a defined state and never leaves a final one."""
    order = create_order("o1", "ems", "r1", "pickup", "door", T0, T0 + 3600, T0)[0]
    _walk(data, order, order_machine.RULES, OrderEvent, FINAL_ORDER_STATES)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_random_task_sequences(data: st.DataObject) -> None:
    """Any sequence of task events keeps the task in a defined state and never leaves a final one."""
    task = plan_task("cart-01/0", "cart-01", 0, "load", "station", T0)[0]
    _walk(data, task, task_machine.RULES, TaskEvent, FINAL_TASK_STATES)


def test_a_loaded_order_is_never_cancelled() -> None:
    """The cancel rule excludes loaded and every final state."""
    cancellable = order_machine.RULES[OrderEvent.CANCEL].sources
    assert OrderState.LOADED not in cancellable and not FINAL_ORDER_STATES & cancellable
    assert TaskState.DONE not in task_machine.RULES[TaskEvent.CANCEL].sources
