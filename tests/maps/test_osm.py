"""The OpenStreetMap importer: small hand-written files for each rule, then the real UW campus extract."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pymap3d
import pytest
from pymap3d.vincenty import vdist

from maps.errors import MapError, MapFormatError
from maps.importers.osm import import_osm, parse_maxspeed, parse_width, read_osm
from maps.model import GeoOrigin, PlaceKind, Site
from maps.routing import Router

# --- small files ---------------------------------------------------------------------------------

NEWLINE = "\n"
BOUNDS = '<bounds minlat="47.0" minlon="8.0" maxlat="47.002" maxlon="8.004"/>'
# four nodes on a line going east, about 75 m apart, plus a spare one to the north
NODES = "\n".join(
    f'<node id="{i}" lat="{lat}" lon="{lon}"/>'
    for i, lat, lon in [(1, 47.001, 8.001), (2, 47.001, 8.002), (3, 47.001, 8.003), (4, 47.001, 8.004),
                        (5, 47.002, 8.001)]
)  # fmt: skip


def way(way_id: int, refs: list[int], **tags: str) -> str:
    """An OSM ``<way>`` element (``highway=footway`` unless given)."""
    tags.setdefault("highway", "footway")
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    tag_xml = "".join(f'<tag k="{k.replace("__", ":")}" v="{v}"/>' for k, v in tags.items() if v)
    return f'<way id="{way_id}">{nds}{tag_xml}</way>'


def node(node_id: int, lat: float, lon: float, **tags: str) -> str:
    """An OSM ``<node>`` element with tags."""
    tag_xml = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f'<node id="{node_id}" lat="{lat}" lon="{lon}">{tag_xml}</node>'


def write_osm(tmp_path: Path, *body: str, bounds: str = BOUNDS, nodes: str = NODES, name: str = "t") -> Path:
    """Write a small .osm file and return its path."""
    path = tmp_path / f"{name}.osm"
    text = "\n".join(['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">', bounds, nodes, *body])
    path.write_text(text + "\n</osm>\n", encoding="utf-8")
    return path


def load(tmp_path: Path, *body: str, **kw: str) -> Site:
    """Write and import a small file."""
    return import_osm(write_osm(tmp_path, *body, **kw))


def test_segments_become_edges_with_geodesic_length_and_enu_nodes(tmp_path: Path) -> None:
    """Each consecutive node pair is one edge ``w{way}.{k}``; nodes are ``osm{id}`` in ENU, outdoors."""
    site = load(tmp_path, way(7, [1, 2, 3]))
    assert sorted(site.edges) == ["w7.0", "w7.1"]
    assert sorted(site.nodes) == ["osm1", "osm2", "osm3"]
    e = site.edges["w7.0"]
    assert (e.a, e.b, e.oneway) == ("osm1", "osm2", False)
    assert e.length == pytest.approx(float(vdist(47.001, 8.001, 47.001, 8.002)[0]), abs=1e-6)
    x, y, _ = pymap3d.geodetic2enu(47.001, 8.002, 0, 47.001, 8.002, 0)
    n2 = site.nodes["osm2"]
    assert n2.floor is None
    assert (n2.x, n2.y) == pytest.approx((float(x), float(y)), abs=1e-6)


def test_origin_is_bounds_centre_and_source_and_name_come_from_the_file(tmp_path: Path) -> None:
    """Without an origin the centre of <bounds> is used; source is the path, the name its stem."""
    path = write_osm(tmp_path, way(7, [1, 2]), name="campus_a")
    site = import_osm(path)
    assert site.origin == GeoOrigin(47.001, 8.002)
    assert site.source == str(path)
    assert site.name == "campus_a"


def test_origin_without_bounds_is_the_rounded_mean_of_used_nodes(tmp_path: Path) -> None:
    """Without <bounds> the origin is the mean of the nodes used by edges (node 5 is unused)."""
    site = load(tmp_path, way(7, [1, 2, 4]), bounds="")
    assert site.origin == GeoOrigin(47.001, round((8.001 + 8.002 + 8.004) / 3, 6))
    assert "osm5" not in site.nodes


def test_given_origin_is_used(tmp_path: Path) -> None:
    """An explicit origin places the nodes relative to it."""
    site = import_osm(write_osm(tmp_path, way(7, [1, 2])), origin=GeoOrigin(47.001, 8.001))
    assert (site.nodes["osm1"].x, site.nodes["osm1"].y) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert site.nodes["osm2"].x == pytest.approx(76.0, abs=1.0)


@pytest.mark.parametrize("value", ["yes", "1", "true"])
def test_oneway_forward(tmp_path: Path, value: str) -> None:
    """oneway=yes/1/true makes edges one-way in the way's node order."""
    site = load(tmp_path, way(7, [1, 2, 3], oneway=value))
    assert [(e.a, e.b, e.oneway) for e in site.edges.values()] == [
        ("osm1", "osm2", True),
        ("osm2", "osm3", True),
    ]


