"""The Open-RMF building.yaml importer on the real rmf_demos maps and on broken copies of them."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pymap3d.vincenty import vdist
from shapely.geometry import LineString

from maps.errors import MapError, MapFormatError
from maps.importers.rmf import import_rmf
from maps.io import load_site, save_site
from maps.model import PlaceKind, Site
from maps.routing import Router

Doc = dict[str, Any]


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rmf_dir(shared_data: Path) -> Path:
    """The folder of the real Open-RMF maps."""
    return shared_data / "maps" / "rmf"


@pytest.fixture(scope="module")
def hotel(rmf_dir: Path) -> Site:
    """The hotel (3 floors, 2 lifts), imported once; tests only read it."""
    return import_rmf(rmf_dir / "hotel.building.yaml")


@pytest.fixture(scope="module")
def office(rmf_dir: Path) -> Site:
    """The office (1 floor, doors, pickup/dropoff waypoints)."""
    return import_rmf(rmf_dir / "office.building.yaml")


@pytest.fixture(scope="module")
def campus(rmf_dir: Path) -> Site:
    """The WGS84 campus (outdoor loop, chargers)."""
    return import_rmf(rmf_dir / "campus.building.yaml")


def _load(path: Path) -> Doc:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


@pytest.fixture(scope="module")
def hotel_raw(rmf_dir: Path) -> Doc:
    """The hotel file as plain YAML data (read once)."""
    return _load(rmf_dir / "hotel.building.yaml")


@pytest.fixture(scope="module")
def campus_raw(rmf_dir: Path) -> Doc:
    """The campus file as plain YAML data (read once)."""
    return _load(rmf_dir / "campus.building.yaml")


DRAWING_ONLY = ("models", "walls", "floors", "layers")
"""Level sections the importer never reads (furniture, walls, floor polygons, scan layers)."""


@pytest.fixture
def hotel_doc(hotel_raw: Doc) -> Doc:
    """A private copy of the hotel data that a test may break.

    Furniture, walls, floor polygons and the crowd simulation are left out so that each broken copy
    is quick to write and read; everything the importer reads is the real file's.
    """
    doc = {k: copy.deepcopy(v) for k, v in hotel_raw.items() if k != "crowd_sim"}
    for level in doc["levels"].values():
        for key in DRAWING_ONLY:
            level.pop(key, None)
    return doc


def _write(tmp_path: Path, doc: Any, name: str = "broken.building.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.dump(doc, Dumper=yaml.CSafeDumper), encoding="utf-8")
    return path


def _pixels_to_metres(doc: Doc, level: str) -> float:
    """The level's scale from its measurements (m/px)."""
    lv = doc["levels"][level]
    scales = []
    for a, b, params in lv["measurements"]:
        pa, pb = lv["vertices"][a][:2], lv["vertices"][b][:2]
        scales.append(params["distance"][1] / math.dist(pa, pb))
    return sum(scales) / len(scales)


def _cabin_vertices(doc: Doc, level: str, lift: str) -> list[int]:
    verts = doc["levels"][level]["vertices"]
    return [i for i, v in enumerate(verts) if len(v) > 4 and v[4].get("lift_cabin", [1, ""])[1] == lift]


# ---- the hotel --------------------------------------------------------------------------------


def test_hotel_has_three_floors_of_one_building_and_two_lifts(hotel: Site, rmf_dir: Path) -> None:
    """hotel: one building 'hotel', floors L1/L2/L3 at their elevations, lifts serving all three."""
    assert list(hotel.buildings) == ["hotel"]
    assert [(f.id, f.building, f.elevation) for f in hotel.floors_of("hotel")] == [
        ("L1", "hotel", 0.0),
        ("L2", "hotel", 8.0),
        ("L3", "hotel", 16.0),
    ]
    assert sorted(hotel.lifts) == ["Lift1", "Lift2"]
    for lift in hotel.lifts.values():
        assert lift.building == "hotel"
        assert lift.floors == ["L1", "L2", "L3"]
        assert (lift.cabin.width, lift.cabin.depth, lift.cabin.yaw) == (2.7, 2.7, 0.0)
    assert hotel.source == str(rmf_dir / "hotel.building.yaml")
    assert hotel.origin.lat == hotel.origin.lon == 0.0


