"""The sample campus (maps/campuses/neijiang.yaml): what it holds and that every place can be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from maps.campuses.build_neijiang import build
from maps.check import site_problems
from maps.errors import RoutingError
from maps.io import load_site, save_site
from maps.model import PlaceKind, Site
from maps.routing import Router

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"
BUILDINGS_WITH_FLOORS = {"ADM": 10, "TEA": 6}


@pytest.fixture(scope="module")
def site() -> Site:
    """The committed sample campus, loaded from its files."""
    return load_site(SAMPLE_CAMPUS)


@pytest.fixture(scope="module")
def routers(site: Site) -> dict[str, Router]:
    """One router per default profile."""
    return {name: Router(site, name) for name in ("cart", "indoor", "robot")}


def _places(site: Site, *kinds: PlaceKind) -> list[str]:
    return [p.name for p in site.places.values() if p.kind in kinds]


def test_generator_output_equals_the_committed_files(tmp_path: Path) -> None:
    """build() saved anew is byte for byte the committed YAML and GeoJSON (edit the script, re-run it)."""
    yaml_file, geojson_file = save_site(build(), tmp_path / "neijiang.yaml")
    assert yaml_file.read_bytes() == SAMPLE_CAMPUS.read_bytes()
    assert geojson_file.read_bytes() == SAMPLE_CAMPUS.with_suffix(".geojson").read_bytes()


def test_campus_sits_near_neijiang_and_spans_about_1_5_by_1_km(site: Site) -> None:
    """Origin near Neijiang (29.58 N, 105.06 E, 350 m); outdoor extent about 1.5 km × 1 km."""
    assert (site.origin.lat, site.origin.lon, site.origin.alt) == (29.58, 105.06, 350.0)
    xs = [n.x for n in site.nodes.values() if n.outdoor]
    ys = [n.y for n in site.nodes.values() if n.outdoor]
    assert 1300 <= max(xs) - min(xs) <= 1700
    assert 850 <= max(ys) - min(ys) <= 1150


def test_scenario_places_are_all_there(site: Site) -> None:
    """A station, 6 dormitory stops and the activity-centre stop, parking, chargers, canteen, library."""
    kinds = {p.name: p.kind for p in site.places.values()}
    assert _places(site, PlaceKind.STATION) == ["post_station"]
    assert {f"stop_dorm_{i}" for i in range(1, 7)} | {"stop_activity_centre"} <= set(
        _places(site, PlaceKind.STOP)
    )
    assert len(_places(site, PlaceKind.PARKING)) >= 3
    chargers = _places(site, PlaceKind.CHARGER)
    assert sum(site.nodes[site.places[c].node].outdoor for c in chargers) >= 3  # for carts
    assert {"adm_charger", "tea_charger"} <= set(chargers)  # for indoor robots
    assert kinds["canteen"] == kinds["library"] == PlaceKind.WAYPOINT
    assert site.places["stop_activity_centre"].label == "师生活动中心停靠点"
    assert {"ACT", "CAN", "LIB", "STA", *(f"DORM{i}" for i in range(1, 7))} <= set(site.buildings)


def test_buildings_have_floors_every_3_6_m_and_two_lifts_serving_all(site: Site) -> None:
    """ADM has 10 floors, TEA 6, ids like ADM-1F; 3.6 m per storey; two lifts land on every floor."""
    for building, count in BUILDINGS_WITH_FLOORS.items():
        floors = site.floors_of(building)
        assert [f.id for f in floors] == [f"{building}-{n}F" for n in range(1, count + 1)]
        assert [f.elevation for f in floors] == pytest.approx([3.6 * n for n in range(count)])
        lifts = [li for li in site.lifts.values() if li.building == building]
        assert len(lifts) == 2
        for lift in lifts:
            assert lift.floors == [f.id for f in floors]
            assert all(site.nodes[node].floor == fid for fid, node in lift.landings.items())
        assert len(site.buildings[building].footprint) >= 3


def test_teaching_building_entrance_is_gated_and_admin_has_iot_doors(site: Site) -> None:
    """TEA's entrance edge carries a gate; ADM's mailroom is the 1F hand-off; its doors are IoT doors."""
    entrances = {e.id: e for e in site.entrances()}
    assert entrances["TEA-entrance"].gate == "TEA-gate"
    assert site.gates["TEA-gate"].building == "TEA"
    mailroom = site.places["adm_mailroom"]
    assert mailroom.kind == PlaceKind.HANDOFF and mailroom.label == "行政楼收发室"
    assert site.nodes[mailroom.node].floor == "ADM-1F"
    adm_doors = [d for d in site.doors.values() if d.building == "ADM"]
    assert len(adm_doors) > 60 and all(d.iot for d in adm_doors)
    corridor_doors = [
        e for e in site.edges.values() if e.door and "fire" in e.door and e.id.startswith("ADM-")
    ]
    assert len(corridor_doors) == 20  # two fire doors by the lift hall on each of 10 floors


def test_outdoor_network_has_one_ways_narrow_paths_steps_kerbs_and_a_bollard(site: Site) -> None:
    """The outdoor network has the obstacles the cart profile must route around."""
    outdoor = [e for e in site.edges.values() if site.nodes[e.a].outdoor and site.nodes[e.b].outdoor]
    assert sum(e.oneway for e in outdoor) >= 4
    assert any(e.width is not None and e.width < site.profiles["cart"].min_width for e in outdoor)
    assert any(e.step for e in outdoor) and any(e.kerb for e in outdoor)
    assert any(e.barrier == "bollard" for e in outdoor)
    assert all(e.width is not None and e.speed_limit is not None for e in outdoor if not e.step)


def test_cart_reaches_every_stop_parking_and_outdoor_charger_from_the_station_and_back(
    site: Site, routers: dict[str, Router]
) -> None:
    """Every stop, the station, parking bay and outdoor charger is reachable by `cart` there and back."""
    cart = routers["cart"]
    targets = _places(site, PlaceKind.STOP, PlaceKind.STATION, PlaceKind.PARKING)
    targets += [c for c in _places(site, PlaceKind.CHARGER) if site.nodes[site.places[c].node].outdoor]
    assert len(targets) >= 17
    for name in targets:
        there, back = cart.route("post_station", name), cart.route(name, "post_station")
        assert there.time_s >= 0 and back.time_s >= 0
        assert set(there.floors) == {"outdoor"}


def test_indoor_robot_reaches_every_room_office_and_charger_from_its_hand_off(
    site: Site, routers: dict[str, Router]
) -> None:
    """In each building, `indoor` reaches every hand-off, office, room and charger from the hand-off."""
    indoor = routers["indoor"]
    kinds = (PlaceKind.HANDOFF, PlaceKind.OFFICE, PlaceKind.ROOM, PlaceKind.CHARGER)
    for building in BUILDINGS_WITH_FLOORS:
        (handoff,) = [
            p for p in _places(site, PlaceKind.HANDOFF) if site.building_of(site.places[p].node) == building
        ]
        targets = [p for p in _places(site, *kinds) if site.building_of(site.places[p].node) == building]
        assert len(targets) > 20
        for name in targets:
            assert indoor.route(handoff, name).time_s >= 0
            assert indoor.route(name, handoff).time_s >= 0


def test_robot_from_the_station_to_an_admin_office_enters_and_rides_a_lift(
    routers: dict[str, Router],
) -> None:
    """`robot` from the station to office 701 crosses the ADM entrance, then rides an ADM lift to 7F."""
    route = routers["robot"].route("post_station", "adm_701")
    assert route.floors == ["outdoor", "ADM-1F", "ADM-7F"]
    assert len(route.lifts) == 1 and route.lifts[0].startswith("ADM-L")
    i = route.path.index("adm-front")
    assert route.path[i + 1] == "ADM-1F-entrance"
    assert "ADM-main" in route.doors and "ADM-7F-door-01" in route.doors
    assert route.path[-1] == "ADM-7F-701"


def test_cart_routes_avoid_steps_kerbs_bollards_and_footpaths(site: Site, routers: dict[str, Router]) -> None:
    """The cart goes round the bollard to the library and never uses a step, kerb or narrow path."""
    cart = routers["cart"]
    to_library = cart.route("post_station", "library")
    edges = [site.edges[s.ref] for s in to_library.steps]
    assert "ba-lib-avenue" not in {e.id for e in edges}
    for name in _places(site, PlaceKind.STOP):
        for step in cart.route("post_station", name).steps:
            e = site.edges[step.ref]
            assert not (e.step or e.kerb or e.barrier) and (e.width or 0) >= site.profiles["cart"].min_width
    with pytest.raises(RoutingError):
        cart.route("post_station", "adm_mailroom")


def test_sample_campus_has_no_map_problems(site: Site) -> None:
    """The map checker finds nothing wrong: no unreachable place, dangling lift or lonely node."""
    assert [str(p) for p in site_problems(site)] == []