def test_oneway_minus_one_reverses_the_way(tmp_path: Path) -> None:
    """oneway=-1 runs against the node order; edge ids keep the way's segment index."""
    site = load(tmp_path, way(7, [1, 2, 3], oneway="-1"))
    assert (site.edges["w7.0"].a, site.edges["w7.0"].b) == ("osm2", "osm1")
    assert (site.edges["w7.1"].a, site.edges["w7.1"].b) == ("osm3", "osm2")
    assert all(e.oneway for e in site.edges.values())


def test_roundabout_is_oneway_and_oneway_no_is_two_way(tmp_path: Path) -> None:
    """junction=roundabout implies one-way; oneway=no stays two-way."""
    site = load(
        tmp_path,
        way(7, [1, 2, 5, 1], highway="service", junction="roundabout"),
        way(8, [3, 4], highway="service", oneway="no"),
    )
    assert all(site.edges[f"w7.{k}"].oneway for k in range(3))
    assert not site.edges["w8.0"].oneway


def test_reversible_ways_are_dropped(tmp_path: Path) -> None:
    """oneway=reversible changes direction during the day: the way is not imported."""
    result = read_osm(write_osm(tmp_path, way(7, [1, 2], highway="service", oneway="reversible")))
    assert result.site.edges == {}
    assert result.stats.ways_dropped["oneway=reversible"] == 1


@pytest.mark.parametrize(
    "highway", ["construction", "proposed", "abandoned", "platform", "motorway", "bus_stop"]
)
def test_unusable_highways_are_dropped_with_their_nodes(tmp_path: Path, highway: str) -> None:
    """Ways a robot cannot use are dropped, and nodes only they use are not imported."""
    site = load(tmp_path, way(7, [1, 2]), way(8, [3, 4], highway=highway))
    assert list(site.edges) == ["w7.0"]
    assert sorted(site.nodes) == ["osm1", "osm2"]


def test_ways_without_highway_are_ignored(tmp_path: Path) -> None:
    """A way without a highway tag (a fence, a building) is not a passage."""
    site = load(tmp_path, way(7, [1, 2], highway="", barrier="fence"))
    assert site.edges == {}


@pytest.mark.parametrize(
    ("tags", "kept"),
    [
        ({"access": "private"}, False),
        ({"access": "no"}, False),
        ({"access": "no", "foot": "yes"}, True),
        ({"access": "private", "foot": "designated"}, True),
        ({"foot": "no"}, False),
        ({"access": "destination"}, True),
        ({"access": "customers"}, True),
    ],
)
def test_access_rule_foot_overrides_access(tmp_path: Path, tags: dict[str, str], kept: bool) -> None:
    """access=no/private drops a way unless foot=yes/designated/permissive; foot=no/private drops it."""
    site = load(tmp_path, way(7, [1, 2], **tags))
    assert bool(site.edges) is kept


def test_steps_are_flagged(tmp_path: Path) -> None:
    """highway=steps sets ``step`` on every edge of the way, and only there."""
    site = load(tmp_path, way(7, [1, 2, 3], highway="steps"), way(8, [3, 4]))
    assert [e.step for e in site.edges.values()] == [True, True, False]


@pytest.mark.parametrize(
    ("tags", "kerb"),
    [
        ({"barrier": "kerb"}, True),
        ({"barrier": "kerb", "kerb": "raised"}, True),
        ({"barrier": "kerb", "kerb": "lowered"}, False),
        ({"barrier": "kerb", "kerb": "flush"}, False),
        ({"kerb": "raised"}, True),
        ({"kerb": "rolled"}, True),
        ({"kerb": "yes"}, True),
        ({"kerb": "no"}, False),
        ({"highway": "crossing"}, False),
    ],
)
def test_kerb_nodes_flag_touching_edges(tmp_path: Path, tags: dict[str, str], kerb: bool) -> None:
    """A raised kerb on a node flags the edges touching it; lowered/flush kerbs are passable."""
    nodes = NODES.replace('<node id="2" lat="47.001" lon="8.002"/>', node(2, 47.001, 8.002, **tags))
    site = load(tmp_path, way(7, [1, 2, 3, 4]), nodes=nodes)
    assert [e.kerb for e in site.edges.values()] == [kerb, kerb, False]