def test_hotel_lift_cabin_vertices_line_up_across_floors(hotel: Site, hotel_raw: Doc) -> None:
    """Each lift lands on its lift_cabin vertex on every floor; after alignment they coincide within 0.1 m."""
    for name, lift in hotel.lifts.items():
        for level, node_id in lift.landings.items():
            assert node_id in {f"{level}:{i}" for i in _cabin_vertices(hotel_raw, level, name)}
            assert hotel.nodes[node_id].floor == level
        points = [(hotel.nodes[n].x, hotel.nodes[n].y) for n in lift.landings.values()]
        assert max(math.dist(p, q) for p, q in combinations(points, 2)) < 0.1
        assert max(math.dist(p, (lift.cabin.x, lift.cabin.y)) for p in points) < 0.1


def test_hotel_lift_doors_are_offset_from_the_cabin_in_its_frame(hotel: Site) -> None:
    """Lift door positions are the cabin centre plus the door's cabin-frame offset (yaw 0: unrotated)."""
    for name, dy in (("Lift1", -1.5), ("Lift2", 1.5)):
        lift = hotel.lifts[name]
        expected = (lift.cabin.x, round(lift.cabin.y + dy, 4))
        assert lift.door_positions == dict.fromkeys(("L1", "L2", "L3"), expected)


def test_hotel_has_the_named_places(hotel: Site) -> None:
    """lobby (a holding point) is on L1, L3_room1 on L3; chargers are chargers and keep their other params."""
    lobby, room = hotel.places["lobby"], hotel.places["L3_room1"]
    assert (lobby.kind, hotel.nodes[lobby.node].floor) == (PlaceKind.HOLDING, "L1")
    assert (room.kind, hotel.nodes[room.node].floor) == (PlaceKind.WAYPOINT, "L3")
    charger = hotel.places["tinybot_charger"]
    assert charger.kind == PlaceKind.CHARGER
    assert charger.tags == {
        "is_holding_point": "true",
        "is_parking_spot": "true",
        "spawn_robot_name": "tinyBot_1",
        "spawn_robot_type": "Open-RMF/TinyRobot",
    }


def test_reference_level_nodes_are_the_drawing_in_metres_with_y_up(hotel: Site, hotel_raw: Doc) -> None:
    """On the reference level (elevation 0) a vertex (x, y) px becomes (x·s, -y·s) m, s from measurements."""
    s = _pixels_to_metres(hotel_raw, "L1")
    x, y = hotel_raw["levels"]["L1"]["vertices"][59][:2]  # lobby
    node = hotel.nodes[hotel.places["lobby"].node]
    assert node.id == "L1:59"
    assert (node.x, node.y) == pytest.approx((x * s, -y * s), abs=1e-4)
    frame = hotel.floors["L1"].frame
    assert (frame.x, frame.y, frame.yaw) == (0.0, 0.0, 0.0)


def test_floor_frame_recovers_the_floor_map_up_to_the_fiducial_scale_residual(
    hotel: Site, hotel_raw: Doc
) -> None:
    """L2's frame maps site coordinates back to L2's drawing in metres (its own measured scale).

    The fiducials of L2 disagree with its measurements by 1.2 % in scale; the frame carries no scale, so
    the recovery is exact up to that share of the distance from the frame origin.
    """
    s = _pixels_to_metres(hotel_raw, "L2")
    frame = hotel.floors["L2"].frame
    for node in (n for n in hotel.nodes.values() if n.floor == "L2"):
        x, y = hotel_raw["levels"]["L2"]["vertices"][int(node.id.split(":")[1])][:2]
        fx, fy = frame.to_floor(node.x, node.y)
        assert math.dist((fx, fy), (x * s, -y * s)) <= 0.015 * math.hypot(x * s, y * s) + 1e-3


