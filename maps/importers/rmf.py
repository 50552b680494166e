"""Open-RMF traffic-editor ``building.yaml`` importer.

The file format (as written by ``rmf_traffic_editor`` and read by ``rmf_building_map_tools``)
    root      ``name`` (or ``building_name``), ``coordinate_system`` (``reference_image`` when absent, or
              ``wgs84``), ``levels`` {name: level}, ``lifts`` {name: lift}, optional
              ``reference_level_name``.
    level     ``elevation`` (m); ``vertices`` ``[x, y, z, name, {param: [type, value]}]``; ``lanes``,
              ``doors`` and ``measurements`` ``[v1, v2, {param: [type, value]}]`` (vertex indices);
              ``fiducials`` ``[x, y, name]``. A parameter is ``[type, value]`` with type 1 string,
              2 int, 3 double, 4 bool.
    lane      ``bidirectional``, ``graph_idx`` (one navigation graph per robot fleet), ``speed_limit``
              (m/s, 0 = none), ``orientation`` (``forward``/``backward``), ``mutex``, ``demo_mock_*``.
    door      a wall segment with ``name`` and ``type`` (``hinged``, ``double_sliding``...).
    lift      ``x``, ``y`` (pixels of its ``reference_floor_name``, else of the reference level),
              ``yaw`` (rad), ``width`` (along the cabin x axis) and ``depth`` (m), ``doors``
              {name: {x, y (m, cabin frame), width, door_type, motion_axis_orientation}},
              ``level_doors`` {level: [door names]} = the levels it serves.

Frames (``reference_image``)
    Vertices are drawing pixels, y down. A level's **floor map frame** is its drawing in metres:
    ``(x·s, -y·s)`` with ``s`` the level's scale (m/px) — the mean of ``distance / pixel length`` of
    its measurements; a level without measurements takes the scale its fiducials give against the
    reference level, else the reference level's scale, else ``DEFAULT_SCALE``. The **site frame** is
    the reference level's floor map frame (``reference_level_name``, else the first level at elevation
    0, else the first level). Every other level is mapped onto it by the least-squares 2D similarity
    (rotation, scale, translation) between the fiducials the two levels share (one shared fiducial:
    translation only; none: identity). ``Floor.frame`` keeps that similarity's rotation and
    translation; its scale factor (1 when the level's measurements agree with its fiducials) cannot be
    stored there, so ``Floor.frame.to_floor`` recovers the floor map coordinates up to that factor.
    The site origin is ``GeoOrigin(0, 0, 0)``: a drawing carries no geodetic reference.

Frames (``wgs84``)
    Vertices are ``[lon, lat, z, name, params]``. The graph is outdoor: nodes have ``floor=None``, no
    floors or buildings are made, and positions are ENU metres (``pymap3d.geodetic2enu``) about the
    mean of the vertices rounded to 1e-6 degrees, which becomes the site origin.

What becomes what
    Only vertices that end a selected lane, carry a name or are a lift cabin become nodes
    ``{level}:{index}`` (wall, floor and measurement corners are drawing geometry, as in
    ``rmf_building_map_tools``' own nav graph export); coordinates are rounded to 1e-4 m. Named
    vertices become places: ``PLACE_KIND_FLAGS`` decide the kind (a false flag such as
    ``is_charger: [4, false]`` does not count), the other parameters become string tags, and a name
    repeated on a later level gets ``@{level}``. Lanes become edges ``{level}:{v1}-{v2}``; lanes
    joining the same two vertices (in several graphs, or both ways) become one edge, one-way only if
    every such lane runs the same way, with the lowest speed limit (0 = none), tagged
    ``graphs: "0,2"`` plus the lane's other non-empty parameters. Doors become ``Door`` objects (a
    name repeated on a later level gets ``@{level}``) and a lane whose segment meets a door segment
    gets ``Edge.door``. Lifts land on the vertex whose ``lift_cabin`` parameter names them on each
    level they serve (lowest first), or on a new node ``{level}:lift:{name}`` at the cabin centre;
    ``door_positions`` holds the first door listed for each level. A lift without ``width``/``depth``
    gets ``Cabin``'s defaults. Lifts in a ``wgs84`` map are refused.

Every malformed input raises ``MapFormatError(file, element, what)`` with a dotted element path such
as ``levels.L2.lanes[4]`` or ``lifts.Lift1.level_doors.L9`` (``line L, column C`` for YAML syntax,
``(document)`` for the whole file); an unreadable file raises ``MapError``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pymap3d
import yaml

from maps.errors import MapError, MapFormatError
from maps.model import (
    Building,
    Cabin,
    Door,
    Edge,
    Floor,
    FloorFrame,
    GeoOrigin,
    Lift,
    Node,
    Place,
    PlaceKind,
    Site,
)

DEFAULT_SCALE = 0.05
"""Metres per pixel when neither measurements nor fiducials nor the reference level tell the scale."""

PLACE_KIND_FLAGS: tuple[tuple[str, PlaceKind], ...] = (
    ("is_charger", PlaceKind.CHARGER),
    ("pickup_dispenser", PlaceKind.PICKUP),
    ("dropoff_ingestor", PlaceKind.DROPOFF),
    ("is_parking_spot", PlaceKind.PARKING),
    ("is_holding_point", PlaceKind.HOLDING),
)
"""Vertex parameters that make a named vertex a place of that kind, first true flag wins; else WAYPOINT."""

COORDINATE_SYSTEMS = ("reference_image", "wgs84")
_DECIMALS = 4  # node coordinates are rounded to 0.1 mm
_LANE_FIELDS = frozenset({"bidirectional", "graph_idx", "speed_limit"})


def import_rmf(path: str | os.PathLike[str], *, graphs: set[int] | None = None) -> Site:
    """Read an Open-RMF ``building.yaml`` into a ``Site`` (see the module docstring for the rules).

    ``graphs`` selects the lane graphs (``graph_idx``) to import; ``None`` merges all of them.
    Raises ``MapFormatError`` naming the file and element for every malformed input.
    """
    file = str(path)
    parser = _Parser(file)
    building = parser.building(_read_yaml(Path(path), file))
    site = _SiteBuilder(building, graphs, parser).build()
    site.source = file
    return site


# ---- reading and validating -------------------------------------------------------------------


def _read_yaml(path: Path, file: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MapFormatError(file, "(document)", f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise MapError(file, "", f"cannot read: {exc.strerror or exc}") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # a safe loader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        raise MapFormatError(file, where, f"YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise MapFormatError(file, "(document)", f"YAML error: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Vertex:
    x: float
    y: float
    name: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Lane:
    a: int
    b: int
    graph: int
    bidirectional: bool
    speed_limit: float | None
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Door:
    a: int
    b: int
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class _Level:
    name: str
    elevation: float
    vertices: list[_Vertex]
    lanes: list[_Lane]
    doors: list[_Door]
    scale: float | None  # from measurements
    fiducials: dict[str, tuple[float, float]]


@dataclass(frozen=True, slots=True)
class _Lift:
    name: str
    x: float
    y: float
    width: float
    depth: float
    yaw: float
    reference_level: str
    doors: dict[str, tuple[float, float]]
    level_doors: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class _Building:
    name: str
    geodetic: bool
    reference: str
    levels: dict[str, _Level]
    lifts: list[_Lift]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind_of(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _truthy(value: Any) -> bool:
    """A parameter's truth: ``[4, false]`` and empty strings are false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no")
    return bool(value)