def test_kerb_on_a_crossing_way_flags_its_end_segments(tmp_path: Path) -> None:
    """kerb=yes on a way (a crossing) flags its first and last segments, where it meets the pavement."""
    site = load(tmp_path, way(7, [1, 2, 3, 4], footway="crossing", kerb="yes"))
    assert [e.kerb for e in site.edges.values()] == [True, False, True]


@pytest.mark.parametrize(
    "barrier", ["bollard", "block", "chain", "cycle_barrier", "turnstile", "fence", "wall"]
)
def test_blocking_barriers_name_the_barrier_on_touching_edges(tmp_path: Path, barrier: str) -> None:
    """A blocking barrier on a node is named on the edges touching it; no gate is created."""
    nodes = NODES.replace('<node id="3" lat="47.001" lon="8.003"/>', node(3, 47.001, 8.003, barrier=barrier))
    site = load(tmp_path, way(7, [1, 2, 3, 4]), nodes=nodes)
    assert [e.barrier for e in site.edges.values()] == [None, barrier, barrier]
    assert site.gates == {}


@pytest.mark.parametrize("barrier", ["toll_booth", "entrance", "height_restrictor"])
def test_passable_barriers_do_not_block(tmp_path: Path, barrier: str) -> None:
    """Barriers that do not stop a robot leave the edges free."""
    nodes = NODES.replace('<node id="2" lat="47.001" lon="8.002"/>', node(2, 47.001, 8.002, barrier=barrier))
    site = load(tmp_path, way(7, [1, 2, 3]), nodes=nodes)
    assert all(e.barrier is None and e.gate is None for e in site.edges.values())


@pytest.mark.parametrize("barrier", ["gate", "lift_gate", "swing_gate", "sliding_gate"])
def test_openable_gates_become_gate_objects_on_touching_edges(tmp_path: Path, barrier: str) -> None:
    """A gate node becomes ``Gate("osm{id}")`` named by its name tag, set on the edges touching it."""
    nodes = NODES.replace(
        '<node id="2" lat="47.001" lon="8.002"/>', node(2, 47.001, 8.002, barrier=barrier, name="East Gate")
    ).replace('<node id="4" lat="47.001" lon="8.004"/>', node(4, 47.001, 8.004, barrier=barrier))
    site = load(tmp_path, way(7, [1, 2, 3, 4]), nodes=nodes)
    assert site.gates["osm2"].name == "East Gate"
    assert site.gates["osm4"].name is None
    assert [e.gate for e in site.edges.values()] == ["osm2", "osm2", "osm4"]
    assert all(e.barrier is None for e in site.edges.values())


@pytest.mark.parametrize(
    ("text", "metres"),
    [
        ("2", 2.0),
        ("2.5 m", 2.5),
        ("2.5m", 2.5),
        ("80 cm", 0.8),
        ("6'", 6 * 0.3048),
        ("6 ft", 6 * 0.3048),
        ("40'0\"", 40 * 0.3048),
        ("5'6\"", 5 * 0.3048 + 6 * 0.0254),
        ("wide", None),
        ("2-3", None),
        ("2,5", None),
        ("", None),
        ("0", None),
        ("3 parsecs", None),
    ],
)
def test_parse_width(text: str, metres: float | None) -> None:
    """Widths in metres, centimetres, feet and feet-inches parse; anything else gives None."""
    assert parse_width(text) == (None if metres is None else pytest.approx(metres))


@pytest.mark.parametrize(
    ("text", "mps"),
    [
        ("30", 30 / 3.6),
        ("30 km/h", 30 / 3.6),
        ("20 mph", 20 * 0.44704),
        ("15mph", 15 * 0.44704),
        ("10 knots", 10 * 1852 / 3600),
        ("walk", None),
        ("none", None),
        ("DE:urban", None),
        ("30;50", None),
    ],
)
def test_parse_maxspeed(text: str, mps: float | None) -> None:
    """maxspeed is km/h by default, mph and knots are converted; symbolic values give None."""
    assert parse_maxspeed(text) == (None if mps is None else pytest.approx(mps))


