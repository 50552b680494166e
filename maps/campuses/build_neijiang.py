"""Build the sample campus: a teachers' college near Neijiang, Sichuan (see ../shared/SCENARIO.md).

The campus is about 1.5 km × 1 km in the local ENU frame (x east, y north, metres; origin at the
campus centre, 29.58° N 105.06° E, 350 m). ``build()`` makes the ``Site``; running the module saves it
as ``maps/campuses/neijiang.yaml`` + ``neijiang.geojson`` (the committed files; a test checks that they
equal ``build()``, so edit this script and re-run it rather than editing the files)::

    python -m maps.campuses.build_neijiang

What is on it
    * a road grid (6 m; rd-north one-way eastbound, rd-east one-way southbound, the dormitory service
      road rd-dorm one-way westbound), 2.5–4 m paths, 1.0–1.2 m footpaths carts are too wide for,
      library front steps, a stepped path up the hill behind the teaching building, kerbs where
      footpaths cross roads, and a bollard closing the library avenue to vehicles;
    * the post station (邮政驿站) with a yard of 3 cart parking bays and 3 chargers, and a fourth
      cart charger at the activity centre;
    * 6 dormitory blocks and the student activity centre (师生活动中心), each served by a cart stop,
      plus stops at the two buildings with a mailroom (cart ↔ indoor robot hand-off);
    * canteen and library (named waypoints at their fronts);
    * the administration building (行政楼: 10 floors, 2 lifts, mailroom 收发室 on 1F as the hand-off
      point, IoT fire doors and office doors) and the teaching building (教学楼: 6 floors, 2 lifts, an
      access gate 闸机 on its entrance, a hand-off point in the lobby); both have an indoor charger.

Each interior is a slab 60 m × 18 m: a corridor along its length, the lift core in the middle of the
north side, six rooms per floor, fire doors either side of the lift hall, 3.6 m per storey.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from maps.model import (
    Building,
    Cabin,
    Door,
    Edge,
    Floor,
    FloorFrame,
    Gate,
    GeoOrigin,
    Lift,
    Node,
    Place,
    PlaceKind,
    Site,
)

ORIGIN = GeoOrigin(lat=29.58, lon=105.06, alt=350.0)
STOREY_M = 3.6
OUT_FILE = Path(__file__).with_name("neijiang.yaml")

Point = tuple[float, float]

# ---- outdoor network ----------------------------------------------------------------------------

# Road grid: rows y = -480 (south), 0 (middle), 450 (north); columns x = -720, -250, -50 (boulevard),
# 150, 720. Other nodes are where paths branch off or where places are.
# fmt: off
_OUTDOOR_NODES: dict[str, Point] = {
    # junctions
    "J-W1": (-720.0, -480.0), "J-CW1": (-250.0, -480.0), "J-B1": (-50.0, -480.0),
    "J-CE1": (150.0, -480.0), "J-E1": (720.0, -480.0),
    "J-W2": (-720.0, 0.0), "J-CW2": (-250.0, 0.0), "J-B2": (-50.0, 0.0),
    "J-CE2": (150.0, 0.0), "J-E2": (720.0, 0.0),
    "J-W3": (-720.0, 450.0), "J-CW3": (-250.0, 450.0), "J-CE3": (150.0, 450.0), "J-E3": (720.0, 450.0),
    "main-gate": (-50.0, -530.0),
    # post station and its yard
    "sta-gate": (-570.0, -480.0), "station": (-570.0, -455.0),
    "yard-1": (-545.0, -455.0), "yard-2": (-525.0, -455.0), "yard-3": (-505.0, -455.0),
    "park-1": (-545.0, -445.0), "park-2": (-525.0, -445.0), "park-3": (-505.0, -445.0),
    "chg-1": (-545.0, -465.0), "chg-2": (-525.0, -465.0), "chg-3": (-505.0, -465.0),
    # administration building
    "adm-gate": (-430.0, -480.0), "adm-front": (-430.0, -445.0),
    # activity centre (on the boulevard)
    "act-stop": (-50.0, -210.0), "act-chg": (-68.0, -240.0),
    # dormitory service road, east to west
    "J-E-dorm": (720.0, -220.0), "dorm6-stop": (570.0, -220.0), "dorm3-stop": (530.0, -220.0),
    "dorm5-stop": (420.0, -220.0), "dorm2-stop": (380.0, -220.0), "dorm4-stop": (270.0, -220.0),
    "dorm1-stop": (230.0, -220.0), "J-CE-dorm": (150.0, -220.0),
    # canteen
    "can-gate": (400.0, 0.0), "can-front": (400.0, 40.0),
    # library
    "lib-avenue": (-50.0, 25.0), "lib-plaza": (-50.0, 200.0), "lib-door": (-50.0, 213.0),
    "lib-svc": (-250.0, 200.0),
    # teaching building
    "tea-gate": (-470.0, 0.0), "tea-front": (-470.0, 185.0), "tea-hill": (-560.0, 270.0),
    "tea-north": (-560.0, 450.0),
}
# fmt: on


@dataclass(frozen=True, slots=True)
class _Way:
    """A chain of outdoor nodes with one cross-section; edge ids are ``id`` or ``id-1``, ``id-2``..."""

    id: str
    nodes: tuple[str, ...]
    width: float
    speed: float | None
    oneway: bool = False
    kerb: bool = False
    step: bool = False
    barrier: str | None = None
    geometry: tuple[Point, ...] = ()  # intermediate points, for two-node ways only


_ROAD_W, _PATH_W = 6.0, 3.0
_MAIN_V, _ROAD_V, _PATH_V, _FOOT_V = 5.0, 4.0, 2.5, 1.5

_WAYS: tuple[_Way, ...] = (
    # roads
    _Way("rd-south", ("J-W1", "sta-gate", "adm-gate", "J-CW1", "J-B1", "J-CE1", "J-E1"), _ROAD_W, _MAIN_V),
    _Way("rd-middle", ("J-W2", "tea-gate", "J-CW2", "J-B2", "J-CE2", "can-gate", "J-E2"), _ROAD_W, _MAIN_V),
    _Way("rd-north", ("J-W3", "tea-north", "J-CW3", "J-CE3", "J-E3"), _ROAD_W, _ROAD_V, oneway=True),
    _Way("rd-west", ("J-W1", "J-W2", "J-W3"), _ROAD_W, _ROAD_V),
    _Way("rd-cw", ("J-CW1", "J-CW2", "lib-svc", "J-CW3"), _ROAD_W, _ROAD_V),
    _Way("rd-ce", ("J-CE1", "J-CE-dorm", "J-CE2", "J-CE3"), _ROAD_W, _ROAD_V),
    _Way("rd-east", ("J-E3", "J-E2", "J-E-dorm", "J-E1"), _ROAD_W, _ROAD_V, oneway=True),
    _Way("rd-boulevard", ("J-B1", "act-stop", "J-B2"), _ROAD_W, _MAIN_V),
    _Way("rd-gate", ("main-gate", "J-B1"), 8.0, _ROAD_V),
    _Way(
        "rd-dorm",
        (
            "J-E-dorm",
            "dorm6-stop",
            "dorm3-stop",
            "dorm5-stop",
            "dorm2-stop",
            "dorm4-stop",
            "dorm1-stop",
            "J-CE-dorm",
        ),
        _ROAD_W,
        _ROAD_V,
        oneway=True,
    ),
    # station yard and driveways
    _Way("pa-station", ("sta-gate", "station", "yard-1", "yard-2", "yard-3"), 4.0, _PATH_V),
    _Way("pa-park-1", ("yard-1", "park-1"), _PATH_W, _PATH_V),
    _Way("pa-park-2", ("yard-2", "park-2"), _PATH_W, _PATH_V),
    _Way("pa-park-3", ("yard-3", "park-3"), _PATH_W, _PATH_V),
    _Way("pa-chg-1", ("yard-1", "chg-1"), _PATH_W, _PATH_V),
    _Way("pa-chg-2", ("yard-2", "chg-2"), _PATH_W, _PATH_V),
    _Way("pa-chg-3", ("yard-3", "chg-3"), _PATH_W, _PATH_V),
    _Way("pa-adm", ("adm-gate", "adm-front"), 4.0, _PATH_V),
    _Way("pa-act-chg", ("act-stop", "act-chg"), _PATH_W, _PATH_V),
    _Way("pa-canteen", ("can-gate", "can-front"), _PATH_W, _PATH_V),
    _Way("pa-tea", ("tea-gate", "tea-front"), _PATH_W, _PATH_V),
    _Way("pa-lib-svc", ("lib-svc", "lib-plaza"), _PATH_W, _PATH_V),
    _Way("pa-lib-avenue", ("lib-avenue", "lib-plaza"), 4.0, _PATH_V),
    _Way("pa-tea-hill", ("tea-hill", "tea-north"), 2.5, _PATH_V),
    # obstacles carts must avoid
    _Way("ba-lib-avenue", ("J-B2", "lib-avenue"), 4.0, _PATH_V, barrier="bollard"),
    _Way("st-lib", ("lib-plaza", "lib-door"), 8.0, None, step=True),
    _Way("st-tea-hill", ("tea-front", "tea-hill"), 2.5, None, step=True, geometry=((-520.0, 200.0),)),
    # footpaths (too narrow for carts; kerbs where they meet a road)
    _Way("fp-adm-station", ("adm-front", "yard-3"), 1.0, _FOOT_V, geometry=((-470.0, -450.0),)),
    _Way(
        "fp-dorm-canteen",
        ("dorm5-stop", "can-gate"),
        1.2,
        _FOOT_V,
        kerb=True,
        geometry=((475.0, -200.0), (475.0, -60.0)),
    ),
    _Way(
        "fp-tea-library",
        ("tea-front", "lib-svc"),
        1.0,
        _FOOT_V,
        kerb=True,
        geometry=((-400.0, 170.0), (-300.0, 190.0)),
    ),
)


def _add_outdoor(site: Site) -> None:
    for nid, (x, y) in _OUTDOOR_NODES.items():
        site.add_node(Node(nid, x, y))
    for way in _WAYS:
        pairs = list(zip(way.nodes, way.nodes[1:], strict=False))
        for i, (a, b) in enumerate(pairs, start=1):
            eid = way.id if len(pairs) == 1 else f"{way.id}-{i}"
            site.add_edge(
                Edge(
                    eid,
                    a,
                    b,
                    oneway=way.oneway,
                    width=way.width,
                    speed_limit=way.speed,
                    kerb=way.kerb,
                    step=way.step,
                    barrier=way.barrier,
                    geometry=way.geometry,
                )
            )


# ---- buildings without interiors ------------------------------------------------------------------


def _rect(x0: float, y0: float, w: float, h: float) -> tuple[Point, ...]:
    return ((x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h))


_PLAIN_BUILDINGS: tuple[Building, ...] = (
    Building("STA", "Post station", "邮政驿站", _rect(-600.0, -435.0, 60.0, 30.0)),
    Building("ACT", "Student activity centre", "师生活动中心", _rect(-30.0, -240.0, 60.0, 60.0)),
    Building("CAN", "Canteen", "食堂", _rect(340.0, 60.0, 120.0, 70.0)),
    Building("LIB", "Library", "图书馆", _rect(-100.0, 215.0, 100.0, 70.0)),
    *(
        Building(f"DORM{i}", f"Dormitory {i}", f"{i}号学生公寓", _rect(x - 40.0, y0, 80.0, 60.0))
        for i, x, y0 in (
            (1, 230.0, -320.0),
            (2, 380.0, -320.0),
            (3, 530.0, -320.0),
            (4, 270.0, -180.0),
            (5, 420.0, -180.0),
            (6, 570.0, -180.0),
        )
    ),
)

_OUTDOOR_PLACES: tuple[Place, ...] = (
    Place("post_station", PlaceKind.STATION, "station", "邮政驿站"),
    *(Place(f"cart_parking_{i}", PlaceKind.PARKING, f"park-{i}", f"无人车停车位{i}") for i in (1, 2, 3)),
    *(Place(f"cart_charger_{i}", PlaceKind.CHARGER, f"chg-{i}", f"无人车充电桩{i}") for i in (1, 2, 3)),
    Place("cart_charger_4", PlaceKind.CHARGER, "act-chg", "无人车充电桩4（活动中心）"),
    *(
        Place(
            f"stop_dorm_{i}",
            PlaceKind.STOP,
            f"dorm{i}-stop",
            f"{i}号学生公寓停靠点",
            tags={"serves": f"DORM{i}"},
        )
        for i in range(1, 7)
    ),
    Place("stop_activity_centre", PlaceKind.STOP, "act-stop", "师生活动中心停靠点", tags={"serves": "ACT"}),
    Place("stop_adm", PlaceKind.STOP, "adm-front", "行政楼停靠点", tags={"serves": "ADM"}),
    Place("stop_tea", PlaceKind.STOP, "tea-front", "教学楼停靠点", tags={"serves": "TEA"}),
    Place("canteen", PlaceKind.WAYPOINT, "can-front", "食堂"),
    Place("library", PlaceKind.WAYPOINT, "lib-plaza", "图书馆"),
    Place("campus_gate", PlaceKind.WAYPOINT, "main-gate", "校门"),
)

# ---- buildings with interiors --------------------------------------------------------------------

_SLAB_LENGTH, _SLAB_DEPTH = 60.0, 18.0
_CORRIDOR_V = 9.0
_CORRIDOR_US = (6.0, 12.0, 18.0, 24.0, 30.0, 36.0, 42.0, 48.0, 54.0)
_HALL_U = 30.0
_ROOM_SLOTS: tuple[tuple[str, float], ...] = (
    ("S", 6.0),
    ("N", 12.0),
    ("S", 18.0),
    ("S", 42.0),
    ("N", 48.0),
    ("S", 54.0),
)
_ROOM_V = {"S": 3.0, "N": 15.0}
_LIFT_US = (27.0, 33.0)
_LIFT_V = 15.5

RoomSpec = tuple[str, PlaceKind, str] | None
"""(place name, kind, Chinese label) of a ground-floor room slot; None leaves the slot empty."""


@dataclass(frozen=True, slots=True)
class _Interior:
    """A slab building with an indoor graph on every floor."""

    building: Building
    origin: Point  # south-west corner of the footprint
    floors: int
    front: str  # the outdoor node in front of the entrance
    ground: tuple[RoomSpec, ...]  # the six room slots of 1F
    upper: tuple[tuple[PlaceKind, str], ...]  # kind and label suffix of the six slots upstairs
    entrance_door: Door | None = None
    entrance_gate: Gate | None = None
    lift_wait_s: float = 20.0

    @property
    def id(self) -> str:
        return self.building.id

    def at(self, u: float, v: float) -> Point:
        """ENU point of building-local (u along the slab, v across it)."""
        return (self.origin[0] + u, self.origin[1] + v)

    def floor_id(self, level: int) -> str:
        return f"{self.id}-{level}F"


_ADM = _Interior(
    building=Building("ADM", "Administration building", "行政楼", _rect(-460.0, -430.0, 60.0, 18.0)),
    origin=(-460.0, -430.0),
    floors=10,
    front="adm-front",
    ground=(
        ("adm_101", PlaceKind.ROOM, "行政楼101室"),
        ("adm_charger", PlaceKind.CHARGER, "行政楼机器人充电桩"),
        ("adm_mailroom", PlaceKind.HANDOFF, "行政楼收发室"),
        ("adm_reception", PlaceKind.ROOM, "行政楼接待室"),
        ("adm_102", PlaceKind.ROOM, "行政楼102室"),
        ("adm_103", PlaceKind.ROOM, "行政楼103室"),
    ),
    upper=tuple((PlaceKind.OFFICE, "办公室") for _ in _ROOM_SLOTS),
    entrance_door=Door("ADM-main", "Main entrance", "ADM", kind="sliding", iot="adm/main", pass_s=4.0),
    lift_wait_s=25.0,
)

_TEA = _Interior(
    building=Building("TEA", "Teaching building", "教学楼", _rect(-500.0, 200.0, 60.0, 18.0)),
    origin=(-500.0, 200.0),
    floors=6,
    front="tea-front",
    ground=(
        ("tea_101", PlaceKind.ROOM, "教学楼101教室"),
        ("tea_charger", PlaceKind.CHARGER, "教学楼机器人充电桩"),
        ("tea_handoff", PlaceKind.HANDOFF, "教学楼交接点"),
        None,
        ("tea_102", PlaceKind.ROOM, "教学楼102教室"),
        ("tea_103", PlaceKind.ROOM, "教学楼103教室"),
    ),
    upper=(
        (PlaceKind.ROOM, "教室"),
        (PlaceKind.OFFICE, "教师办公室"),
        (PlaceKind.ROOM, "教室"),
        (PlaceKind.ROOM, "教室"),
        (PlaceKind.OFFICE, "教师办公室"),
        (PlaceKind.ROOM, "教室"),
    ),
    entrance_gate=Gate("TEA-gate", "Entrance gate", "TEA", iot="tea/gate"),
)

_INTERIORS = (_ADM, _TEA)


def _room_spec(spec: _Interior, level: int, slot: int) -> RoomSpec:
    if level == 1:
        return spec.ground[slot]
    kind, suffix = spec.upper[slot]
    number = f"{level}{slot + 1:02d}"
    return (f"{spec.id.lower()}_{number}", kind, f"{spec.building.label}{number}{suffix}")


def _add_floor(site: Site, spec: _Interior, level: int) -> None:
    """One floor: corridor, fire doors by the lift hall, lift landings and the six room slots."""
    fid = spec.floor_id(level)
    site.floors[fid] = Floor(
        fid, spec.id, f"{level}F", round((level - 1) * STOREY_M, 6), FloorFrame(*spec.origin)
    )
    cids = [f"{fid}-hall" if u == _HALL_U else f"{fid}-c{u:.0f}" for u in _CORRIDOR_US]
    for nid, u in zip(cids, _CORRIDOR_US, strict=True):
        site.add_node(Node(nid, *spec.at(u, _CORRIDOR_V), floor=fid))
    for (a, u), b in zip(zip(cids, _CORRIDOR_US, strict=True), cids[1:], strict=False):
        door = None
        if _HALL_U in (u, u + 6.0):
            door = _add_fire_door(site, spec, fid, "W" if u < _HALL_U else "E")
        site.add_edge(Edge(f"{a}-{b.rsplit('-', 1)[1]}", a, b, width=2.4, speed_limit=1.0, door=door))
    for k, u in enumerate(_LIFT_US, start=1):
        landing = f"{fid}-L{k}"
        site.add_node(Node(landing, *spec.at(u, _LIFT_V), floor=fid))
        site.add_edge(Edge(f"{landing}-hall", landing, f"{fid}-hall", width=1.1, speed_limit=0.5))
    for slot, (side, u) in enumerate(_ROOM_SLOTS):
        room = _room_spec(spec, level, slot)
        if room is not None:
            _add_room(site, spec, fid, (slot, u, side), *room)


def _add_fire_door(site: Site, spec: _Interior, fid: str, side: str) -> str:
    did = f"{fid}-fire-{side}"
    site.doors[did] = Door(
        did,
        f"{fid} fire door {side}",
        spec.id,
        kind="double",
        iot=f"{spec.id.lower()}/{fid.split('-')[1].lower()}/fire-{side.lower()}",
    )
    return did


def _add_room(
    site: Site,
    spec: _Interior,
    fid: str,
    where: tuple[int, float, str],
    name: str,
    kind: PlaceKind,
    label: str,
) -> None:
    """A room node off the corridor; its doorway has an IoT door unless it is a charger alcove."""
    slot, u, side = where
    nid = f"{fid}-{name.split('_', 1)[1]}"
    site.add_node(Node(nid, *spec.at(u, _ROOM_V[side]), floor=fid))
    corridor = f"{fid}-c{u:.0f}"
    door = None
    if kind != PlaceKind.CHARGER:
        door = f"{fid}-door-{slot + 1:02d}"
        level = fid.split("-")[1].lower()
        site.doors[door] = Door(
            door, f"{name} door", spec.id, iot=f"{spec.id.lower()}/{level}/door-{slot + 1:02d}"
        )
    site.add_edge(
        Edge(
            f"{corridor}-{nid.rsplit('-', 1)[1]}",
            corridor,
            nid,
            width=0.9 if door else 1.2,
            speed_limit=0.5,
            door=door,
        )
    )
    site.places[name] = Place(name, kind, nid, label, tags={"building": spec.id})


def _add_entrance(site: Site, spec: _Interior) -> None:
    """The entrance: outdoor front → 1F entrance node (door or gate on it) → the lift hall."""
    fid = spec.floor_id(1)
    inside = f"{fid}-entrance"
    site.add_node(Node(inside, *spec.at(_HALL_U, 1.0), floor=fid))
    if spec.entrance_door is not None:
        site.doors[spec.entrance_door.id] = spec.entrance_door
    if spec.entrance_gate is not None:
        site.gates[spec.entrance_gate.id] = spec.entrance_gate
    site.add_edge(
        Edge(
            f"{spec.id}-entrance",
            spec.front,
            inside,
            width=1.1 if spec.entrance_gate else 2.0,
            speed_limit=1.0,
            door=spec.entrance_door.id if spec.entrance_door else None,
            gate=spec.entrance_gate.id if spec.entrance_gate else None,
        )
    )
    site.add_edge(Edge(f"{fid}-entrance-hall", inside, f"{fid}-hall", width=3.0, speed_limit=1.0))


def _add_lifts(site: Site, spec: _Interior) -> None:
    for k, u in enumerate(_LIFT_US, start=1):
        x, y = spec.at(u, _LIFT_V)
        levels = range(1, spec.floors + 1)
        site.lifts[f"{spec.id}-L{k}"] = Lift(
            id=f"{spec.id}-L{k}",
            building=spec.id,
            name=f"{spec.building.name} lift {k}",
            cabin=Cabin(x, y, width=1.6, depth=1.4),
            landings={spec.floor_id(n): f"{spec.floor_id(n)}-L{k}" for n in levels},
            door_positions={spec.floor_id(n): (x, y - 0.7) for n in levels},
            wait_s=spec.lift_wait_s,
            floor_travel_s=2.0,
        )


def _add_interior(site: Site, spec: _Interior) -> None:
    site.buildings[spec.id] = spec.building
    for level in range(1, spec.floors + 1):
        _add_floor(site, spec, level)
    _add_entrance(site, spec)
    _add_lifts(site, spec)


# ---- the site ----------------------------------------------------------------------------------


def build() -> Site:
    """The Neijiang sample campus, built from the tables above."""
    site = Site("neijiang", ORIGIN, label="内江某师范学院（示例校园）")
    _add_outdoor(site)
    for b in _PLAIN_BUILDINGS:
        site.buildings[b.id] = b
    for spec in _INTERIORS:
        _add_interior(site, spec)
    for place in _OUTDOOR_PLACES:
        site.places[place.name] = place
    return site


def main(argv: list[str] | None = None) -> None:
    """Save ``build()`` to the file given (default: the committed ``neijiang.yaml``)."""
    from maps.io import save_site

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUT_FILE
    for path in save_site(build(), out):
        print(path)


if __name__ == "__main__":
    main()