def test_level_without_measurements_takes_its_scale_from_the_fiducials(
    tmp_path: Path, hotel_doc: Doc
) -> None:
    """Without measurements L2 takes its scale from the fiducials: its frame is exact, lifts still align."""
    del hotel_doc["levels"]["L2"]["measurements"]
    site = import_rmf(_write(tmp_path, hotel_doc))
    frame = site.floors["L2"].frame
    ref = {n: (x, y) for x, y, n in hotel_doc["levels"]["L1"]["fiducials"]}
    own = {n: (x, y) for x, y, n in hotel_doc["levels"]["L2"]["fiducials"]}
    ratios = [math.dist(ref[a], ref[b]) / math.dist(own[a], own[b]) for a, b in combinations(sorted(ref), 2)]
    s = _pixels_to_metres(hotel_doc, "L1") * sum(ratios) / len(ratios)
    for node in (n for n in site.nodes.values() if n.floor == "L2"):
        x, y = hotel_doc["levels"]["L2"]["vertices"][int(node.id.split(":")[1])][:2]
        assert frame.to_floor(node.x, node.y) == pytest.approx((x * s, -y * s), rel=2e-3, abs=2e-3)
    for lift in site.lifts.values():
        points = [(site.nodes[n].x, site.nodes[n].y) for n in lift.landings.values()]
        assert max(math.dist(p, q) for p, q in combinations(points, 2)) < 0.1


def test_identical_lanes_of_several_graphs_become_one_edge(hotel: Site, hotel_raw: Doc) -> None:
    """L2 lanes 121→91 (graph 0) and 91→121 (graph 2) make one two-way edge tagged graphs '0,2'."""
    edge = hotel.edges["L2:121-91"]
    assert (edge.a, edge.b, edge.oneway) == ("L2:121", "L2:91", False)
    assert edge.tags["graphs"] == "0,2"
    assert "L2:91-121" not in hotel.edges
    pairs = {
        (level, frozenset(lane[:2]))
        for level, lv in hotel_raw["levels"].items()
        for lane in lv["lanes"] or []
    }
    assert len(hotel.edges) == len(pairs)


def test_graphs_selects_lane_graphs_and_only_lane_ends_and_named_vertices_become_nodes(
    rmf_dir: Path, hotel_raw: Doc
) -> None:
    """graphs={1}: only graph-1 lanes; nodes are their ends plus named and lift-cabin vertices, no walls."""
    site = import_rmf(rmf_dir / "hotel.building.yaml", graphs={1})
    lanes = [
        (level, lane)
        for level, lv in hotel_raw["levels"].items()
        for lane in lv["lanes"] or []
        if lane[2]["graph_idx"][1] == 1
    ]
    assert {e.tags["graphs"] for e in site.edges.values()} == {"1"}
    assert len(site.edges) == len({(level, frozenset(lane[:2])) for level, lane in lanes})
    expected = {f"{level}:{i}" for level, lane in lanes for i in lane[:2]}
    for level, lv in hotel_raw["levels"].items():
        for i, v in enumerate(lv["vertices"]):
            if v[3] or (len(v) > 4 and "lift_cabin" in v[4]):
                expected.add(f"{level}:{i}")
    assert set(site.nodes) == expected
    assert "L1:0" not in site.nodes  # a wall corner


def test_repeated_place_name_gets_the_level_suffix(tmp_path: Path, hotel_doc: Doc) -> None:
    """A vertex named like one on an earlier level becomes place 'name@level'."""
    hotel_doc["levels"]["L2"]["vertices"][95][3] = "lobby"
    site = import_rmf(_write(tmp_path, hotel_doc))
    assert site.places["lobby"].node == "L1:59"
    assert site.places["lobby@L2"].node == "L2:95"
    assert site.places["lobby@L2"].name == "lobby@L2"


