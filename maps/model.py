"""The campus model: one site, its outdoor network, buildings, floors, lifts, doors, gates and places.

Coordinates
    Every node lives in the site's local **ENU** frame (x east, y north, metres) whose origin is the
    site's geodetic origin (``GeoOrigin``). Indoor nodes carry the id of their floor; the floor gives
    the elevation and, optionally, the transform from the ENU frame to the floor's own map frame (what
    an indoor robot localizes in). Outdoor nodes have ``floor = None``.

Graph
    ``Site.edges`` are the network's passages (outdoor paths, indoor corridors, entrance links).
    Each ``Edge`` is one passage between two nodes; ``oneway`` edges may only be driven from ``a`` to
    ``b``. Lifts are not edges: ``Lift.landings`` names the node the cabin stands on at each floor, and
    routing (``maps.routing``) joins the landings with ride edges. An edge from an outdoor node to an
    indoor node is a building **entrance** (``Site.entrances``).

This module holds data only: no I/O, no routing. Loaders live in ``maps.io`` and ``maps.importers``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

OUTDOOR = "outdoor"
"""The pseudo floor id of outdoor nodes in route summaries."""


class PlaceKind(StrEnum):
    """What a named place is for; decides which robot profile must be able to reach it."""

    STATION = "station"  # the campus post station (邮政驿站 / 揽投部)
    STOP = "stop"  # a cart stop (停靠点)
    HANDOFF = "handoff"  # cart ↔ indoor robot hand-off point, e.g. a mailroom (收发室 / 交接点)
    OFFICE = "office"
    ROOM = "room"
    CHARGER = "charger"
    PARKING = "parking"
    HOLDING = "holding"  # a place to wait (Open-RMF holding point)
    PICKUP = "pickup"  # Open-RMF pickup dispenser
    DROPOFF = "dropoff"  # Open-RMF dropoff ingestor
    WAYPOINT = "waypoint"  # any other named node


@dataclass(frozen=True, slots=True)
class GeoOrigin:
    """The geodetic origin of the site's ENU frame (WGS84 degrees, metres above the ellipsoid)."""

    lat: float
    lon: float
    alt: float = 0.0


@dataclass(frozen=True, slots=True)
class Node:
    """A graph vertex. ``floor`` is ``None`` outdoors, else the id of a ``Floor``."""

    id: str
    x: float
    y: float
    floor: str | None = None

    @property
    def outdoor(self) -> bool:
        return self.floor is None


@dataclass(frozen=True, slots=True)
class Edge:
    """A passage between nodes ``a`` and ``b``.

    ``length`` is the travelled length in metres; ``None`` means the length of ``geometry`` (or of the
    straight segment when there is no geometry). ``geometry`` holds the intermediate ENU points only,
    the end points are the nodes'. ``speed_limit`` is in m/s (``None``: the profile's own speed).
    ``width`` is the free width in metres (``None``: unknown, not a restriction). ``kerb`` and
    ``step`` mark a ledge a wheeled robot must climb; ``barrier`` names an obstacle that is not an
    access-controlled gate (``bollard``, ``chain``...). ``door``/``gate`` name the ``Door``/``Gate``
    placed on this passage.
    """

    id: str
    a: str
    b: str
    oneway: bool = False
    length: float | None = None
    width: float | None = None
    speed_limit: float | None = None
    kerb: bool = False
    step: bool = False
    barrier: str | None = None
    door: str | None = None
    gate: str | None = None
    geometry: tuple[tuple[float, float], ...] = ()
    tags: dict[str, str] = field(default_factory=dict, compare=True, hash=False)


@dataclass(frozen=True, slots=True)
class FloorFrame:
    """Where a floor's own map frame sits in the site ENU frame: its origin at ``(x, y)``, its x axis
    turned ``yaw`` radians counter-clockwise from east. ``p_floor = R(-yaw) · (p_enu - (x, y))``."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0

    def to_floor(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = x - self.x, y - self.y
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return (c * dx + s * dy, -s * dx + c * dy)

    def to_enu(self, x: float, y: float) -> tuple[float, float]:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return (self.x + c * x - s * y, self.y + s * x + c * y)


@dataclass(frozen=True, slots=True)
class Floor:
    """One storey of a building. ``id`` is unique on the site; ``name`` is what people call it."""

    id: str
    building: str
    name: str
    elevation: float = 0.0
    frame: FloorFrame = FloorFrame()


@dataclass(frozen=True, slots=True)
class Building:
    """A building; ``footprint`` is its outline in ENU metres (may be empty when unknown)."""

    id: str
    name: str
    label: str | None = None  # the name in Chinese, for the bilingual UI
    footprint: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Cabin:
    """A lift cabin's outline: centre (ENU), size and heading."""

    x: float
    y: float
    width: float = 1.6
    depth: float = 1.6
    yaw: float = 0.0


@dataclass(frozen=True, slots=True)
class Lift:
    """A lift (elevator). ``landings`` maps each floor served to the node the cabin stands on there.

    Timing (seconds): ``wait_s`` expected wait for the cabin after a call, ``door_open_s`` and
    ``door_close_s`` per stop, ``floor_travel_s`` per storey travelled.
    """

    id: str
    building: str
    cabin: Cabin
    landings: dict[str, str]
    name: str | None = None
    door_positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    wait_s: float = 20.0
    door_open_s: float = 3.0
    door_close_s: float = 3.0
    floor_travel_s: float = 2.5

    @property
    def floors(self) -> list[str]:
        return list(self.landings)


