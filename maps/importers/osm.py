"""OpenStreetMap importer: an outdoor network from an ``.osm`` XML file (OSM API 0.6).

The file is read streaming (``xml.etree.ElementTree.iterparse``); relations are ignored. The graph
is **not** contracted: every consecutive pair of way nodes becomes one ``Edge``, so a route's path is
a list of OSM nodes. Node ids are ``osm{node_id}`` (``floor=None``), edge ids ``w{way_id}.{k}`` where
``k`` is the segment's index in the way's own node order (``w42.0`` joins the way's first two nodes,
even when ``oneway=-1`` makes the edge run from the second to the first). Positions are local ENU
metres (``pymap3d.geodetic2enu``) about the site origin; ``Edge.length`` is the geodesic length
(``pymap3d.vincenty.vdist``), not the ENU chord.

Rules (the cart profile's needs; OSM wiki semantics)

Ways
    kept when ``highway`` is one of ``ROUTABLE_HIGHWAYS`` (paths, footways, steps, corridors and the
    roads a slow robot may share; motorways/trunks and non-ways such as ``construction``,
    ``proposed``, ``abandoned``, ``platform``, ``bus_stop`` are dropped). Access: the most specific tag
    decides, ``foot`` over ``access`` (a delivery robot on campus travels where pedestrians may), so a
    way is dropped when ``foot`` is ``no``/``private``, or when ``access`` is ``no``/``private`` and
    ``foot`` is not ``yes``/``designated``/``permissive``. Other access values (``destination``,
    ``customers``, ``delivery``, ``permissive``) are kept. ``area=yes`` outlines are kept as ways
    around the area. Ways with fewer than two nodes are skipped.
One-way
    ``oneway=yes|1|true`` runs a→b in the way's order, ``-1`` reverses it; ``junction=roundabout`` or
    ``circular`` implies one-way unless ``oneway=no``; ``oneway=reversible|alternating`` ways are
    dropped (their direction changes over the day, so no route may count on them).
Steps and kerbs
    ``highway=steps`` sets ``step`` on all its edges. A node with ``kerb=raised|rolled|yes`` (or an
    unknown value), or ``barrier=kerb`` without a ``kerb=lowered|flush|no``, sets ``kerb`` on every
    edge touching it. ``kerb=raised|rolled|yes`` on a way (crossings) sets ``kerb`` on its first and
    last edges, where the way meets the pavement.
Barriers and gates
    ``barrier=gate|lift_gate|swing_gate|sliding_gate`` on a node becomes a ``Gate`` ``osm{node_id}``
    (named by its ``name``) placed on the edges touching the node: a robot opens it over IoT. Any
    other ``barrier`` value, except the passable ``PASSABLE_BARRIERS``, blocks: ``Edge.barrier``
    names it on the touching edges (unknown values count as blocking).
Width, speed
    ``width`` → metres (``2``, ``2.5 m``, ``80 cm``, ``6'``, ``6 ft``, ``40'0"``); ``maxspeed`` → m/s
    (km/h by default, ``mph``, ``knots``). Unparsable values are ignored.
Places
    ``entrance=*`` nodes on the network become ``WAYPOINT`` places named by ``name`` (else ``ref``);
    unnamed ones are skipped. A repeated name gets the node id appended: ``Gym [osm123]``.
Origin
    The given origin, else the centre of the file's ``<bounds>``, else the mean of the nodes used,
    rounded to 1e-6 degrees.

Errors are ``MapFormatError`` lines naming the file and the element: ``line 1234`` for XML that is not
well-formed or truncated, ``node 123`` for a node without a valid ``lat``/``lon``, ``way 7`` for an
``nd`` without ``ref``. Segments whose end node is missing from the file are skipped and counted
(``OsmStats``).
"""

from __future__ import annotations

import itertools
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pymap3d
from pymap3d.vincenty import vdist

from maps.errors import MapError, MapFormatError
from maps.model import Edge, Gate, GeoOrigin, Node, Place, PlaceKind, Site

ROUTABLE_HIGHWAYS = frozenset(
    {
        "footway", "path", "pedestrian", "steps", "corridor", "cycleway", "bridleway", "track",
        "service", "residential", "living_street", "unclassified", "road",
        "tertiary", "tertiary_link", "secondary", "secondary_link", "primary", "primary_link",
    }
)  # fmt: skip
"""``highway`` values a delivery robot may use (steps are kept and flagged; profiles decide)."""

