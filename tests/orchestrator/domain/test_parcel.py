"""The parcel state machine: every legal transition, the illegal ones, and the data each state keeps."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from orchestrator.domain import (
    Destination,
    DomainEvent,
    EntityKind,
    IllegalTransition,
    InvalidData,
    Parcel,
    ParcelEvent,
    ParcelState,
    SizeClass,
    check_tracking_number,
    receive_parcel,
    transition,
)
from orchestrator.domain.parcel import RULES

T0 = 1_800_000_000.0
DORM = Destination(dorm="dorm-7", room="302")
OFFICE = Destination(building="admin", room="201", place="admin-201")

VALID_DATA: dict[ParcelEvent, dict[str, Any]] = {
    ParcelEvent.SORT: {"window": "w1", "stop": "stop-a"},
    ParcelEvent.ROLL: {"window": "w2", "stop": "stop-a"},
    ParcelEvent.LOAD: {"cart": "cart-01", "compartment": "7"},
    ParcelEvent.UNLOAD: {},
    ParcelEvent.ARRIVE: {},
    ParcelEvent.PICK_UP: {},
    ParcelEvent.RETURN: {"reason": "unclaimed"},
    ParcelEvent.HAND_OFF: {"place": "mailroom"},
    ParcelEvent.LOAD_ROBOT: {"robot": "indoor-1", "compartment": "2"},
    ParcelEvent.DELIVER: {},
    ParcelEvent.FAIL: {"reason": "nobody answered"},
}
"""Well-formed data for every event."""


def _parcel(destination: Destination = DORM) -> Parcel:
    return receive_parcel("SF1001", "M", destination, T0)[0]


def _in(state: ParcelState, *, office: bool = False) -> Parcel:
    """A parcel put straight into ``state`` (for tests about one step)."""
    return replace(_parcel(OFFICE if office else DORM), state=state, office=office, window="w1", stop="s")


def _run(parcel: Parcel, *steps: tuple[ParcelEvent, dict[str, Any]]) -> tuple[Parcel, list[DomainEvent]]:
    events = []
    at = T0
    for kind, data in steps:
        at += 60
        parcel, event = transition(parcel, kind, at, **data)
        events.append(event)
    return parcel, events


def test_receive_makes_a_received_parcel_and_its_first_event() -> None:
    """receive_parcel gives a parcel in 'received', version 1, and a creation event with no from-state."""
    parcel, event = receive_parcel("SF1001", "M", DORM, T0)
    assert parcel.state is ParcelState.RECEIVED
    assert parcel.size is SizeClass.M
    assert parcel.version == 1
    assert parcel.received_at == T0
    assert event == DomainEvent(
        EntityKind.PARCEL, "SF1001", "receive", None, "received", T0, 1,
        {"size": "M", "dorm": "dorm-7", "room": "302"},
    )  # fmt: skip


def test_window_delivery_path() -> None:
    """sort → load → arrive → pick_up: each step keeps the data of its state and yields one event."""
    parcel, events = _run(
        _parcel(),
        (ParcelEvent.SORT, {"window": "w1", "stop": "stop-a"}),
        (ParcelEvent.LOAD, {"cart": "cart-01", "compartment": "7"}),
        (ParcelEvent.ARRIVE, {}),
        (ParcelEvent.PICK_UP, {}),
    )
    assert [e.to_state for e in events] == ["sorted", "loaded", "at_stop", "picked_up"]
    assert [e.from_state for e in events] == ["received", "sorted", "loaded", "at_stop"]
    assert [e.sequence for e in events] == [2, 3, 4, 5]
    assert parcel.state is ParcelState.PICKED_UP and parcel.final
    assert (parcel.window, parcel.stop, parcel.cart) == ("w1", "stop-a", "cart-01")
    assert parcel.compartment is None  # the compartment is free again
    assert parcel.finished_at == events[-1].at
    assert parcel.version == 5
    assert events[1].data == {"cart": "cart-01", "compartment": "7"}


def test_unclaimed_parcel_returns_and_rolls_to_the_next_window() -> None:
    """An unclaimed parcel comes back (cart and compartment cleared) and rolls into a later window."""
    parcel, _ = _run(
        _parcel(),
        (ParcelEvent.SORT, {"window": "w1", "stop": "stop-a"}),
        (ParcelEvent.LOAD, {"cart": "cart-01", "compartment": "7"}),
        (ParcelEvent.ARRIVE, {}),
        (ParcelEvent.RETURN, {"reason": "unclaimed"}),
    )
    assert parcel.state is ParcelState.RETURNED
    assert (parcel.cart, parcel.compartment, parcel.reason) == (None, None, "unclaimed")
    assert parcel.window == "w1"  # kept until the next window is chosen
    rolled, event = transition(parcel, "roll", T0 + 9000, window="w2", stop="stop-b")
    assert rolled.state is ParcelState.SORTED
    assert (rolled.window, rolled.stop, rolled.rolled) == ("w2", "stop-b", 1)
    assert event.kind == "roll" and event.from_state == "returned"
    assert not rolled.final


def test_office_delivery_path() -> None:
    """An office parcel: sort(office) → load → hand_off → load_robot → deliver."""
    parcel, events = _run(
        _parcel(OFFICE),
        (ParcelEvent.SORT, {"window": "w1", "stop": "admin-gate", "office": True}),
        (ParcelEvent.LOAD, {"cart": "cart-01", "compartment": "3"}),
        (ParcelEvent.HAND_OFF, {"place": "admin-mailroom"}),
        (ParcelEvent.LOAD_ROBOT, {"robot": "indoor-1", "compartment": "2"}),
        (ParcelEvent.DELIVER, {}),
    )
    assert [e.to_state for e in events] == ["sorted", "loaded", "handed_off", "in_robot", "delivered"]
    assert parcel.final and parcel.office
    assert (parcel.cart, parcel.robot) == (None, "indoor-1")


def test_failed_office_delivery_goes_back_and_is_sorted_again() -> None:
    """fail (reason kept) → return (robot cleared) → roll: the office parcel is sorted again."""
    parcel, _ = _run(
        _parcel(OFFICE),
        (ParcelEvent.SORT, {"window": "w1", "stop": "admin-gate", "office": True}),
        (ParcelEvent.LOAD, {"cart": "cart-01", "compartment": "3"}),
        (ParcelEvent.HAND_OFF, {}),
        (ParcelEvent.LOAD_ROBOT, {"robot": "indoor-1", "compartment": "2"}),
        (ParcelEvent.FAIL, {"reason": "door locked"}),
    )
    assert parcel.state is ParcelState.FAILED and parcel.reason == "door locked"
    parcel, _ = _run(parcel, (ParcelEvent.RETURN, {}), (ParcelEvent.ROLL, {"window": "w2", "stop": "g"}))
    assert parcel.state is ParcelState.SORTED
    assert (parcel.robot, parcel.compartment, parcel.rolled, parcel.office) == (None, None, 1, False)
    assert parcel.reason == "door locked"


def test_unload_and_resort_before_the_cart_leaves() -> None:
    """A loaded parcel can be taken out at the station, and a sorted one given another window."""
    parcel, _ = _run(
        _parcel(),
        (ParcelEvent.SORT, {"window": "w1", "stop": "a"}),
        (ParcelEvent.LOAD, {"cart": "cart-01", "compartment": "7"}),
        (ParcelEvent.UNLOAD, {"reason": "cart fault"}),
        (ParcelEvent.SORT, {"window": "w2", "stop": "b"}),
    )
    assert parcel.state is ParcelState.SORTED
    assert (parcel.window, parcel.stop, parcel.cart, parcel.compartment) == ("w2", "b", None, None)
    assert parcel.rolled == 0


@pytest.mark.parametrize(
    ("event", "source"),
    [(event, source) for event, rule in RULES.items() for source in sorted(rule.sources)],
    ids=str,
)
def test_every_legal_transition(event: ParcelEvent, source: ParcelState) -> None:
    """Each (event, state) pair of the table leads to the rule's target with exactly one event."""
    office = event in (ParcelEvent.HAND_OFF,) or source in (
        ParcelState.HANDED_OFF, ParcelState.IN_ROBOT, ParcelState.FAILED,
    )  # fmt: skip
    parcel = _in(source, office=office)
    new, ev = transition(parcel, event, T0 + 1, **VALID_DATA[event])
    assert new.state is RULES[event].target
    assert (ev.from_state, ev.to_state, ev.kind) == (source.value, new.state.value, event.value)
    assert ev.sequence == new.version == parcel.version + 1
    assert ev.entity is EntityKind.PARCEL and ev.entity_id == "SF1001"


