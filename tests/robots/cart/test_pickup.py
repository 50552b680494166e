"""Pickup tracking (pure): door edges and timeouts turn into pickups, alarms and reminders."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from robots.cart.locker.model import CompartmentInputs
from robots.cart.pickup import (
    DoorClosed,
    DoorForced,
    DoorLeftOpen,
    DoorOpened,
    Jammed,
    NotTaken,
    Phase,
    PickedUp,
    PickupTracker,
)

CLOSED_FULL = CompartmentInputs(door_closed=True, occupied=True)
OPEN_FULL = CompartmentInputs(door_closed=False, occupied=True)
OPEN_EMPTY = CompartmentInputs(door_closed=False, occupied=False)
CLOSED_EMPTY = CompartmentInputs(door_closed=True, occupied=False)


def tracker() -> PickupTracker:
    t = PickupTracker(door_alarm_s=30, remind_s=20, open_timeout_s=3)
    t.inputs({7: CLOSED_FULL}, 0.0)
    return t


def test_open_take_close_is_a_pickup() -> None:
    """Opened by a code, door opens, parcel taken, door closed: one PickedUp with the code's hash."""
    t = tracker()
    t.opening(7, 1.0, parcel="SF1", code_hash="h")
    assert t.inputs({7: OPEN_FULL}, 1.5) == [DoorOpened(7, 1.5)]
    assert t.inputs({7: OPEN_EMPTY}, 4.0) == []
    assert t.inputs({7: CLOSED_EMPTY}, 6.0) == [DoorClosed(7, 6.0, False), PickedUp(7, "SF1", "h", 6.0)]
    assert t.watches() == () and t.next_deadline() is None


def test_parcel_left_inside_keeps_the_compartment_reserved() -> None:
    """Door opened and closed with the parcel still there: NotTaken, no pickup."""
    t = tracker()
    t.opening(7, 1.0, parcel="SF1", code_hash="h")
    t.inputs({7: OPEN_FULL}, 1.5)
    out = t.inputs({7: CLOSED_FULL}, 5.0)
    assert out == [DoorClosed(7, 5.0, False), NotTaken(7, "SF1", 5.0)]


def test_a_lock_that_does_not_release_is_jammed() -> None:
    """No door opening within open_timeout_s: Jammed once; a late opening still counts."""
    t = tracker()
    t.opening(7, 1.0, parcel="SF1", code_hash="h")
    assert t.next_deadline() == 4.0
    assert t.tick(3.9) == []
    assert t.tick(4.0) == [Jammed(7, "SF1", 1.0, 4.0)]
    assert t.tick(10.0) == []
    assert t.watch(7) is not None and t.watch(7).phase is Phase.JAMMED  # type: ignore[union-attr]
    assert t.inputs({7: OPEN_FULL}, 11.0) == [DoorOpened(7, 11.0)]


def test_a_door_left_open_raises_an_alarm_then_reminders_until_closed() -> None:
    """Alarm at door_alarm_s, a reminder every remind_s, cleared by closing."""
    t = tracker()
    t.opening(7, 0.0, parcel="SF1", code_hash="h")
    t.inputs({7: OPEN_EMPTY}, 1.0)
    assert t.next_deadline() == 31.0
    assert t.tick(31.0) == [DoorLeftOpen(7, 1.0, 0, 31.0)]
    assert t.next_deadline() == 51.0
    assert t.tick(50.0) == []
    assert t.tick(51.0) == [DoorLeftOpen(7, 1.0, 1, 51.0)]
    assert t.inputs({7: CLOSED_EMPTY}, 60.0) == [DoorClosed(7, 60.0, True), PickedUp(7, "SF1", "h", 60.0)]


def test_staff_openings_make_no_pickup_and_no_alarm() -> None:
    """Loading at the station: doors may stay open; closing an emptied compartment is no pickup."""
    t = tracker()
    t.opening(7, 0.0, staff=True)
    t.inputs({7: OPEN_FULL}, 1.0)
    assert t.next_deadline() is None and t.tick(500.0) == []
    assert t.inputs({7: CLOSED_EMPTY}, 600.0) == [DoorClosed(7, 600.0, False)]


def test_a_door_opened_without_a_code_is_forced() -> None:
    """A door that opens though nobody asked: DoorForced, then watched with its alarm."""
    t = tracker()
    assert t.inputs({7: OPEN_FULL}, 5.0) == [DoorForced(7, 5.0)]
    assert t.tick(35.0) == [DoorLeftOpen(7, 5.0, 0, 35.0)]
    assert t.inputs({7: CLOSED_FULL}, 40.0) == [DoorClosed(7, 40.0, True)]


def test_the_first_snapshot_is_no_edge() -> None:
    """A door already open when the cart starts is not 'forced' (we did not see it open)."""
    t = PickupTracker()
    assert t.inputs({3: OPEN_FULL}, 0.0) == []


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=30))
def test_at_most_one_pickup_per_opening(readings: list[tuple[bool, bool]]) -> None:
    """Whatever the sensors say after one opening, there is at most one PickedUp, and only after the
    door was seen open and then closed on an empty compartment."""
    t = tracker()
    t.opening(7, 0.0, parcel="SF1", code_hash="h")
    pickups, seen_open = 0, False
    for i, (closed, occupied) in enumerate(readings, start=1):
        for out in t.inputs({7: CompartmentInputs(closed, occupied)}, float(i)):
            if isinstance(out, DoorOpened):
                seen_open = True
            if isinstance(out, PickedUp):
                assert seen_open and closed and not occupied
                pickups += 1
    assert pickups <= 1


def test_a_door_cycle_between_two_polls_is_still_a_pickup() -> None:
    """Occupied and shut, then shut and empty: the door opened and closed unseen; the parcel was taken."""
    t = tracker()
    t.opening(7, 1.0, parcel="SF1", code_hash="h")
    out = t.inputs({7: CLOSED_EMPTY}, 1.2)
    assert out == [DoorOpened(7, 1.2), DoorClosed(7, 1.2, False), PickedUp(7, "SF1", "h", 1.2)]