OPENABLE_GATES = frozenset({"gate", "lift_gate", "swing_gate", "sliding_gate"})
"""``barrier`` values imported as ``Gate`` objects (opened over IoT)."""

PASSABLE_BARRIERS = frozenset({"kerb", "entrance", "toll_booth", "border_control", "height_restrictor", "no"})
"""``barrier`` values that do not stop a robot (``kerb`` is handled by the kerb rule)."""

RAISED_KERBS = frozenset({"raised", "rolled", "yes"})
PASSABLE_KERBS = frozenset({"lowered", "flush", "no"})
_CLOSED_ACCESS = frozenset({"no", "private"})
_FOOT_ALLOWED = frozenset({"yes", "designated", "permissive"})
_ONEWAY_FORWARD = frozenset({"yes", "1", "true"})
_ONEWAY_TIMED = frozenset({"reversible", "alternating"})
_ROUND_JUNCTIONS = frozenset({"roundabout", "circular"})
_NODE_KEYS = frozenset({"barrier", "kerb", "entrance", "name", "ref"})
_EDGE_TAG_KEYS = ("highway", "name", "surface")

_LENGTH_UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "km": 1000.0, "ft": 0.3048, "'": 0.3048,
                 "in": 0.0254, '"': 0.0254, "mi": 1609.344}  # fmt: skip
_SPEED_UNITS = {"km/h": 1 / 3.6, "kmh": 1 / 3.6, "kph": 1 / 3.6, "mph": 0.44704, "knots": 1852 / 3600}
_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z/'\"]*)\s*$")
_FEET_INCHES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*'\s*(\d+(?:\.\d+)?)\s*\"\s*$")


@dataclass(slots=True)
class OsmStats:
    """What the importer kept and skipped (for ``map info`` and the import report)."""

    ways_read: int = 0
    ways_used: int = 0
    ways_dropped: Counter[str] = field(default_factory=Counter)  # reason → count
    ways_too_short: int = 0
    segments_missing_node: int = 0
    segments_repeated_node: int = 0
    entrances_skipped: int = 0


@dataclass(frozen=True, slots=True)
class OsmImport:
    """The imported site and the import's statistics."""

    site: Site
    stats: OsmStats


@dataclass(frozen=True, slots=True)
class _Way:
    id: str
    refs: tuple[str, ...]
    tags: dict[str, str]


@dataclass(slots=True)
class _OsmData:
    """The parts of the file the importer needs, as read."""

    coords: dict[str, tuple[float, float]] = field(default_factory=dict)  # id → (lat, lon)
    node_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # only _NODE_KEYS
    ways: list[_Way] = field(default_factory=list)  # routable ways only
    bounds: tuple[float, float, float, float] | None = None  # minlat, minlon, maxlat, maxlon


@dataclass(frozen=True, slots=True)
class _Segment:
    way: _Way
    k: int
    a: str  # OSM node ids, in travel direction when one-way
    b: str
    oneway: bool


# --- public API ----------------------------------------------------------------------------------


def import_osm(path: str | os.PathLike[str], *, origin: GeoOrigin | None = None) -> Site:
    """Import the outdoor network of an OpenStreetMap XML file as a ``Site`` (see the module rules).

    Raises ``MapFormatError`` (one line: file, element, what) when the file breaks the format.
    """
    return read_osm(path, origin=origin).site


def read_osm(path: str | os.PathLike[str], *, origin: GeoOrigin | None = None) -> OsmImport:
    """Like ``import_osm`` but also return what was kept and skipped (``OsmStats``)."""
    file = str(path)
    stats = OsmStats()
    data = _parse(file, stats)
    segments = _segments(data, stats)
    used = _used_nodes(segments)
    origin = origin or _default_origin(data, used)
    site = Site(name=_site_name(path), origin=origin, source=file)
    _add_nodes(site, data, used)
    _add_edges(site, data, segments)
    _add_entrances(site, data, stats)
    return OsmImport(site, stats)


def parse_width(text: str) -> float | None:
    """A ``width``-style length in metres (``2``, ``2.5 m``, ``6'``, ``40'0"``), ``None`` if unparsable."""
    text = text.strip().lower()
    if m := _FEET_INCHES.match(text):
        return float(m[1]) * 0.3048 + float(m[2]) * 0.0254 or None
    m = _NUMBER_UNIT.match(text)
    if not m or m[2] not in {"", *_LENGTH_UNITS}:
        return None
    return float(m[1]) * _LENGTH_UNITS.get(m[2], 1.0) or None