def test_served_level_without_cabin_vertex_gets_a_landing_node(tmp_path: Path, hotel_doc: Doc) -> None:
    """A lift serving a level with no lift_cabin vertex lands on a new node at the cabin centre."""
    (i,) = _cabin_vertices(hotel_doc, "L3", "Lift2")
    hotel_doc["levels"]["L3"]["vertices"][i][4] = {}
    site = import_rmf(_write(tmp_path, hotel_doc))
    lift = site.lifts["Lift2"]
    node = site.nodes[lift.landings["L3"]]
    assert (node.id, node.floor, node.x, node.y) == ("L3:lift:Lift2", "L3", lift.cabin.x, lift.cabin.y)


def test_lift_yaw_rotates_the_cabin_and_its_doors(tmp_path: Path, hotel_doc: Doc) -> None:
    """A lift turned by 90° puts its door offset (0, -1.5) at (+1.5, 0) from the cabin centre."""
    hotel_doc["lifts"]["Lift1"]["yaw"] = math.pi / 2
    site = import_rmf(_write(tmp_path, hotel_doc))
    lift = site.lifts["Lift1"]
    assert lift.cabin.yaw == pytest.approx(math.pi / 2)
    x, y = lift.door_positions["L2"]
    assert (x - lift.cabin.x, y - lift.cabin.y) == pytest.approx((1.5, 0.0), abs=1e-4)


SQUARE = [(100.0, 100.0), (400.0, 120.0), (380.0, 420.0), (90.0, 400.0), (250.0, 260.0)]
"""Pixel points of a synthetic two-level building: four fiducial corners and a lift cabin vertex."""


def _two_level_doc(theta: float, k: float, shift: tuple[float, float], metres: float) -> Doc:
    """Level G holds SQUARE; level U holds SQUARE moved by the pixel similarity (theta, k, shift)."""
    c, s = math.cos(theta), math.sin(theta)
    moved = [(k * (c * x - s * y) + shift[0], k * (s * x + c * y) + shift[1]) for x, y in SQUARE]

    def level(points: list[tuple[float, float]], elevation: float) -> Doc:
        vertices: list[list[Any]] = [[x, y, 0, ""] for x, y in points[:4]]
        vertices.append([*points[4], 0, "", {"lift_cabin": [1, "L"]}])
        return {
            "elevation": elevation,
            "vertices": vertices,
            "fiducials": [[x, y, f"f{i}"] for i, (x, y) in enumerate(points[:4])],
            "lanes": [[i, 4, {"bidirectional": [4, True], "graph_idx": [2, 0]}] for i in range(4)],
        }

    ground = level(SQUARE, 0.0)
    ground["measurements"] = [[0, 1, {"distance": [3, metres]}]]
    return {
        "name": "tower",
        "levels": {"G": ground, "U": level(moved, 4.0)},
        "lifts": {"L": {"x": SQUARE[4][0], "y": SQUARE[4][1], "level_doors": {"G": [], "U": []}}},
    }


