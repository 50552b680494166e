"""A small hand-made site that exercises every routing rule (fixture `small_site`, builder for tests)."""

from __future__ import annotations

import pytest

from maps.model import (
    Building,
    Cabin,
    Door,
    Edge,
    Floor,
    Gate,
    GeoOrigin,
    Lift,
    Node,
    Place,
    PlaceKind,
    Site,
)


def build_small_site() -> Site:
    """Outdoor loop S-A-B-C-Y with a one-way, a kerb, a step and a narrow shortcut; a 3-floor building.

    ::

        X (step)     Y (the way back from C to S)
        S ──── A ──(kerb)── C          building H (floors H1, H2, H3), entrance C → h1 with gate G
        │      │(narrow)    │          lift LA serves H1..H3 at h1/h2a/h3a, lift LB serves H1, H3
        └──────B ─(oneway)──┘          door D between h3a and the office on H3
    """
    site = Site("small", GeoOrigin(29.58, 105.06, 350.0), label="小校园")
    for nid, x, y in [
        ("S", 0, 0),
        ("A", 100, 0),
        ("B", 100, -50),
        ("C", 200, 0),
        ("X", 50, 100),
        ("Y", 100, 150),
    ]:
        site.add_node(Node(nid, float(x), float(y)))
    site.buildings["H"] = Building(
        "H", "Hall", "楼", ((190.0, 10.0), (230.0, 10.0), (230.0, 40.0), (190.0, 40.0))
    )
    for i in (1, 2, 3):
        site.floors[f"H{i}"] = Floor(f"H{i}", "H", f"{i}F", 3.6 * (i - 1))
    site.add_node(Node("h1", 200.0, 20.0, "H1"))
    site.add_node(Node("h1b", 220.0, 20.0, "H1"))
    site.add_node(Node("h2a", 200.0, 20.0, "H2"))
    site.add_node(Node("h3a", 200.0, 20.0, "H3"))
    site.add_node(Node("h3b", 220.0, 20.0, "H3"))
    site.add_node(Node("off", 220.0, 30.0, "H3"))
    site.gates["G"] = Gate("G", "gate", "H", pass_s=4.0)
    site.doors["D"] = Door("D", "office door", "H", iot="H/3/D", pass_s=6.0)
    edges = [
        Edge("SA", "S", "A", width=6.0, speed_limit=2.0),
        Edge("SB", "S", "B", width=3.0, geometry=((0.0, -50.0),)),
        Edge("AB", "A", "B", width=1.0),
        Edge("AC", "A", "C", width=3.0, kerb=True),
        Edge("BC", "B", "C", width=3.0, oneway=True),
        Edge("SX", "S", "X", width=3.0, step=True),
        Edge("CY", "C", "Y", width=3.0),
        Edge("YS", "Y", "S", width=3.0),
        Edge("C-h1", "C", "h1", width=2.0, gate="G"),
        Edge("h1-h1b", "h1", "h1b", width=2.0),
        Edge("h3a-h3b", "h3a", "h3b", width=2.0),
        Edge("h3b-off", "h3b", "off", width=1.0, door="D"),
    ]
    for e in edges:
        site.add_edge(e)
    site.lifts["LA"] = Lift(
        "LA", "H", Cabin(200.0, 20.0), {"H1": "h1", "H2": "h2a", "H3": "h3a"}, wait_s=20.0
    )
    site.lifts["LB"] = Lift("LB", "H", Cabin(220.0, 20.0), {"H1": "h1b", "H3": "h3b"}, wait_s=60.0)
    site.places["station"] = Place("station", PlaceKind.STATION, "S", "邮政驿站")
    site.places["stop_c"] = Place("stop_c", PlaceKind.STOP, "C", "停靠点C")
    site.places["mailroom"] = Place("mailroom", PlaceKind.HANDOFF, "h1", "收发室")
    site.places["office"] = Place("office", PlaceKind.OFFICE, "off")
    return site


@pytest.fixture
def small_site() -> Site:
    """A fresh copy of the small site (tests may change it)."""
    return build_small_site()