def parse_maxspeed(text: str) -> float | None:
    """A ``maxspeed`` in m/s (km/h unless ``mph``/``knots``); ``None`` when not a number (``walk``)."""
    m = _NUMBER_UNIT.match(text.strip().lower())
    if not m or m[2] not in {"", *_SPEED_UNITS}:
        return None
    return float(m[1]) * _SPEED_UNITS.get(m[2], 1 / 3.6) or None


# --- reading -------------------------------------------------------------------------------------


def _parse(file: str, stats: OsmStats) -> _OsmData:
    """Stream the file into ``_OsmData``; XML and I/O errors become one-line ``MapError``s."""
    data = _OsmData()
    try:
        with open(file, "rb") as source:
            for elem in _elements(file, source):
                _read_element(file, elem, data, stats)
    except ET.ParseError as exc:
        raise _xml_error(file, exc) from None
    except OSError as exc:
        raise MapError(file, "", f"cannot read the file: {exc.strerror or exc}") from None
    return data


def _elements(file: str, source: BinaryIO) -> Iterator[ET.Element]:
    """Yield each complete top-level element (node, way, bounds...), freeing it afterwards."""
    root: ET.Element | None = None
    depth = 0
    for event, elem in ET.iterparse(source, events=("start", "end")):
        if event == "start":
            depth += 1
            if root is None:
                root = _check_root(file, elem)
            continue
        depth -= 1
        if depth == 1 and root is not None:
            yield elem
            root.clear()


def _check_root(file: str, elem: ET.Element) -> ET.Element:
    if elem.tag != "osm":
        raise MapFormatError(
            file, f"<{elem.tag}>", "the root element is not <osm>: not an OpenStreetMap XML file"
        )
    return elem


def _xml_error(file: str, exc: ET.ParseError) -> MapFormatError:
    line = exc.position[0]
    reason = str(exc).split(":")[0]
    if reason in {"no element found", "unclosed token"}:
        return MapFormatError(file, f"line {line}", f"the XML ends early (truncated file?): {reason}")
    return MapFormatError(file, f"line {line}", f"malformed XML: {reason}")


def _read_element(file: str, elem: ET.Element, data: _OsmData, stats: OsmStats) -> None:
    if _deleted(elem):
        return
    if elem.tag == "node":
        _read_node(file, elem, data, len(data.coords))
    elif elem.tag == "way":
        stats.ways_read += 1
        _read_way(file, elem, data, stats)
    elif elem.tag == "bounds":
        data.bounds = _read_bounds(file, elem)


def _deleted(elem: ET.Element) -> bool:
    """JOSM files keep deleted objects with ``action="delete"``; history files use ``visible="false"``."""
    return elem.get("action") == "delete" or elem.get("visible") == "false"


def _read_node(file: str, elem: ET.Element, data: _OsmData, index: int) -> None:
    node_id = elem.get("id")
    if not node_id:
        raise MapFormatError(file, f"node #{index + 1}", "missing id")
    where = f"node {node_id}"
    lat = _coordinate(file, where, elem, "lat", 90.0)
    lon = _coordinate(file, where, elem, "lon", 180.0)
    data.coords[node_id] = (lat, lon)
    tags = {k: v for k, v in _tags(elem) if k in _NODE_KEYS}
    if tags:
        data.node_tags[node_id] = tags


def _coordinate(file: str, where: str, elem: ET.Element, name: str, limit: float) -> float:
    text = elem.get(name)
    if text is None:
        raise MapFormatError(file, where, f"missing {name}")
    try:
        value = float(text)
    except ValueError:
        raise MapFormatError(file, where, f"{name} {text!r} is not a number") from None
    if not -limit <= value <= limit:  # also refuses nan
        raise MapFormatError(file, where, f"{name} {text} is out of range [-{limit:g}, {limit:g}]")
    return value


def _read_bounds(file: str, elem: ET.Element) -> tuple[float, float, float, float]:
    lats = [_coordinate(file, "bounds", elem, k, 90.0) for k in ("minlat", "maxlat")]
    lons = [_coordinate(file, "bounds", elem, k, 180.0) for k in ("minlon", "maxlon")]
    return (lats[0], lons[0], lats[1], lons[1])