@settings(max_examples=25, deadline=None)
@given(
    theta=st.floats(-math.pi, math.pi),
    k=st.floats(0.5, 2.0),
    shift=st.tuples(st.floats(-500, 500), st.floats(-500, 500)),
    metres=st.floats(5.0, 50.0),
)
def test_fiducial_alignment_undoes_any_similarity_of_a_drawing(
    tmp_path_factory: pytest.TempPathFactory,
    theta: float,
    k: float,
    shift: tuple[float, float],
    metres: float,
) -> None:
    """A level drawn rotated, scaled and shifted lands on the reference level: every vertex, the lift."""
    doc = _two_level_doc(theta, k, shift, metres)
    site = import_rmf(_write(tmp_path_factory.mktemp("sim"), doc))
    for i in range(5):
        g, u = site.nodes[f"G:{i}"], site.nodes[f"U:{i}"]
        assert math.dist((g.x, g.y), (u.x, u.y)) < 1e-3
    assert site.lifts["L"].landings == {"G": "G:4", "U": "U:4"}
    scale = metres / math.dist(SQUARE[0], SQUARE[1]) / k  # U's own metres per pixel (from its fiducials)
    frame = site.floors["U"].frame
    for i, (x, y, *_) in enumerate(doc["levels"]["U"]["vertices"]):
        node = site.nodes[f"U:{i}"]
        assert frame.to_floor(node.x, node.y) == pytest.approx((x * scale, -y * scale), abs=2e-3)


# ---- the office -------------------------------------------------------------------------------


def test_office_waypoint_flags_decide_the_place_kinds(office: Site) -> None:
    """Charger, pickup dispenser, dropoff ingestor, parking and holding flags map to place kinds."""
    kinds = {name: p.kind for name, p in office.places.items()}
    assert kinds["tinyRobot1_charger"] == kinds["tinyRobot2_charger"] == PlaceKind.CHARGER
    assert kinds["pantry"] == PlaceKind.PICKUP
    assert kinds["hardware_2"] == kinds["coe"] == PlaceKind.DROPOFF
    assert kinds["supplies"] == PlaceKind.PARKING
    assert kinds["lounge"] == PlaceKind.HOLDING
    assert kinds["presupplies"] == PlaceKind.WAYPOINT  # is_parking_spot: [4, false] does not count
    assert office.places["pantry"].tags["pickup_dispenser"] == "coke_dispenser"


def test_office_doors_sit_on_exactly_the_lanes_that_cross_them(office: Site, rmf_dir: Path) -> None:
    """Every lane crossing a door segment carries the door, no other lane does (checked with shapely)."""
    raw = _load(rmf_dir / "office.building.yaml")["levels"]["L1"]
    assert {d.id: d.kind for d in office.doors.values()} == {
        "main_door": "double_hinged",
        "coe_door": "hinged",
        "hardware_door": "hinged",
    }
    doors = {
        d[2]["name"][1]: LineString([raw["vertices"][d[0]][:2], raw["vertices"][d[1]][:2]])
        for d in raw["doors"]
    }
    flagged = 0
    for edge in office.edges.values():
        a, b = (int(n.split(":")[1]) for n in (edge.a, edge.b))
        lane = LineString([raw["vertices"][a][:2], raw["vertices"][b][:2]])
        crossing = [name for name, seg in doors.items() if lane.intersects(seg)]
        assert crossing == ([edge.door] if edge.door else [])
        flagged += edge.door is not None
    assert flagged >= 2
    assert all(d.building == "building" for d in office.doors.values())


# ---- the WGS84 campus -------------------------------------------------------------------------


def test_campus_is_an_outdoor_graph_about_the_mean_vertex(campus: Site, campus_raw: Doc) -> None:
    """wgs84: no floors or buildings, every node outdoor, the origin is the mean vertex to 1e-6°."""
    assert campus.floors == {} and campus.buildings == {} and campus.lifts == {}
    assert all(n.floor is None for n in campus.nodes.values())
    verts = campus_raw["levels"]["L1"]["vertices"]
    lat = sum(v[1] for v in verts) / len(verts)
    lon = sum(v[0] for v in verts) / len(verts)
    assert (campus.origin.lat, campus.origin.lon, campus.origin.alt) == (round(lat, 6), round(lon, 6), 0.0)