def _tag(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class _Parser:
    """Validates the YAML document and turns it into plain records; every problem names its element."""

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, element: str, what: str) -> MapFormatError:
        return MapFormatError(self.file, element, what)

    # -- typed accessors ------------------------------------------------------------------------

    def mapping(self, value: Any, element: str) -> Mapping[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(element, f"expected a mapping, got {_kind_of(value)}")
        return value

    def sequence(self, value: Any, element: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(element, f"expected a list, got {_kind_of(value)}")
        return value

    def number(self, value: Any, element: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(element, f"expected a number, got {_kind_of(value)} {value!r}")
        return float(value)

    def get_number(
        self, node: Mapping[Any, Any], key: str, element: str, default: float | None = None
    ) -> float:
        if key in node:
            return self.number(node[key], f"{element}.{key}")
        if default is None:
            raise self.error(f"{element}.{key}", "missing")
        return default

    def text(self, value: Any, element: str) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if _is_int(value):
            return str(value)  # an unquoted room number
        raise self.error(element, f"expected a name, got {_kind_of(value)} {value!r}")

    def params(self, value: Any, element: str) -> dict[str, Any]:
        """``{name: [type, value]}`` → ``{name: value}`` (a bare scalar value is accepted as is)."""
        out: dict[str, Any] = {}
        for key, raw in self.mapping(value, element).items():
            scalar = raw
            if isinstance(raw, list):
                if len(raw) != 2 or not _is_int(raw[0]):
                    raise self.error(f"{element}.{key}", f"expected [type, value], got {raw!r}")
                scalar = raw[1]
            if isinstance(scalar, Mapping | list):
                raise self.error(f"{element}.{key}", f"expected a scalar value, got {_kind_of(scalar)}")
            out[str(key)] = scalar
        return out

    # -- the document ---------------------------------------------------------------------------

    def building(self, doc: Any) -> _Building:
        if not isinstance(doc, Mapping):
            raise self.error("(document)", f"expected a mapping of building fields, got {_kind_of(doc)}")
        name = self.text(doc.get("building_name", doc.get("name")), "name")
        system = doc.get("coordinate_system") or "reference_image"
        if system not in COORDINATE_SYSTEMS:
            raise self.error(
                "coordinate_system", f"{system!r} is not supported (use {' or '.join(COORDINATE_SYSTEMS)})"
            )
        if "levels" not in doc:
            raise self.error("levels", "missing")
        raw_levels = self.mapping(doc["levels"], "levels")
        if not raw_levels:
            raise self.error("levels", "no levels")
        levels = {str(n): self.level(str(n), raw, system == "wgs84") for n, raw in raw_levels.items()}
        reference = self.reference_level(doc, levels)
        raw_lifts = self.mapping(doc.get("lifts"), "lifts")
        if raw_lifts and system == "wgs84":
            raise self.error("lifts", "lifts in a wgs84 (outdoor) map are not supported")
        lifts = [self.lift(str(n), raw, levels, reference) for n, raw in raw_lifts.items()]
        return _Building(
            name or Path(self.file).name.split(".")[0], system == "wgs84", reference, levels, lifts
        )

    def reference_level(self, doc: Mapping[Any, Any], levels: Mapping[str, _Level]) -> str:
        if doc.get("reference_level_name") is None:
            return next((n for n, lv in levels.items() if lv.elevation == 0), next(iter(levels)))
        ref = self.text(doc["reference_level_name"], "reference_level_name")
        if ref not in levels:
            raise self.error("reference_level_name", f"level {ref} does not exist")
        return ref

    def items(self, node: Mapping[Any, Any], key: str, elem: str) -> list[tuple[int, Any, str]]:
        """The entries of list ``key`` with their index and element path."""
        return [
            (i, raw, f"{elem}.{key}[{i}]")
            for i, raw in enumerate(self.sequence(node.get(key), f"{elem}.{key}"))
        ]

    def level(self, name: str, raw: Any, geodetic: bool) -> _Level:
        elem = f"levels.{name}"
        node = self.mapping(raw, elem)
        if node.get("vertices") is None:
            users = [k for k in ("lanes", "doors", "measurements") if node.get(k)]
            if users:
                raise self.error(f"{elem}.vertices", f"missing, but the level has {users[0]}")
        vertices = [self.vertex(v, where, geodetic) for _, v, where in self.items(node, "vertices", elem)]
        n = len(vertices)
        lanes = [self.lane(s, where, n) for _, s, where in self.items(node, "lanes", elem)]
        doors = [self.door(s, where, n) for _, s, where in self.items(node, "doors", elem)]
        scales = [
            self.measurement(s, where, vertices) for _, s, where in self.items(node, "measurements", elem)
        ]
        fiducials: dict[str, tuple[float, float]] = {}
        for _, f, where in self.items(node, "fiducials", elem):
            fname, xy = self.fiducial(f, where)
            if fname:
                fiducials.setdefault(fname, xy)
        elevation = self.get_number(node, "elevation", elem, default=0.0)
        scale = sum(scales) / len(scales) if scales else None
        return _Level(name, elevation, vertices, lanes, doors, scale, fiducials)

    def vertex(self, raw: Any, elem: str, geodetic: bool) -> _Vertex:
        if not isinstance(raw, list) or len(raw) < 2:
            raise self.error(elem, f"a vertex must be a list [x, y, z, name, {{params}}], got {raw!r}")
        x = self.number(raw[0], f"{elem}.x")
        y = self.number(raw[1], f"{elem}.y")
        if geodetic and not (-180 <= x <= 180 and -90 <= y <= 90):
            raise self.error(elem, f"({x}, {y}) is not a WGS84 [lon, lat]")
        name = self.text(raw[3], f"{elem}.name") if len(raw) > 3 else ""
        params = self.params(raw[4], f"{elem}.params") if len(raw) > 4 else {}
        return _Vertex(x, y, name, params)

    def segment(self, raw: Any, elem: str, n_vertices: int) -> tuple[int, int, dict[str, Any]]:
        """``[v1, v2, {params}]`` with both indices checked."""
        if not isinstance(raw, list) or len(raw) < 2:
            raise self.error(elem, f"expected a list [v1, v2, {{params}}], got {_kind_of(raw)} {raw!r}")
        a, b = (self.vertex_index(v, elem, n_vertices) for v in raw[:2])
        return a, b, self.params(raw[2], f"{elem}.params") if len(raw) > 2 else {}

    def vertex_index(self, value: Any, elem: str, n_vertices: int) -> int:
        if not _is_int(value):
            raise self.error(elem, f"a vertex index must be an integer, got {_kind_of(value)} {value!r}")
        if not 0 <= value < n_vertices:
            raise self.error(elem, f"vertex {value} does not exist (the level has {n_vertices} vertices)")
        return int(value)

    def lane(self, raw: Any, elem: str, n_vertices: int) -> _Lane:
        a, b, params = self.segment(raw, elem, n_vertices)
        if a == b:
            raise self.error(elem, f"the lane joins vertex {a} to itself")
        graph = params.get("graph_idx", 0)
        if not _is_int(graph) or graph < 0:
            raise self.error(f"{elem}.graph_idx", f"expected a graph number >= 0, got {graph!r}")
        speed = self.number(params.get("speed_limit", 0), f"{elem}.speed_limit")
        if speed < 0:
            raise self.error(f"{elem}.speed_limit", f"negative speed limit {speed:g}")
        tags = {k: _tag(v) for k, v in params.items() if k not in _LANE_FIELDS and v not in ("", None)}
        return _Lane(a, b, int(graph), _truthy(params.get("bidirectional")), speed or None, tags)

    def door(self, raw: Any, elem: str, n_vertices: int) -> _Door:
        a, b, params = self.segment(raw, elem, n_vertices)
        name = self.text(params.get("name"), f"{elem}.name")
        if not name:
            raise self.error(elem, "the door has no name")
        return _Door(a, b, name, self.text(params.get("type"), f"{elem}.type") or "hinged")

    def measurement(self, raw: Any, elem: str, vertices: Sequence[_Vertex]) -> float:
        """The scale (m/px) one measurement gives."""
        a, b, params = self.segment(raw, elem, len(vertices))
        if "distance" not in params:
            raise self.error(f"{elem}.distance", "missing")
        distance = self.number(params["distance"], f"{elem}.distance")
        pixels = math.dist((vertices[a].x, vertices[a].y), (vertices[b].x, vertices[b].y))
        if pixels == 0 or distance <= 0:
            raise self.error(
                elem, f"zero length: vertices {a} and {b} are {pixels:g} px and {distance:g} m apart"
            )
        return distance / pixels

    def fiducial(self, raw: Any, elem: str) -> tuple[str, tuple[float, float]]:
        if not isinstance(raw, list) or len(raw) < 2:
            raise self.error(elem, f"a fiducial must be a list [x, y, name], got {raw!r}")
        xy = (self.number(raw[0], f"{elem}.x"), self.number(raw[1], f"{elem}.y"))
        return (self.text(raw[2], f"{elem}.name") if len(raw) > 2 else ""), xy

    def lift(self, name: str, raw: Any, levels: Mapping[str, _Level], reference: str) -> _Lift:
        elem = f"lifts.{name}"
        node = self.mapping(raw, elem)
        ref = self.text(node.get("reference_floor_name"), f"{elem}.reference_floor_name") or reference
        if ref not in levels:
            raise self.error(f"{elem}.reference_floor_name", f"level {ref} does not exist")
        doors = {
            str(d): self.lift_door(door, f"{elem}.doors.{d}")
            for d, door in self.mapping(node.get("doors"), f"{elem}.doors").items()
        }
        level_doors: dict[str, list[str]] = {}
        for lvl, names in self.mapping(node.get("level_doors"), f"{elem}.level_doors").items():
            where = f"{elem}.level_doors.{lvl}"
            if str(lvl) not in levels:
                raise self.error(where, f"level {lvl} does not exist (levels: {', '.join(levels)})")
            door_names = [self.text(d, where) for d in self.sequence(names, where)]
            unknown = [d for d in door_names if d not in doors]
            if unknown:
                raise self.error(where, f"door {unknown[0]} is not one of the lift's doors")
            level_doors[str(lvl)] = door_names
        default = Cabin(0.0, 0.0)
        x, y = self.get_number(node, "x", elem), self.get_number(node, "y", elem)
        width = self.get_number(node, "width", elem, default=default.width)
        depth = self.get_number(node, "depth", elem, default=default.depth)
        if width <= 0 or depth <= 0:
            raise self.error(elem, f"the cabin must have a positive size, got {width:g} x {depth:g} m")
        yaw = self.get_number(node, "yaw", elem, default=0.0)
        return _Lift(name, x, y, width, depth, yaw, ref, doors, level_doors)

    def lift_door(self, raw: Any, elem: str) -> tuple[float, float]:
        """A lift door's offset from the cabin centre (m, cabin frame)."""
        node = self.mapping(raw, elem)
        return self.get_number(node, "x", elem), self.get_number(node, "y", elem)


# ---- geometry ---------------------------------------------------------------------------------


def _round(value: float) -> float:
    return round(value, _DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _fit_similarity(src: Sequence[complex], dst: Sequence[complex]) -> tuple[complex, complex]:
    """Least-squares ``dst ≈ a·src + b`` (``a = scale·e^{i·rotation}``) over two or more distinct points.

    Umeyama's closed-form similarity fit, written with complex numbers.
    """
    ms, md = sum(src) / len(src), sum(dst) / len(dst)
    den = sum(abs(s - ms) ** 2 for s in src)
    a = sum((s - ms).conjugate() * (d - md) for s, d in zip(src, dst, strict=True)) / den
    return a, md - a * ms


@dataclass(frozen=True, slots=True)
class _PixelFrame:
    """Drawing pixels → floor map metres ``p = (x·scale, -y·scale)`` → site metres ``rot·p + shift``."""

    scale: float
    rot: complex = 1 + 0j
    shift: complex = 0j

    def floor_point(self, x: float, y: float) -> complex:
        return complex(x * self.scale, -y * self.scale)

    def site_points(self, points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        site = [self.rot * self.floor_point(x, y) + self.shift for x, y in points]
        return [(p.real, p.imag) for p in site]

    @property
    def yaw(self) -> float:
        return math.atan2(self.rot.imag, self.rot.real)

    def floor_frame(self) -> FloorFrame:
        return FloorFrame(_round(self.shift.real), _round(self.shift.imag), round(self.yaw, 9) + 0.0)


@dataclass(frozen=True, slots=True)
class _GeoFrame:
    """WGS84 ``(lon, lat)`` → ENU metres about ``origin``."""

    origin: GeoOrigin
    yaw: float = 0.0

    def site_points(self, points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        lonlat = np.asarray(list(points), dtype=float).reshape(-1, 2)
        o = self.origin
        e, n, _ = pymap3d.geodetic2enu(lonlat[:, 1], lonlat[:, 0], 0.0, o.lat, o.lon, o.alt)
        return list(zip(np.atleast_1d(e).tolist(), np.atleast_1d(n).tolist(), strict=True))


_Frame = _PixelFrame | _GeoFrame


def _geo_origin(building: _Building) -> GeoOrigin:
    """The mean of the vertices (rounded to 1e-6 degrees); (0, 0) for a map without vertices."""
    points = [(v.x, v.y) for lv in building.levels.values() for v in lv.vertices]
    if not points:
        return GeoOrigin(0.0, 0.0, 0.0)
    lon, lat = np.mean(np.asarray(points), axis=0).tolist()
    return GeoOrigin(round(lat, 6), round(lon, 6), 0.0)


def _pixel_frames(building: _Building, parser: _Parser) -> dict[str, _PixelFrame]:
    """Each level's pixel → site transform (module docstring, "Frames")."""
    ref = building.levels[building.reference]
    ref_frame = _PixelFrame(ref.scale or DEFAULT_SCALE)
    return {
        name: ref_frame if name == ref.name else _aligned_frame(level, ref, ref_frame, parser)
        for name, level in building.levels.items()
    }


def _aligned_frame(level: _Level, ref: _Level, ref_frame: _PixelFrame, parser: _Parser) -> _PixelFrame:
    """The similarity that maps ``level`` onto the reference level through their shared fiducials."""
    shared = [n for n in level.fiducials if n in ref.fiducials]
    src_px = [complex(*level.fiducials[n]) for n in shared]
    dst_px = [complex(*ref.fiducials[n]) for n in shared]
    if len(shared) >= 2 and (len(set(src_px)) < 2 or len(set(dst_px)) < 2):
        raise parser.error(f"levels.{level.name}.fiducials", f"the fiducials shared with {ref.name} coincide")
    scale = level.scale
    if scale is None:
        scale = ref_frame.scale * (abs(_fit_similarity(src_px, dst_px)[0]) if len(shared) >= 2 else 1.0)
    own = _PixelFrame(scale)
    src = [own.floor_point(p.real, p.imag) for p in src_px]
    dst = [ref_frame.floor_point(p.real, p.imag) for p in dst_px]
    if len(shared) >= 2:
        return _PixelFrame(scale, *_fit_similarity(src, dst))
    if shared:
        return _PixelFrame(scale, 1 + 0j, dst[0] - src[0])
    return own


def _segments_cross(p1: _Vertex, p2: _Vertex, q1: _Vertex, q2: _Vertex) -> bool:
    """Whether segment p1p2 meets segment q1q2 (touching counts; collinear overlap does not)."""

    def side(a: _Vertex, b: _Vertex, c: _Vertex) -> float:
        return (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)

    d1, d2 = side(q1, q2, p1), side(q1, q2, p2)
    if d1 == 0 and d2 == 0:
        return False
    return d1 * d2 <= 0 and side(p1, p2, q1) * side(p1, p2, q2) <= 0


def _place_kind(params: Mapping[str, Any]) -> tuple[PlaceKind, str | None]:
    """The place kind a vertex's flags give, and the flag that decided it."""
    for flag, kind in PLACE_KIND_FLAGS:
        if _truthy(params.get(flag)):
            return kind, flag
    return PlaceKind.WAYPOINT, None


def _unique(taken: Mapping[str, Any], name: str, level: str) -> str:
    """``name``, else ``name@level``, else ``name@level#2``, ... (first free)."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}@{level}" if n == 2 else f"{name}@{level}#{n - 1}"
    return candidate


# ---- building the site ------------------------------------------------------------------------


@dataclass(slots=True)
class _LaneGroup:
    """The lanes of one level that join the same two vertices: they become one edge."""

    first: _Lane
    directions: set[tuple[int, int]] = field(default_factory=set)
    graphs: set[int] = field(default_factory=set)
    speeds: list[float] = field(default_factory=list)

    def add(self, lane: _Lane) -> None:
        self.directions |= {(lane.a, lane.b), (lane.b, lane.a)} if lane.bidirectional else {(lane.a, lane.b)}
        self.graphs.add(lane.graph)
        if lane.speed_limit is not None:
            self.speeds.append(lane.speed_limit)


def _lane_groups(lanes: Iterable[_Lane]) -> list[_LaneGroup]:
    groups: dict[tuple[int, int], _LaneGroup] = {}
    for lane in lanes:
        key = (min(lane.a, lane.b), max(lane.a, lane.b))
        groups.setdefault(key, _LaneGroup(lane)).add(lane)
    return list(groups.values())


class _SiteBuilder:
    """Turns the validated records into a ``Site``."""

    def __init__(self, building: _Building, graphs: set[int] | None, parser: _Parser) -> None:
        self.b = building
        self.graphs = graphs
        self.parser = parser
        self.site = Site(building.name, GeoOrigin(0.0, 0.0, 0.0))
        self.cabins: dict[tuple[str, str], str] = {}  # (level, lift name) → node id of its cabin vertex

    def build(self) -> Site:
        frames: Mapping[str, _Frame]
        if self.b.geodetic:
            geo = _GeoFrame(_geo_origin(self.b))
            self.site.origin = geo.origin
            frames = dict.fromkeys(self.b.levels, geo)
        else:
            frames = _pixel_frames(self.b, self.parser)
            self.add_floors(frames)
        for level in self.b.levels.values():
            self.add_level(level, frames[level.name])
        for lift in self.b.lifts:
            self.add_lift(lift, frames[lift.reference_level])
        return self.site

    def add_floors(self, frames: Mapping[str, _PixelFrame]) -> None:
        name = self.b.name
        self.site.buildings[name] = Building(name, name)
        for level in self.b.levels.values():
            floor_frame = frames[level.name].floor_frame()
            self.site.floors[level.name] = Floor(level.name, name, level.name, level.elevation, floor_frame)

    def add_level(self, level: _Level, frame: _Frame) -> None:
        lanes = [ln for ln in level.lanes if self.graphs is None or ln.graph in self.graphs]
        keep = sorted(
            {i for ln in lanes for i in (ln.a, ln.b)}
            | {i for i, v in enumerate(level.vertices) if v.name or "lift_cabin" in v.params}
        )
        points = frame.site_points((level.vertices[i].x, level.vertices[i].y) for i in keep) if keep else []
        floor = None if self.b.geodetic else level.name
        for i, (x, y) in zip(keep, points, strict=True):
            node = self.site.add_node(Node(f"{level.name}:{i}", _round(x), _round(y), floor))
            self.add_vertex_roles(level, level.vertices[i], node.id)
        doors = self.add_doors(level)
        for group in _lane_groups(lanes):
            self.site.add_edge(self.edge(level, group, doors))

    def add_vertex_roles(self, level: _Level, vertex: _Vertex, node_id: str) -> None:
        """The place a named vertex is, and the lift cabin it stands for."""
        cabin = vertex.params.get("lift_cabin")
        if _truthy(cabin):
            self.cabins.setdefault((level.name, str(cabin)), node_id)
        if vertex.name:
            kind, flag = _place_kind(vertex.params)
            # the deciding flag says no more than the kind when it is a bare ``true``
            tags = {k: _tag(v) for k, v in vertex.params.items() if not (k == flag and v is True)}
            name = _unique(self.site.places, vertex.name, level.name)
            self.site.places[name] = Place(name, kind, node_id, tags=tags)

    def add_doors(self, level: _Level) -> list[tuple[str, _Door]]:
        out = []
        building = None if self.b.geodetic else self.b.name
        for door in level.doors:
            door_id = _unique(self.site.doors, door.name, level.name)
            self.site.doors[door_id] = Door(door_id, door.name, building, door.kind)
            out.append((door_id, door))
        return out

    def edge(self, level: _Level, group: _LaneGroup, doors: Sequence[tuple[str, _Door]]) -> Edge:
        a, b = group.first.a, group.first.b
        va, vb, vs = level.vertices[a], level.vertices[b], level.vertices
        door = next((d_id for d_id, d in doors if _segments_cross(va, vb, vs[d.a], vs[d.b])), None)
        return Edge(
            f"{level.name}:{a}-{b}",
            f"{level.name}:{a}",
            f"{level.name}:{b}",
            oneway=len(group.directions) == 1,
            speed_limit=min(group.speeds) if group.speeds else None,
            door=door,
            tags={**group.first.tags, "graphs": ",".join(map(str, sorted(group.graphs)))},
        )

    def add_lift(self, lift: _Lift, frame: _Frame) -> None:
        ((x, y),) = frame.site_points([(lift.x, lift.y)])
        yaw = math.remainder(lift.yaw + frame.yaw, math.tau)
        cabin = Cabin(_round(x), _round(y), lift.width, lift.depth, round(yaw, 9) + 0.0)
        landings: dict[str, str] = {}
        door_positions: dict[str, tuple[float, float]] = {}
        for level in sorted(lift.level_doors, key=lambda n: self.b.levels[n].elevation):
            landings[level] = self.cabins.get((level, lift.name)) or self.landing_node(
                level, lift.name, cabin
            )
            if lift.level_doors[level]:
                dx, dy = lift.doors[lift.level_doors[level][0]]
                c, s = math.cos(yaw), math.sin(yaw)
                door_positions[level] = (_round(x + c * dx - s * dy), _round(y + s * dx + c * dy))
        self.site.lifts[lift.name] = Lift(
            lift.name, self.b.name, cabin, landings, name=lift.name, door_positions=door_positions
        )

    def landing_node(self, level: str, lift: str, cabin: Cabin) -> str:
        """A node at the cabin centre on a served level that has no cabin vertex."""
        return self.site.add_node(Node(f"{level}:lift:{lift}", cabin.x, cabin.y, level)).id
