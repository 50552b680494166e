"""The world's invariants raise at the step that breaks them."""

from __future__ import annotations

import pytest

from orchestrator.dispatch.campus import Compartments, Size
from sim.day.world import InvariantError, World


def world() -> World:
    return World({"cart_1": Compartments(s=1, m=1, l=0)}, ["L1"])


def test_an_item_leaves_only_the_place_it_is_in() -> None:
    """Moving a parcel from where it is not, or adding it twice, is refused."""
    w = world()
    w.add("p1", Size.S, "station")
    with pytest.raises(InvariantError, match="p1 should leave cart_1 but is at station"):
        w.move("p1", "cart_1", "picked_up")
    with pytest.raises(InvariantError, match="appears twice"):
        w.add("p1", Size.S, "station")
    assert w.move("p1", "station", "cart_1") == "S01"
    w.check()


def test_one_item_per_compartment_and_sizes_fit() -> None:
    """Items take the smallest free compartment that fits; a full robot refuses one more."""
    w = world()
    for pid, size in (("a", Size.S), ("b", Size.S), ("c", Size.S)):
        w.add(pid, size, "station")
    assert w.move("a", "station", "cart_1") == "S01"
    assert w.move("b", "station", "cart_1") == "M01"
    with pytest.raises(InvariantError, match="no free compartment"):
        w.move("c", "station", "cart_1")


def test_a_corrupted_compartment_is_found_by_check() -> None:
    """``check`` finds a compartment that holds an item recorded elsewhere."""
    w = world()
    w.add("a", Size.S, "station")
    w.slots["cart_1"]["S01"] = "a"
    with pytest.raises(InvariantError, match="a is in cart_1 S01 but recorded at station"):
        w.check()


def test_a_lift_carries_one_session_at_a_time() -> None:
    """Overlapping sessions and rides on a closed lift are refused."""
    w = world()
    w.book_lift("L1", 10.0, 40.0, "indoor_1")
    with pytest.raises(InvariantError, match="two sessions"):
        w.book_lift("L1", 30.0, 50.0, "indoor_2")
    w.book_lift("L1", 40.0, 60.0, "indoor_2")
    w.lifts["L1"].in_service = False
    with pytest.raises(InvariantError, match="out of service"):
        w.book_lift("L1", 70.0, 80.0, "indoor_1")