def test_width_maxspeed_and_tags_reach_the_edges(tmp_path: Path) -> None:
    """width (m), maxspeed (m/s) and the kept tags (highway, name, surface, osm_way) are on each edge."""
    site = load(
        tmp_path,
        way(7, [1, 2], highway="service", width="15'", maxspeed="20 mph", name="Stevens Way",
            surface="asphalt", lit="yes"),
        way(8, [2, 3], width="broad", maxspeed="walk"),
    )  # fmt: skip
    e, f = site.edges["w7.0"], site.edges["w8.0"]
    assert e.width == pytest.approx(4.572)
    assert e.speed_limit == pytest.approx(8.9408)
    assert e.tags == {"highway": "service", "name": "Stevens Way", "surface": "asphalt", "osm_way": "7"}
    assert (f.width, f.speed_limit) == (None, None)


def test_named_entrances_become_waypoints(tmp_path: Path) -> None:
    """entrance nodes on the network become WAYPOINT places named by name, else ref; others are skipped."""
    nodes = "\n".join(
        [
            node(1, 47.001, 8.001, entrance="main", name="Library"),
            node(2, 47.001, 8.002, entrance="yes", ref="B2"),
            node(3, 47.001, 8.003, entrance="yes"),
            node(4, 47.001, 8.004, entrance="main", name="Library"),
            node(5, 47.002, 8.001, entrance="main", name="Off network"),
        ]
    )
    result = read_osm(write_osm(tmp_path, way(7, [1, 2, 3, 4]), nodes=nodes))
    places = result.site.places
    assert sorted(places) == ["B2", "Library", "Library [osm4]"]
    lib = places["Library"]
    assert (lib.kind, lib.node, lib.tags) == (PlaceKind.WAYPOINT, "osm1", {"entrance": "main"})
    assert places["B2"].tags == {"entrance": "yes"}
    assert result.stats.entrances_skipped == 2


def test_segments_with_missing_nodes_are_skipped_and_counted(tmp_path: Path) -> None:
    """A segment touching a node absent from the file is skipped; the rest of the way is kept."""
    result = read_osm(write_osm(tmp_path, way(7, [1, 2, 99, 3, 4])))
    assert sorted(result.site.edges) == ["w7.0", "w7.3"]
    assert result.stats.segments_missing_node == 2
    assert "osm99" not in result.site.nodes


def test_short_ways_and_repeated_nodes_are_skipped(tmp_path: Path) -> None:
    """A way with one node is skipped (not an error); a repeated node gives no zero-length loop."""
    result = read_osm(write_osm(tmp_path, way(7, [1]), way(8, [2, 2, 3])))
    assert list(result.site.edges) == ["w8.1"]
    assert result.stats.ways_too_short == 1
    assert result.stats.segments_repeated_node == 1


def test_deleted_elements_are_ignored(tmp_path: Path) -> None:
    """JOSM's action="delete" ways are not imported."""
    site = load(tmp_path, way(7, [1, 2]).replace('<way id="7"', '<way id="7" action="delete"'))
    assert site.edges == {}


# --- errors --------------------------------------------------------------------------------------


