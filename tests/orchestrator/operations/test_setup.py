"""Live setup: the core's Setup from the map, the fleet file and the windows; stored parcels → dispatch."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from maps.io import load_map
from maps.model import Site
from orchestrator.dispatch.campus import Compartments, RobotKind, Size, Window
from orchestrator.domain.parcel import Destination, ParcelEvent, receive_parcel, transition
from orchestrator.fleet.config import FleetConfig, parse_fleet
from orchestrator.operations.setup import (
    CART_COMPARTMENTS,
    INDOOR_COMPARTMENTS,
    ParcelMappingError,
    SetupError,
    campus_places,
    dispatch_parcel,
    dispatch_parcels,
    live_setup,
    service_windows,
)
from orchestrator.operations.timebase import ServiceDay
from orchestrator.settings import CampusSettings, WindowSettings
from orchestrator.store.domain_records import MaskedContact, ParcelRecord

CAMPUS = Path(__file__).resolve().parents[3] / "maps" / "campuses" / "neijiang.yaml"
HOUR = 3600.0
DAY = ServiceDay("Asia/Shanghai", dt.date(2026, 11, 27))
WINDOWS = service_windows(CampusSettings().windows, DAY)


@pytest.fixture(scope="module")
def site() -> Site:
    return load_map(CAMPUS)


def fleet(*robots: dict[str, Any]) -> FleetConfig:
    rows = [{"manufacturer": "robopost", "password": "secret", **r} for r in robots]
    return parse_fleet({"orchestrator": {"username": "orchestrator", "password": "x"}, "robots": rows})


def test_places_of_the_sample_campus(site: Site) -> None:
    """The station, the hand-offs (handoff place + the stop serving the building), the chargers."""
    places = campus_places(site)
    assert places.station == "post_station"
    assert {b: (h.cart_place, h.robot_place) for b, h in places.handoffs.items()} == {
        "ADM": ("stop_adm", "adm_mailroom"),
        "TEA": ("stop_tea", "tea_handoff"),
    }
    assert "cart_charger_1" in places.chargers and "adm_charger" in places.chargers


def test_defaults_by_kind(site: Site) -> None:
    """A bare cart and indoor robot get the kind's compartments, battery and home."""
    setup = live_setup(
        site,
        fleet(
            {"serial": "cart-01", "kind": "cart"}, {"serial": "adm-01", "kind": "indoor", "building": "ADM"}
        ),
        WINDOWS,
        start_s=6 * HOUR,
    )
    cart, indoor = setup.robots
    assert (cart.id, cart.kind, cart.profile, cart.home, cart.position) == (
        "cart-01", RobotKind.CART, "cart", "post_station", "post_station",
    )  # fmt: skip
    assert cart.compartments == CART_COMPARTMENTS == Compartments(30, 15, 5)
    assert (cart.battery.capacity_wh, cart.battery.level_wh, cart.battery.reserve_wh) == (2000, 2000, 300)
    assert cart.battery.charge_below_wh == 600 and cart.battery.per_m_wh == 0.02
    assert (indoor.kind, indoor.home, indoor.building, indoor.profile) == (
        RobotKind.INDOOR, "adm_mailroom", "ADM", "indoor",
    )  # fmt: skip
    assert indoor.compartments == INDOOR_COMPARTMENTS == Compartments(4, 2, 1)
    assert (indoor.battery.capacity_wh, indoor.battery.reserve_wh, indoor.battery.per_lift_wh) == (
        500,
        75,
        0.5,
    )
    assert all(r.available_s == 6 * HOUR and r.online for r in setup.robots)
    assert setup.station == "post_station" and set(setup.handoffs) == {"ADM", "TEA"}
    assert [w.id for w in setup.windows] == ["w1", "w2", "w3", "w4"]