def test_campus_edge_lengths_match_geodesic_distances(campus: Site, campus_raw: Doc) -> None:
    """Consecutive outdoor vertices are tens of metres apart and their ENU distance is the geodesic ±0.5 %."""
    verts = campus_raw["levels"]["L1"]["vertices"]
    a, b = campus.nodes["L1:9"], campus.nodes["L1:10"]
    d = math.dist((a.x, a.y), (b.x, b.y))
    assert 10 < d < 100
    for edge in campus.edges.values():
        i, j = (int(n.split(":")[1]) for n in (edge.a, edge.b))
        geodesic = float(vdist(verts[i][1], verts[i][0], verts[j][1], verts[j][0])[0])
        na, nb = campus.nodes[edge.a], campus.nodes[edge.b]
        assert math.dist((na.x, na.y), (nb.x, nb.y)) == pytest.approx(geodesic, rel=5e-3)


def test_one_way_lanes_become_one_way_edges_in_lane_direction(campus: Site, campus_raw: Doc) -> None:
    """bidirectional: false lanes are oneway edges from v1 to v2; bidirectional ones are two-way."""
    lanes = campus_raw["levels"]["L1"]["lanes"]
    for v1, v2, params in lanes:
        edge = campus.edges[f"L1:{v1}-{v2}"]
        assert (edge.a, edge.b) == (f"L1:{v1}", f"L1:{v2}")
        assert edge.oneway is not params["bidirectional"][1]
    assert sum(e.oneway for e in campus.edges.values()) == 127


def test_false_charger_flag_is_a_plain_waypoint(campus: Site) -> None:
    """side_road has is_charger: [4, false] → WAYPOINT; room_2 (is_charger true) → CHARGER."""
    assert campus.places["side_road"].kind == PlaceKind.WAYPOINT
    assert campus.places["room_2"].kind == PlaceKind.CHARGER


# ---- with the rest of maps --------------------------------------------------------------------


def test_hotel_route_from_lobby_to_l3_room1_rides_a_lift(hotel: Site) -> None:
    """indoor profile: lobby → L3_room1 uses a lift and passes floors L1 then L3."""
    route = Router(hotel, "indoor").route("lobby", "L3_room1")
    assert route.floors == ["L1", "L3"]
    assert len(route.lifts) == 1 and route.lifts[0] in hotel.lifts
    assert route.length_m > 0 and route.time_s > route.length_m / hotel.profiles["indoor"].max_speed


def test_imported_hotel_round_trips_through_our_format(hotel: Site, tmp_path: Path) -> None:
    """save_site then load_site gives back exactly the imported hotel."""
    path = tmp_path / "hotel.yaml"
    save_site(hotel, path)
    assert load_site(path) == hotel


# ---- malformed input --------------------------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _delete(*path: Any) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


