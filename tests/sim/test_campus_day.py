"""The seeded campus day on the neijiang campus: counts, shares, determinism, reachability, windows."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from maps.io import load_map
from maps.model import PlaceKind, Site
from orchestrator.dispatch.campus import Plan, RequestKind, RobotKind, Size
from orchestrator.dispatch.travel import TravelBook, TravelTable
from orchestrator.dispatch.validate import validate
from sim.campus_day import (
    AFTERNOON_VAN_S,
    COFFEE_DEADLINE_S,
    MORNING_VAN_S,
    PICKUP_LEAD_S,
    PICKUP_WINDOW_S,
    CampusDay,
    campus_day,
)

CAMPUS = Path(__file__).resolve().parents[2] / "maps" / "campuses" / "neijiang.yaml"


@pytest.fixture(scope="module")
def site() -> Site:
    return load_map(CAMPUS)


@pytest.fixture(scope="module")
def day(site: Site) -> CampusDay:
    return campus_day(site, seed=7)


@pytest.fixture(scope="module")
def tables(site: Site) -> dict[str, TravelTable]:
    book = TravelBook(site)
    return {"cart": book.table("cart"), "indoor": book.table("indoor")}


def test_the_default_day_has_the_asked_counts(day: CampusDay) -> None:
    """2,000 parcels, 300 requests, 4 windows, 3 carts at the station and 6 indoor robots, 3 per building."""
    snapshot = day.snapshot
    assert len(snapshot.parcels) == 2000 and len({p.id for p in snapshot.parcels}) == 2000
    assert len(day.requests) == 300 and len({r.id for r in day.requests}) == 300
    assert snapshot.requests == ()
    assert [w.id for w in snapshot.windows] == ["w1", "w2", "w3", "w4"]
    carts = [r for r in snapshot.robots if r.kind is RobotKind.CART]
    indoor = [r for r in snapshot.robots if r.kind is RobotKind.INDOOR]
    assert len(carts) == 3 and all(
        r.home == r.position == "post_station" and r.profile == "cart" for r in carts
    )
    assert all(r.compartments.total == 50 for r in carts)
    assert Counter(r.building for r in indoor) == {"ADM": 3, "TEA": 3}
    for robot in indoor:
        assert robot.profile == "indoor"
        assert robot.home == robot.position == snapshot.handoffs[robot.building or ""].robot_place
        assert robot.battery.per_lift_wh > 0
    for robot in snapshot.robots:
        assert robot.battery.reserve_wh < robot.battery.level_wh <= robot.battery.capacity_wh


def test_hand_offs_and_chargers_come_from_the_map(day: CampusDay) -> None:
    """ADM and TEA hand off at their stops and mailrooms; every charger place is listed."""
    snapshot = day.snapshot
    assert {b: (h.cart_place, h.robot_place) for b, h in snapshot.handoffs.items()} == {
        "ADM": ("stop_adm", "adm_mailroom"),
        "TEA": ("stop_tea", "tea_handoff"),
    }
    assert set(snapshot.chargers) == {f"cart_charger_{k}" for k in range(1, 5)} | {
        "adm_charger",
        "tea_charger",
    }


def test_shares_are_near_the_documented_ones(site: Site, day: CampusDay) -> None:
    """Sizes ~70/22/8 %, ~28 % offices, ~55 % on the morning van, ~70 % pickups (loose bounds)."""
    parcels = day.snapshot.parcels
    sizes = Counter(p.size for p in parcels)
    assert 0.66 < sizes[Size.S] / 2000 < 0.74
    assert 0.18 < sizes[Size.M] / 2000 < 0.26
    assert 0.05 < sizes[Size.L] / 2000 < 0.11
    offices = sum(site.places[p.destination].kind in (PlaceKind.OFFICE, PlaceKind.ROOM) for p in parcels)
    assert 0.24 < offices / 2000 < 0.32
    assert 0.50 < sum(p.received_s == MORNING_VAN_S for p in parcels) / 2000 < 0.60
    assert {p.received_s for p in parcels} == {MORNING_VAN_S, AFTERNOON_VAN_S}
    pickups = sum(r.kind is RequestKind.PICKUP for r in day.requests)
    assert 0.62 < pickups / 300 < 0.78


def test_the_same_seed_gives_the_same_day(site: Site, day: CampusDay) -> None:
    """Seeded: equal for the same seed, different for another."""
    assert campus_day(site, seed=7) == day
    other = campus_day(site, seed=8)
    assert other.snapshot.parcels != day.snapshot.parcels
    assert other.requests != day.requests


def test_every_destination_is_reachable_by_the_right_profile(
    site: Site, day: CampusDay, tables: dict[str, TravelTable]
) -> None:
    """Dorm parcels: cart station ↔ stop; office parcels and requests: indoor mailroom ↔ door."""
    snapshot = day.snapshot
    cart, indoor = tables["cart"], tables["indoor"]
    station = snapshot.station
    for parcel in snapshot.parcels:
        place = site.places[parcel.destination]
        if place.kind is PlaceKind.STOP:
            assert cart.reachable(station, place.name) and cart.reachable(place.name, station)
            assert place.name not in {h.cart_place for h in snapshot.handoffs.values()}
            continue
        handoff = snapshot.handoffs[site.building_of(place.node) or ""]
        assert cart.reachable(station, handoff.cart_place) and cart.reachable(handoff.cart_place, station)
        assert indoor.reachable(handoff.robot_place, place.name)
        assert indoor.reachable(place.name, handoff.robot_place)
    for request in day.requests:
        building = site.building_of(site.places[request.place].node)
        home = snapshot.handoffs[building or ""].robot_place
        assert indoor.reachable(home, request.place) and indoor.reachable(request.place, home)
        if request.kind is RequestKind.COFFEE:
            assert request.origin is not None
            assert site.building_of(site.places[request.origin].node) == building
            assert indoor.reachable(home, request.origin) and indoor.reachable(request.origin, request.place)


def test_windows_are_ordered_and_eligible_after_receipt(day: CampusDay) -> None:
    """Windows in order without overlap; each parcel's windows start after it arrives; deadlines after one."""
    windows = day.snapshot.windows
    assert all(w.start_s < w.end_s for w in windows)
    assert all(a.end_s <= b.start_s for a, b in pairwise(windows))
    by_id = {w.id: w for w in windows}
    for parcel in day.snapshot.parcels:
        assert parcel.windows
        assert all(by_id[w].start_s > parcel.received_s for w in parcel.windows)
        assert [w.id for w in windows if w.start_s > parcel.received_s] == list(parcel.windows)
        assert parcel.deadline_s >= by_id[parcel.windows[0]].end_s