def _read_way(file: str, elem: ET.Element, data: _OsmData, stats: OsmStats) -> None:
    way_id = elem.get("id")
    if not way_id:
        raise MapFormatError(file, f"way #{stats.ways_read}", "missing id")
    tags = dict(_tags(elem))
    reason = _rejection(tags)
    if reason:
        stats.ways_dropped[reason] += 1
        return
    refs = tuple(_refs(file, way_id, elem))
    if len(refs) < 2:
        stats.ways_too_short += 1
        return
    stats.ways_used += 1
    data.ways.append(_Way(way_id, refs, tags))


def _tags(elem: ET.Element) -> Iterator[tuple[str, str]]:
    for tag in elem.iterfind("tag"):
        key, value = tag.get("k"), tag.get("v")
        if key is not None and value is not None:
            yield key, value


def _refs(file: str, way_id: str, elem: ET.Element) -> Iterator[str]:
    for nd in elem.iterfind("nd"):
        ref = nd.get("ref")
        if not ref:
            raise MapFormatError(file, f"way {way_id}", "<nd> without ref")
        yield ref


def _rejection(tags: dict[str, str]) -> str | None:
    """Why a way is not imported (``None``: it is), following the module's rules."""
    highway = tags.get("highway")
    if highway is None:
        return "not a highway"
    if highway not in ROUTABLE_HIGHWAYS:
        return f"highway={highway}"
    foot, access = tags.get("foot"), tags.get("access")
    if foot in _CLOSED_ACCESS:
        return f"foot={foot}"
    if access in _CLOSED_ACCESS and foot not in _FOOT_ALLOWED:
        return f"access={access}"
    if tags.get("oneway") in _ONEWAY_TIMED:
        return f"oneway={tags['oneway']}"
    return None


# --- building the site ---------------------------------------------------------------------------


def _direction(tags: dict[str, str]) -> int:
    """+1 one-way in the way's order, -1 one-way against it, 0 both ways."""
    oneway = tags.get("oneway", "").lower()
    if oneway == "-1":
        return -1
    if oneway in _ONEWAY_FORWARD:
        return 1
    if tags.get("junction") in _ROUND_JUNCTIONS and oneway != "no":
        return 1
    return 0


def _segments(data: _OsmData, stats: OsmStats) -> list[_Segment]:
    """One segment per consecutive node pair of the kept ways, skipping missing and repeated nodes."""
    out: list[_Segment] = []
    for way in data.ways:
        direction = _direction(way.tags)
        for k, (a, b) in enumerate(itertools.pairwise(way.refs)):
            if a not in data.coords or b not in data.coords:
                stats.segments_missing_node += 1
            elif a == b:
                stats.segments_repeated_node += 1
            elif direction < 0:
                out.append(_Segment(way, k, b, a, oneway=True))
            else:
                out.append(_Segment(way, k, a, b, oneway=direction > 0))
    return out


def _used_nodes(segments: Iterable[_Segment]) -> list[str]:
    """The OSM ids of the segments' end nodes, in order of first use."""
    return list(dict.fromkeys(n for s in segments for n in (s.a, s.b)))


def _default_origin(data: _OsmData, used: list[str]) -> GeoOrigin:
    if data.bounds is not None:
        minlat, minlon, maxlat, maxlon = data.bounds
        return GeoOrigin(round((minlat + maxlat) / 2, 6), round((minlon + maxlon) / 2, 6))
    if not used:
        return GeoOrigin(0.0, 0.0)
    lat = sum(data.coords[n][0] for n in used) / len(used)
    lon = sum(data.coords[n][1] for n in used) / len(used)
    return GeoOrigin(round(lat, 6), round(lon, 6))