@pytest.mark.parametrize(
    ("event", "state"),
    [(e, s) for e, rule in RULES.items() for s in ParcelState if s not in rule.sources],
    ids=str,
)
def test_every_illegal_transition_raises(event: ParcelEvent, state: ParcelState) -> None:
    """An event outside its allowed states raises IllegalTransition naming the parcel, state and event."""
    parcel = _in(state)
    with pytest.raises(IllegalTransition) as info:
        transition(parcel, event, T0 + 1, **VALID_DATA[event])
    err = info.value
    assert (err.entity, err.entity_id, err.from_state, err.event) == ("parcel", "SF1001", state, event)
    assert str(err).startswith(f"parcel 'SF1001' cannot '{event}' while '{state}'")


def test_illegal_transition_sentences() -> None:
    """The message lists the allowed states, or says the state is final."""
    with pytest.raises(IllegalTransition, match=r"'load' is allowed only while 'sorted'$"):
        transition(_parcel(), "load", T0, cart="c", compartment="1")
    with pytest.raises(IllegalTransition, match=r"'pick_up' is allowed only while 'at_stop'"):
        transition(_in(ParcelState.PICKED_UP), "pick_up", T0)


def test_office_parcels_never_wait_at_a_stop_and_window_parcels_are_never_handed_off() -> None:
    """arrive on an office parcel and hand_off on a window parcel are illegal, and say why."""
    with pytest.raises(IllegalTransition, match="it is an office parcel"):
        transition(_in(ParcelState.LOADED, office=True), "arrive", T0)
    with pytest.raises(IllegalTransition, match="it is a window parcel"):
        transition(_in(ParcelState.LOADED), "hand_off", T0)