def test_requests_keep_their_promises(day: CampusDay) -> None:
    """By creation time; a pickup's 30-min window opens 10 min after the order; a coffee is due in 20 min."""
    created = [r.created_s for r in day.requests]
    assert created == sorted(created)
    for request in day.requests:
        if request.kind is RequestKind.PICKUP:
            assert request.origin is None
            assert request.earliest_s == pytest.approx(request.created_s + PICKUP_LEAD_S)
            assert request.latest_s == pytest.approx(request.earliest_s + PICKUP_WINDOW_S)
        else:
            assert request.size is Size.S
            assert request.earliest_s == request.created_s
            assert request.latest_s == pytest.approx(request.created_s + COFFEE_DEADLINE_S)


def test_fewer_windows_keep_the_latest_ones(site: Site) -> None:
    """windows=2 keeps 17:00 and 21:00, so even the 15:30 van's parcels have a window."""
    small = campus_day(site, seed=1, parcels=50, windows=2, carts=1, indoor=3, requests=5)
    assert [w.id for w in small.snapshot.windows] == ["w3", "w4"]
    assert all(p.windows for p in small.snapshot.parcels)
    assert Counter(r.building for r in small.snapshot.robots if r.building) == {"ADM": 2, "TEA": 1}
    assert (len(small.snapshot.parcels), len(small.requests)) == (50, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parcels": -1}, "parcels must be >= 0"),
        ({"windows": 0}, "windows must be within 1..4"),
        ({"windows": 5}, "windows must be within 1..4"),
    ],
)
def test_bad_arguments_are_refused(site: Site, kwargs: dict[str, int], message: str) -> None:
    """Negative counts and window counts outside 1..4 raise a ValueError with one sentence."""
    with pytest.raises(ValueError, match=message):
        campus_day(site, **kwargs)


def test_the_generated_day_is_a_valid_input_of_the_plan_checker(
    day: CampusDay, tables: dict[str, TravelTable]
) -> None:
    """Every parcel and request unplanned with a reason is a valid (empty) plan of the day."""
    snapshot = day.snapshot
    ids = [p.id for p in snapshot.parcels]
    assert validate(Plan(0.0, {}, dict.fromkeys(ids, "not planned yet")), snapshot, tables) == ()


def test_requests_join_the_snapshot_when_asked(day: CampusDay) -> None:
    """with_requests(t) adds the requests created by t; with no argument all of them."""
    noon = 12 * 3600.0
    assert day.with_requests().requests == day.requests
    at_noon = day.with_requests(noon)
    assert at_noon.requests == tuple(r for r in day.requests if r.created_s <= noon)
    assert 0 < len(at_noon.requests) < len(day.requests)
    assert at_noon.parcels == day.snapshot.parcels