def _site_name(path: str | os.PathLike[str]) -> str:
    name = Path(path).name
    for suffix in (".osm.xml", ".osm"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(path).stem or name


def _add_nodes(site: Site, data: _OsmData, used: list[str]) -> None:
    """Add the used nodes in ENU (one vectorised ``geodetic2enu`` call)."""
    if not used:
        return
    lat = np.array([data.coords[n][0] for n in used])
    lon = np.array([data.coords[n][1] for n in used])
    o = site.origin
    east, north, _ = pymap3d.geodetic2enu(lat, lon, o.alt, o.lat, o.lon, o.alt)
    for osm_id, x, y in zip(used, np.atleast_1d(east), np.atleast_1d(north), strict=True):
        site.add_node(Node(f"osm{osm_id}", float(x), float(y)))


def _geodesic_lengths(data: _OsmData, segments: list[_Segment]) -> list[float]:
    """Vincenty lengths in metres of all segments (one vectorised ``vdist`` call)."""
    if not segments:
        return []
    lat1, lon1 = np.array([data.coords[s.a] for s in segments]).T
    lat2, lon2 = np.array([data.coords[s.b] for s in segments]).T
    dist, _ = vdist(lat1, lon1, lat2, lon2)
    return [float(d) for d in np.atleast_1d(dist)]


@dataclass(frozen=True, slots=True)
class _NodeFlags:
    kerb: bool = False
    barrier: str | None = None
    gate: str | None = None


def _node_flags(site: Site, data: _OsmData) -> dict[str, _NodeFlags]:
    """Kerb/barrier/gate flags of the used nodes that have any; adds the ``Gate`` objects."""
    flags: dict[str, _NodeFlags] = {}
    for osm_id, tags in data.node_tags.items():
        node_id = f"osm{osm_id}"
        if node_id not in site.nodes:
            continue
        barrier = tags.get("barrier")
        gate = node_id if barrier in OPENABLE_GATES else None
        if gate:
            site.gates[gate] = Gate(id=gate, name=tags.get("name"))
        blocking = barrier if barrier and barrier not in OPENABLE_GATES | PASSABLE_BARRIERS else None
        kerb = _is_raised_kerb(tags)
        if kerb or blocking or gate:
            flags[osm_id] = _NodeFlags(kerb, blocking, gate)
    return flags


def _is_raised_kerb(tags: dict[str, str]) -> bool:
    """A kerb a wheeled robot cannot roll over (unknown ``kerb`` values count as raised)."""
    kerb = tags.get("kerb")
    if kerb is not None:
        return kerb not in PASSABLE_KERBS
    return tags.get("barrier") == "kerb"


def _add_edges(site: Site, data: _OsmData, segments: list[_Segment]) -> None:
    flags = _node_flags(site, data)
    none = _NodeFlags()
    for seg, length in zip(segments, _geodesic_lengths(data, segments), strict=True):
        fa, fb = flags.get(seg.a, none), flags.get(seg.b, none)
        tags = seg.way.tags
        site.add_edge(
            Edge(
                id=f"w{seg.way.id}.{seg.k}",
                a=f"osm{seg.a}",
                b=f"osm{seg.b}",
                oneway=seg.oneway,
                length=length,
                width=_tag_value(tags, "width", parse_width),
                speed_limit=_tag_value(tags, "maxspeed", parse_maxspeed),
                kerb=fa.kerb or fb.kerb or _way_kerb(seg),
                step=tags.get("highway") == "steps",
                barrier=fa.barrier or fb.barrier,
                gate=fa.gate or fb.gate,
                tags=_edge_tags(seg.way),
            )
        )


def _tag_value(tags: dict[str, str], key: str, parse: Callable[[str], float | None]) -> float | None:
    text = tags.get(key)
    return None if text is None else parse(text)


def _way_kerb(seg: _Segment) -> bool:
    """``kerb=raised|rolled|yes`` on a way marks its end segments (where a crossing meets the kerb)."""
    if seg.way.tags.get("kerb") not in RAISED_KERBS:
        return False
    return seg.k in (0, len(seg.way.refs) - 2)


def _edge_tags(way: _Way) -> dict[str, str]:
    tags = {k: way.tags[k] for k in _EDGE_TAG_KEYS if k in way.tags}
    tags["osm_way"] = way.id
    return tags


def _add_entrances(site: Site, data: _OsmData, stats: OsmStats) -> None:
    """``entrance=*`` nodes on the network with a ``name`` or ``ref`` become WAYPOINT places."""
    for osm_id, tags in data.node_tags.items():
        if "entrance" not in tags:
            continue
        node_id = f"osm{osm_id}"
        name = tags.get("name") or tags.get("ref")
        if not name or node_id not in site.nodes:
            stats.entrances_skipped += 1
            continue
        if name in site.places:
            name = f"{name} [{node_id}]"
        site.places[name] = Place(name, PlaceKind.WAYPOINT, node_id, tags={"entrance": tags["entrance"]})