def error_of(path: Path) -> MapError:
    """The error importing ``path`` raises."""
    with pytest.raises(MapError) as info:
        import_osm(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{path}: ")
    return info.value


def test_truncated_xml_names_the_line(tmp_path: Path) -> None:
    """A file cut short is one error line naming the line where it ends."""
    path = write_osm(tmp_path, way(7, [1, 2]))
    text = path.read_text()
    head = text[: text.index("<way")]
    path.write_text(head + '<way id="7"><nd ref=')
    err = error_of(path)
    assert isinstance(err, MapFormatError)
    assert err.element == f"line {head.count(NEWLINE) + 1}"
    assert "truncated" in err.what


def test_malformed_xml_names_the_line(tmp_path: Path) -> None:
    """Mismatched tags are reported with their line number."""
    path = write_osm(tmp_path, "<way id='7'>\n<nd ref='1'/></node>")
    err = error_of(path)
    assert err.element == "line 10"
    assert "mismatched tag" in err.what


def test_empty_file_is_a_format_error(tmp_path: Path) -> None:
    """An empty file is a truncated XML file."""
    path = tmp_path / "empty.osm"
    path.write_text("")
    assert error_of(path).element == "line 1"


def test_root_must_be_osm(tmp_path: Path) -> None:
    """Any other XML document (here GPX) is refused by its root element."""
    path = tmp_path / "track.osm"
    path.write_text('<?xml version="1.0"?>\n<gpx version="1.1"><trk/></gpx>\n')
    err = error_of(path)
    assert err.element == "<gpx>"
    assert "not <osm>" in err.what


@pytest.mark.parametrize(
    ("attrs", "what"),
    [
        ('lon="8.0"', "missing lat"),
        ('lat="47.0"', "missing lon"),
        ('lat="north" lon="8.0"', "lat 'north' is not a number"),
        ('lat="95.0" lon="8.0"', "lat 95.0 is out of range [-90, 90]"),
        ('lat="47.0" lon="-181"', "lon -181 is out of range [-180, 180]"),
        ('lat="nan" lon="8.0"', "lat nan is out of range [-90, 90]"),
    ],
)
def test_bad_node_coordinates_name_the_node(tmp_path: Path, attrs: str, what: str) -> None:
    """A node without a valid lat/lon is an error naming ``node {id}``, even when no way uses it."""
    err = error_of(write_osm(tmp_path, f'<node id="123" {attrs}/>', way(7, [1, 2])))
    assert (err.element, err.what) == ("node 123", what)


def test_nd_without_ref_names_the_way(tmp_path: Path) -> None:
    """A way member without a ref is an error naming the way."""
    err = error_of(write_osm(tmp_path, '<way id="7"><nd ref="1"/><nd/><tag k="highway" v="path"/></way>'))
    assert (err.element, err.what) == ("way 7", "<nd> without ref")


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    """A file that cannot be read is a MapError line, not an OSError traceback."""
    err = error_of(tmp_path / "nowhere.osm")
    assert "cannot read" in err.what


def test_truncated_real_file(tmp_path: Path, shared_data: Path) -> None:
    """The first 200 kB of the real extract is reported as truncated at its last line."""
    data = (shared_data / "maps/osm/uw_campus.osm").read_bytes()[:200_000]
    path = tmp_path / "uw_cut.osm"
    path.write_bytes(data)
    err = error_of(path)
    assert err.element == f"line {data.count(NEWLINE.encode()) + 1}"
    assert "truncated" in err.what


# --- the real file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawOsm:
    """The real file as plain XML, read independently of the importer."""

    coords: dict[str, tuple[float, float]]
    node_tags: dict[str, dict[str, str]]
    ways: dict[str, tuple[list[str], dict[str, str]]]


@pytest.fixture(scope="module")
def uw_path(shared_data: Path) -> Path:
    """The real UW campus extract."""
    return shared_data / "maps/osm/uw_campus.osm"


@pytest.fixture(scope="module")
def uw(uw_path: Path) -> Site:
    """The real UW campus extract, imported once."""
    return import_osm(uw_path)


def tag_dict(elem: ET.Element) -> dict[str, str]:
    """The element's tags as a dict."""
    return {t.get("k", ""): t.get("v", "") for t in elem.iter("tag")}


@pytest.fixture(scope="module")
def raw(uw_path: Path) -> RawOsm:
    """The real file's nodes and ways, parsed with plain ElementTree."""
    root = ET.parse(uw_path).getroot()
    coords = {n.get("id", ""): (float(n.get("lat", "")), float(n.get("lon", ""))) for n in root.iter("node")}
    node_tags = {n.get("id", ""): tag_dict(n) for n in root.iter("node")}
    ways = {
        w.get("id", ""): ([nd.get("ref", "") for nd in w.iter("nd")], tag_dict(w)) for w in root.iter("way")
    }
    return RawOsm(coords, node_tags, ways)


def osm_id(node_id: str) -> str:
    """The OSM id of an imported node id (``osm123`` → ``123``)."""
    return node_id.removeprefix("osm")


def test_real_file_counts_are_plausible(uw: Site) -> None:
    """Thousands of nodes and edges; every edge joins imported nodes with a positive length."""
    assert 5000 < len(uw.nodes) < 7000
    assert 6000 < len(uw.edges) < 9000
    assert all(e.a in uw.nodes and e.b in uw.nodes for e in uw.edges.values())
    assert all(e.length is not None and e.length > 0 for e in uw.edges.values())
    assert uw.name == "uw_campus"


def test_real_file_steps_are_flagged(uw: Site) -> None:
    """Steps exist, and exactly the highway=steps edges carry ``step``."""
    steps = [e for e in uw.edges.values() if e.step]
    assert len(steps) > 100
    assert all((e.tags["highway"] == "steps") == e.step for e in uw.edges.values())


def test_real_file_kerbs_barriers_and_gates(uw: Site, raw: RawOsm) -> None:
    """Raised kerbs, bollards and gates of the file reach the edges touching them."""
    edges = list(uw.edges.values())
    assert sum(e.kerb for e in edges) > 50
    assert sum(e.barrier == "bollard" for e in edges) > 50
    gated = [e for e in edges if e.gate]
    assert len(uw.gates) >= 5
    assert {e.gate for e in gated} == set(uw.gates)
    for e in gated:
        assert e.gate in (e.a, e.b)
        assert raw.node_tags[osm_id(e.gate)]["barrier"] in {"gate", "lift_gate"}


def test_real_file_kerb_flags_follow_the_kerb_nodes(uw: Site, raw: RawOsm) -> None:
    """An edge is kerbed exactly when it touches a raised kerb node or is the end of a kerb=yes way."""
    raised = {
        n
        for n, t in raw.node_tags.items()
        if t.get("kerb") in {"raised", "rolled", "yes"} or (t.get("barrier") == "kerb" and "kerb" not in t)
    }
    assert any(t.get("kerb") in {"lowered", "flush"} for t in raw.node_tags.values())
    for e in uw.edges.values():
        refs, tags = raw.ways[e.tags["osm_way"]]
        k = int(e.id.rsplit(".", 1)[1])
        way_end = tags.get("kerb") == "yes" and k in (0, len(refs) - 2)
        assert e.kerb == (bool({osm_id(e.a), osm_id(e.b)} & raised) or way_end)


def test_real_file_oneway_ways_give_one_directional_edges(uw: Site, raw: RawOsm) -> None:
    """Every oneway=yes way's edges are one-way and run in the way's node order; others are two-way."""
    oneway = [e for e in uw.edges.values() if e.oneway]
    assert len(oneway) > 100
    for e in uw.edges.values():
        refs, tags = raw.ways[e.tags["osm_way"]]
        k = int(e.id.rsplit(".", 1)[1])
        assert e.oneway == (tags.get("oneway") == "yes")
        assert (osm_id(e.a), osm_id(e.b)) == (refs[k], refs[k + 1])


def test_real_file_private_ways_are_dropped(uw: Site, raw: RawOsm) -> None:
    """Ways with access=no/private and no foot permission are not imported."""
    used_ways = {e.tags["osm_way"] for e in uw.edges.values()}
    for way_id, (_, tags) in raw.ways.items():
        closed = tags.get("access") in {"no", "private"} and tags.get("foot") not in {
            "yes",
            "designated",
            "permissive",
        }
        assert (way_id in used_ways) is not closed


def test_real_file_enu_chord_matches_geodesic_length(uw: Site) -> None:
    """For edges longer than 10 m the ENU chord is within 0.5% of the geodesic length."""
    long_edges = [e for e in uw.edges.values() if e.length is not None and e.length > 10]
    assert len(long_edges) > 1000
    for e in long_edges:
        a, b = uw.nodes[e.a], uw.nodes[e.b]
        assert math.dist((a.x, a.y), (b.x, b.y)) == pytest.approx(e.length, rel=0.005)


def test_real_file_main_component_holds_most_nodes(uw: Site) -> None:
    """The main weakly connected component holds over 95% of the nodes (98.9% on this extract)."""
    g = nx.DiGraph()
    g.add_nodes_from(uw.nodes)
    g.add_edges_from((e.a, e.b) for e in uw.edges.values())
    main = max(nx.weakly_connected_components(g), key=len)
    assert len(main) / len(uw.nodes) > 0.95


def test_real_file_cart_route_length_is_the_sum_of_geodesic_segments(uw: Site, raw: RawOsm) -> None:
    """A cart route between two far-apart nodes is as long (±0.5%) as its path's raw geodesic segments."""
    router = Router(uw, "cart")
    components: list[set[str]] = list(nx.strongly_connected_components(router.graph))
    largest = max(components, key=len)
    main = sorted(largest)
    sample = main[:: max(1, len(main) // 150)]
    a, b = max(
        ((p, q) for i, p in enumerate(sample) for q in sample[i + 1 :]),
        key=lambda pq: math.dist(
            (uw.nodes[pq[0]].x, uw.nodes[pq[0]].y), (uw.nodes[pq[1]].x, uw.nodes[pq[1]].y)
        ),
    )
    route = router.route(a, b)
    assert route.length_m > 1000
    pts = [raw.coords[osm_id(n)] for n in route.path]
    geodesic = math.fsum(float(vdist(*p, *q)[0]) for p, q in itertools.pairwise(pts))
    assert route.length_m == pytest.approx(geodesic, rel=0.005)
    assert not any(uw.edges[s.ref].step or uw.edges[s.ref].kerb for s in route.steps)