@pytest.mark.parametrize(
    ("event", "data", "message"),
    [
        ("sort", {"window": "w1"}, "needs stop"),
        ("sort", {"window": "w1", "stop": "s", "cart": "c"}, "does not take cart"),
        ("sort", {"window": " ", "stop": "s"}, "window must be a non-empty text"),
        ("sort", {"window": "w1", "stop": "s", "office": "yes"}, "office must be true or false"),
        ("sort", {"window": "w" * 129, "stop": "s"}, "longer than 128"),
        ("teleport", {}, "'teleport' is not a parcel event"),
        ("receive", {}, "'receive' happens only when the parcel is created"),
    ],
)
def test_malformed_event_data_is_refused(event: str, data: dict[str, Any], message: str) -> None:
    """Missing, unexpected, blank, mistyped or too long data (or an unknown event) is refused."""
    with pytest.raises((InvalidData, IllegalTransition), match=message):
        transition(_parcel(), event, T0, **data)


def test_compartment_must_be_text_and_time_finite() -> None:
    """A numeric compartment and a non-finite time are InvalidData (also ValueError)."""
    sorted_parcel = _in(ParcelState.SORTED)
    with pytest.raises(InvalidData, match="compartment must be a non-empty text"):
        transition(sorted_parcel, "load", T0, cart="c", compartment=7)
    with pytest.raises(ValueError, match="finite number"):
        transition(sorted_parcel, "load", math.nan, cart="c", compartment="7")


def test_a_refused_transition_leaves_the_parcel_unchanged() -> None:
    """Entities are frozen values: a failed transition changes nothing."""
    parcel = _parcel()
    with pytest.raises(IllegalTransition):
        transition(parcel, "deliver", T0)
    assert parcel == _parcel()


@pytest.mark.parametrize(
    ("tracking_number", "message"),
    [
        ("", "must not be empty"),
        ("A" * 65, "longer than 64"),
        ("SF 1001", "may hold only"),
        ("-x", "may hold"),
    ],
)
def test_bad_tracking_numbers_are_refused(tracking_number: str, message: str) -> None:
    """Tracking numbers are 1..64 letters, digits, '.', '_' or '-' starting with a letter or digit."""
    with pytest.raises(InvalidData, match=message):
        check_tracking_number(tracking_number)
    assert check_tracking_number("SF-1001_a.b") == "SF-1001_a.b"


def test_destination_and_size_are_checked() -> None:
    """A destination needs exactly one of building and dorm; sizes are S, M or L."""
    with pytest.raises(InvalidData, match="either a building or a dorm"):
        Destination(room="101")
    with pytest.raises(InvalidData, match="either a building or a dorm"):
        Destination(building="a", dorm="b")
    with pytest.raises(InvalidData, match="blank"):
        Destination(dorm="  ")
    with pytest.raises(InvalidData, match="size class 'XL'"):
        receive_parcel("SF1", "XL", DORM, T0)