@dataclass(frozen=True, slots=True)
class Door:
    """A door on a passage; ``iot`` is its IoT endpoint name when it opens by itself (robopost/door/...)."""

    id: str
    name: str | None = None
    building: str | None = None
    kind: str = "hinged"
    iot: str | None = None
    pass_s: float = 6.0  # open, pass and clear


@dataclass(frozen=True, slots=True)
class Gate:
    """An access-controlled gate (闸机, barrier): it opens only for a known credential."""

    id: str
    name: str | None = None
    building: str | None = None
    iot: str | None = None
    pass_s: float = 4.0


@dataclass(frozen=True, slots=True)
class Place:
    """A named node: station, stop, hand-off point, office, charger, ..."""

    name: str
    kind: PlaceKind
    node: str
    label: str | None = None
    profile: str | None = None  # the profile that must reach it; None: the kind's default
    tags: dict[str, str] = field(default_factory=dict, compare=True, hash=False)


@dataclass(frozen=True, slots=True)
class Profile:
    """What a kind of robot may use and how fast it goes.

    ``outdoor``/``indoor`` allow outdoor and indoor nodes (an entrance edge needs both), ``lifts``
    allows lift rides, ``doors``/``gates`` allow passages with a door/gate (the robot opens them over
    IoT). ``min_width`` is the robot's width plus margin; ``kerbs``/``steps`` allow climbing them.
    """

    name: str
    max_speed: float
    outdoor: bool = True
    indoor: bool = False
    lifts: bool = False
    doors: bool = False
    gates: bool = False
    kerbs: bool = False
    steps: bool = False
    min_width: float = 0.0
    barriers: bool = False


DEFAULT_PROFILES: dict[str, Profile] = {
    "cart": Profile("cart", max_speed=3.0, outdoor=True, indoor=False, min_width=1.4, gates=True),
    "indoor": Profile(
        "indoor",
        max_speed=1.0,
        outdoor=False,
        indoor=True,
        lifts=True,
        doors=True,
        gates=True,
        min_width=0.8,
    ),
    "robot": Profile(
        "robot",
        max_speed=1.5,
        outdoor=True,
        indoor=True,
        lifts=True,
        doors=True,
        gates=True,
        min_width=0.8,
    ),
}
"""``cart``: outdoor carts (no steps, kerbs or lifts); ``indoor``: mailroom robots inside buildings;
``robot``: the indoor/outdoor "robot+" that crosses entrances."""

DEFAULT_PLACE_PROFILE: dict[PlaceKind, str] = {
    PlaceKind.STATION: "cart",
    PlaceKind.STOP: "cart",
    PlaceKind.HANDOFF: "indoor",
    PlaceKind.OFFICE: "indoor",
    PlaceKind.ROOM: "indoor",
}
"""Which profile must reach a place of each kind (map checks). Chargers and parking follow their node:
``indoor`` indoors, ``cart`` outdoors. Kinds not listed are not checked."""


@dataclass(slots=True)
class Site:
    """A whole campus (or one imported building). Mutable while built; treat as read-only after."""

    name: str
    origin: GeoOrigin
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)
    buildings: dict[str, Building] = field(default_factory=dict)
    floors: dict[str, Floor] = field(default_factory=dict)
    lifts: dict[str, Lift] = field(default_factory=dict)
    doors: dict[str, Door] = field(default_factory=dict)
    gates: dict[str, Gate] = field(default_factory=dict)
    places: dict[str, Place] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=lambda: dict(DEFAULT_PROFILES))
    label: str | None = None
    source: str | None = field(default=None, compare=False)  # the file it was read from

    # --- small helpers used by loaders, routing and the CLI -------------------------------------

    def add_node(self, node: Node) -> Node:
        self.nodes[node.id] = node
        return node

    def add_edge(self, edge: Edge) -> Edge:
        self.edges[edge.id] = edge
        return edge

    def building_of(self, node_id: str) -> str | None:
        floor = self.nodes[node_id].floor
        return None if floor is None else self.floors[floor].building

    def floors_of(self, building: str) -> list[Floor]:
        """The building's floors, lowest first."""
        return sorted((f for f in self.floors.values() if f.building == building), key=lambda f: f.elevation)

    def entrances(self) -> list[Edge]:
        """Edges that link an outdoor node with an indoor one."""
        return [e for e in self.edges.values() if self.nodes[e.a].outdoor != self.nodes[e.b].outdoor]

    def place_profile(self, place: Place) -> str | None:
        """The profile that must be able to reach ``place`` (None: not checked)."""
        if place.profile:
            return place.profile
        if place.kind in (PlaceKind.CHARGER, PlaceKind.PARKING):
            return "cart" if self.nodes[place.node].outdoor else "indoor"
        return DEFAULT_PLACE_PROFILE.get(place.kind)


def edge_points(site: Site, edge: Edge) -> list[tuple[float, float]]:
    """The polyline of an edge in ENU: a, the intermediate geometry, b."""
    a, b = site.nodes[edge.a], site.nodes[edge.b]
    return [(a.x, a.y), *edge.geometry, (b.x, b.y)]


def polyline_length(points: list[tuple[float, float]]) -> float:
    return sum(math.dist(p, q) for p, q in pairwise(points))


def edge_length(site: Site, edge: Edge) -> float:
    """The travelled length of an edge: its given length, else the length of its polyline."""
    if edge.length is not None:
        return edge.length
    return polyline_length(edge_points(site, edge))