def test_fleet_fields_override_the_defaults(site: Site) -> None:
    """home, compartments and battery_wh from the fleet file; state given at the start."""
    setup = live_setup(
        site,
        fleet(
            {
                "serial": "cart-02",
                "kind": "cart",
                "home": "cart_charger_1",
                "compartments": {"s": 10, "m": 2, "l": 0},
                "battery_wh": 1000,
            }
        ),
        WINDOWS,
        start_s=9 * HOUR,
        positions={"cart-02": "stop_adm"},
        battery_percent={"cart-02": 50},
        offline={"cart-02"},
    )
    (cart,) = setup.robots
    assert (cart.home, cart.position, cart.online) == ("cart_charger_1", "stop_adm", False)
    assert cart.compartments == Compartments(10, 2, 0)
    assert (cart.battery.capacity_wh, cart.battery.level_wh, cart.battery.reserve_wh) == (1000, 500, 150)


@pytest.mark.parametrize(
    ("robot", "message"),
    [
        ({"serial": "adm-09", "kind": "indoor"}, "robot adm-09: an indoor robot needs 'building'"),
        ({"serial": "x-1", "kind": "indoor", "building": "NOPE"}, "building 'NOPE' is not on the map"),
        ({"serial": "x-2", "kind": "indoor", "building": "LIB"}, "building 'LIB' has no hand-off point"),
        ({"serial": "x-3", "kind": "cart", "building": "ADM"}, "robot x-3: building is for indoor robots"),
        ({"serial": "x-4", "kind": "cart", "home": "mars"}, "robot x-4: home 'mars' is not a place"),
        ({"serial": "x-5", "kind": "robot"}, "robot x-5: kind robot without a building needs 'home'"),
        (
            {"serial": "x-6", "kind": "cart", "compartments": {"s": 0}},
            "robot x-6: compartments are all 0",
        ),
    ],
)
def test_bad_fleet_entries_name_the_robot(site: Site, robot: dict[str, Any], message: str) -> None:
    with pytest.raises(SetupError, match=message):
        live_setup(site, fleet(robot), WINDOWS, start_s=0.0)


def test_every_problem_is_listed(site: Site) -> None:
    """Several bad robots and unknown ids in the start state: one line each."""
    with pytest.raises(SetupError) as caught:
        live_setup(
            site,
            fleet({"serial": "a", "kind": "indoor"}, {"serial": "b", "kind": "robot"}),
            WINDOWS,
            start_s=0.0,
            battery_percent={"zz": 50},
        )
    lines = str(caught.value).splitlines()
    assert len(lines) == 3 and "zz" in lines[0] and "robot a:" in lines[1] and "robot b:" in lines[2]


def test_a_site_without_a_station_is_refused(site: Site) -> None:
    bare = dataclasses.replace(site, places={k: p for k, p in site.places.items() if p.kind != "station"})
    with pytest.raises(SetupError, match="has no station place"):
        campus_places(bare)


def test_windows_follow_the_local_clock() -> None:
    """Settings windows become core seconds; on a spring-forward day 07:30 is 6.5 h after midnight."""
    assert WINDOWS[0] == Window("w1", 7.5 * HOUR, 8.5 * HOUR)
    ny = ServiceDay("America/New_York", dt.date(2026, 3, 8))
    (w,) = service_windows([WindowSettings(id="w", start="07:30", end="24:00")], ny)
    assert (w.start_s, w.end_s) == (6.5 * HOUR, 23 * HOUR)


# ---- stored parcels -----------------------------------------------------------------------------


def record(
    tn: str,
    destination: Destination,
    received: float,
    size: str = "M",
    *events: tuple[ParcelEvent, dict[str, Any]],
) -> ParcelRecord:
    parcel, _ = receive_parcel(tn, size, destination, received)
    for kind, data in events:
        parcel, _ = transition(parcel, kind, received + 60, **data)
    now = dt.datetime.fromtimestamp(received, dt.UTC)
    return ParcelRecord(1, parcel, MaskedContact("张*", "138****1234"), now, now, None, None)


DORM = Destination(dorm="DORM1", place="stop_dorm_1")
OFFICE = Destination(building="ADM", room="201", place="adm_201")