BROKEN: list[tuple[str, Callable[[Doc], None], str, str]] = [
    ("no levels", _delete("levels"), "levels", "missing"),
    ("levels not a mapping", _set(("levels",), ["L1"]), "levels", "expected a mapping"),
    ("level without vertices", _delete("levels", "L2", "vertices"), "levels.L2.vertices", "missing"),
    ("lift without x", _delete("lifts", "Lift1", "x"), "lifts.Lift1.x", "missing"),
    (
        "unknown lift floor",
        _set(("lifts", "Lift1", "level_doors", "L9"), ["lift1_door"]),
        "lifts.Lift1.level_doors.L9",
        "level L9 does not exist",
    ),
    (
        "unknown lift door",
        _set(("lifts", "Lift1", "level_doors", "L2"), ["nope"]),
        "lifts.Lift1.level_doors.L2",
        "door nope",
    ),
    (
        "lane to a missing vertex",
        _set(("levels", "L2", "lanes", 4, 1), 212),
        "levels.L2.lanes[4]",
        "vertex 212",
    ),
    ("lane not a list", _set(("levels", "L2", "lanes", 4), "oops"), "levels.L2.lanes[4]", "expected a list"),
    ("vertex index a string", _set(("levels", "L2", "lanes", 4, 0), "7"), "levels.L2.lanes[4]", "integer"),
    (
        "coordinate a string",
        _set(("levels", "L1", "vertices", 3, 0), "12.5"),
        "levels.L1.vertices[3].x",
        "number",
    ),
    ("vertex not a list", _set(("levels", "L1", "vertices", 3), 12.5), "levels.L1.vertices[3]", "list"),
    (
        "zero-length measurement",
        _set(("levels", "L1", "measurements", 0), [53, 53, {"distance": [3, 3.4]}]),
        "levels.L1.measurements[0]",
        "zero length",
    ),
    (
        "measurement without distance",
        _set(("levels", "L1", "measurements", 0, 2), {}),
        "levels.L1.measurements[0].distance",
        "missing",
    ),
    ("elevation a string", _set(("levels", "L2", "elevation"), "8 m"), "levels.L2.elevation", "number"),
    (
        "graph_idx a string",
        _set(("levels", "L1", "lanes", 0, 2, "graph_idx"), [2, "a"]),
        "levels.L1.lanes[0].graph_idx",
        "graph",
    ),
    ("door without name", _delete("levels", "L1", "doors", 0, 2, "name"), "levels.L1.doors[0]", "no name"),
    (
        "bad parameter",
        _set(("levels", "L1", "vertices", 59, 4, "is_holding_point"), [4]),
        "levels.L1.vertices[59].params.is_holding_point",
        "[type, value]",
    ),
    ("unknown reference level", _set(("reference_level_name",), "L7"), "reference_level_name", "L7"),
    ("lift of zero size", _set(("lifts", "Lift2", "width"), 0), "lifts.Lift2", "positive size"),
    (
        "unknown coordinate system",
        _set(("coordinate_system",), "web_mercator"),
        "coordinate_system",
        "not supported",
    ),
]


@pytest.mark.parametrize(("change", "element", "what"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_hotel_raises_one_line_naming_file_and_element(
    tmp_path: Path, hotel_doc: Doc, change: Callable[[Doc], None], element: str, what: str
) -> None:
    """Each malformed hotel copy raises MapFormatError with the file, the dotted element and the reason."""
    change(hotel_doc)
    path = _write(tmp_path, hotel_doc)
    with pytest.raises(MapFormatError) as info:
        import_rmf(path)
    err = info.value
    assert (err.file, err.element) == (str(path), element)
    assert what in err.what
    assert str(err).startswith(f"{path}: {element}: ") and "\n" not in str(err)


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    """A YAML syntax error is reported with its line and column."""
    path = tmp_path / "bad.building.yaml"
    path.write_text("name: hotel\nlevels:\n  L1: {elevation: 0\n  L2: x\n", encoding="utf-8")
    with pytest.raises(MapFormatError, match=r"YAML syntax error") as info:
        import_rmf(path)
    assert info.value.element.startswith("line 4, column ")


def test_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    """A YAML list at the root is not a building."""
    with pytest.raises(MapFormatError, match="expected a mapping") as info:
        import_rmf(_write(tmp_path, ["levels"]))
    assert info.value.element == "(document)"


def test_missing_file_is_a_map_error(tmp_path: Path) -> None:
    """A file that cannot be read raises MapError naming it, not OSError."""
    path = tmp_path / "none.building.yaml"
    with pytest.raises(MapError, match="cannot read") as info:
        import_rmf(path)
    assert info.value.file == str(path)


def test_lanes_in_wgs84_maps_need_lon_lat_vertices(tmp_path: Path, campus_raw: Doc) -> None:
    """A wgs84 vertex outside the lon/lat ranges is refused."""
    doc = copy.deepcopy(campus_raw)
    doc["levels"]["L1"]["vertices"][2][1] = 123.0
    with pytest.raises(MapFormatError, match="not a WGS84") as info:
        import_rmf(_write(tmp_path, doc))
    assert info.value.element == "levels.L1.vertices[2]"