def test_a_dorm_parcel_gets_the_windows_after_its_receipt(site: Site) -> None:
    """Received at 10:00: windows w2..w4; deadline the end of the last window."""
    p = dispatch_parcel(record("SF1", DORM, DAY.epoch(10 * HOUR), "L"), WINDOWS, DAY, places=site.places)
    assert (p.id, p.size, p.destination) == ("SF1", Size.L, "stop_dorm_1")
    assert p.windows == ("w2", "w3", "w4")
    assert (p.deadline_s, p.received_s, p.rolled) == (22 * HOUR, 10 * HOUR, 0)


def test_an_office_parcel_is_due_when_offices_close() -> None:
    """An office parcel: 18:30 if its first window opens before then, else the last window's end."""
    morning = dispatch_parcel(record("SF2", OFFICE, DAY.epoch(6.5 * HOUR)), WINDOWS, DAY)
    assert morning.deadline_s == 18.5 * HOUR and morning.windows == ("w1", "w2", "w3", "w4")
    evening = dispatch_parcel(record("SF3", OFFICE, DAY.epoch(19 * HOUR)), WINDOWS, DAY)
    assert evening.deadline_s == 22 * HOUR and evening.windows == ("w4",)


def test_a_returned_parcel_keeps_its_rounds_and_yesterdays_receipt() -> None:
    """Received yesterday, out once and back: every window today, rolled 1, received_s negative."""
    rec = record(
        "SF4",
        DORM,
        DAY.epoch(-5 * HOUR),
        "S",
        (ParcelEvent.SORT, {"window": "w4", "stop": "stop_dorm_1"}),
        (ParcelEvent.LOAD, {"cart": "cart-01", "compartment": "S01"}),
        (ParcelEvent.RETURN, {"reason": "unclaimed"}),
        (ParcelEvent.ROLL, {"window": "w1", "stop": "stop_dorm_1"}),
    )
    p = dispatch_parcel(rec, WINDOWS, DAY)
    assert p.rolled == 1 and p.received_s == -5 * HOUR and p.windows == ("w1", "w2", "w3", "w4")


@pytest.mark.parametrize(
    ("rec", "reason"),
    [
        (
            record("SF5", Destination(dorm="DORM1"), DAY.epoch(7 * HOUR)),
            "parcel SF5: its destination has no campus-map place",
        ),
        (
            record("SF6", Destination(dorm="DORM1", place="stop_nowhere"), DAY.epoch(7 * HOUR)),
            "parcel SF6: its destination place 'stop_nowhere' is not on the campus map",
        ),
        (record("SF7", DORM, DAY.epoch(21.5 * HOUR)), "parcel SF7: received after the last window"),
        (
            record(
                "SF8",
                DORM,
                DAY.epoch(7 * HOUR),
                "S",
                (ParcelEvent.SORT, {"window": "w1", "stop": "stop_dorm_1"}),
                (ParcelEvent.LOAD, {"cart": "cart-01", "compartment": "S01"}),
            ),
            "parcel SF8: is loaded, not at the station",
        ),
    ],
)
def test_parcels_that_cannot_be_mapped_say_why(site: Site, rec: ParcelRecord, reason: str) -> None:
    with pytest.raises(ParcelMappingError, match=reason):
        dispatch_parcel(rec, WINDOWS, DAY, places=site.places)


def test_a_batch_keeps_the_good_ones_and_lists_the_refused(site: Site) -> None:
    good = record("SF10", DORM, DAY.epoch(7 * HOUR))
    bad = record("SF11", Destination(dorm="DORM1"), DAY.epoch(7 * HOUR))
    parcels, refused = dispatch_parcels([good, bad], WINDOWS, DAY, places=site.places)
    assert [p.id for p in parcels] == ["SF10"]
    assert [(e.tracking_number, e.reason) for e in refused] == [
        ("SF11", "its destination has no campus-map place (not resolved at intake)")
    ]
