"""What a map holds and what is wrong with it: the data behind ``robopost map info``.

Problems are things a loaded map may have but should not: places their profile cannot reach (there and
back), lifts whose landings are missing or connected to nothing, lifts serving fewer than two floors,
edges shorter than the straight line between their ends, nodes with no edge at all.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import networkx as nx

from maps.model import Place, PlaceKind, Site, edge_length, edge_points, polyline_length
from maps.routing import Router

LENGTH_TOLERANCE_M = 0.01


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a map: ``element`` names it, ``what`` says why."""

    element: str
    what: str

    def __str__(self) -> str:
        return f"{self.element}: {self.what}"


def _anchor_nodes(site: Site, router: Router, place: Place) -> set[str]:
    """Where a place must be reachable from (and back to) for its profile.

    Outdoor places: the station(s). Indoor places: the hand-off points of their building, else its
    entrances. When the site has no such anchor (an imported building), the largest strongly
    connected part of the profile's graph stands in.
    """
    node = site.nodes[place.node]
    anchors: set[str] = set()
    if node.outdoor:
        anchors = {p.node for p in site.places.values() if p.kind == PlaceKind.STATION}
    else:
        building = site.building_of(place.node)
        anchors = {
            p.node
            for p in site.places.values()
            if p.kind == PlaceKind.HANDOFF and site.building_of(p.node) == building
        }
        if not anchors:
            for e in site.entrances():
                for end in (e.a, e.b):
                    if site.nodes[end].floor and site.building_of(end) == building:
                        anchors.add(end)
    anchors = {a for a in anchors if a in router.graph}
    if not anchors and router.graph.number_of_nodes():
        components: list[set[str]] = list(nx.strongly_connected_components(router.graph))
        anchors = max(components, key=len)
    return anchors


def unreachable_places(site: Site) -> list[Problem]:
    """Places their profile cannot reach from their anchor and come back from."""
    problems: list[Problem] = []
    routers: dict[str, Router] = {}
    components: dict[str, dict[str, int]] = {}
    for place in site.places.values():
        profile = site.place_profile(place)
        if profile is None:
            continue
        if profile not in site.profiles:
            problems.append(Problem(f"places.{place.name}", f"profile {profile!r} does not exist"))
            continue
        if profile not in routers:
            routers[profile] = Router(site, profile)
            comp_of: dict[str, int] = {}
            for i, comp in enumerate(nx.strongly_connected_components(routers[profile].graph)):
                comp_of.update(dict.fromkeys(comp, i))
            components[profile] = comp_of
        router, comp_of = routers[profile], components[profile]
        if place.node not in comp_of:
            problems.append(Problem(f"places.{place.name}", f"profile {profile!r} cannot use its node"))
            continue
        anchors = _anchor_nodes(site, router, place)
        if not any(comp_of.get(a) == comp_of[place.node] for a in anchors):
            problems.append(
                Problem(
                    f"places.{place.name}",
                    f"{place.kind.value} not reachable there and back by profile {profile!r}",
                )
            )
    return problems


def lift_problems(site: Site) -> list[Problem]:
    """Lifts that cannot carry anyone: too few floors, landings missing or connected to nothing."""
    degree: Counter[str] = Counter()
    for e in site.edges.values():
        degree[e.a] += 1
        degree[e.b] += 1
    problems: list[Problem] = []
    for lift in site.lifts.values():
        if len(lift.landings) < 2:
            problems.append(Problem(f"lifts.{lift.id}", "serves fewer than two floors"))
        for floor, node in lift.landings.items():
            elem = f"lifts.{lift.id}.landings.{floor}"
            if node not in site.nodes:
                problems.append(Problem(elem, f"node {node!r} does not exist"))
            elif degree[node] == 0:
                problems.append(Problem(elem, f"landing {node!r} is dangling: no edge reaches it"))
    return problems


def geometry_problems(site: Site) -> list[Problem]:
    """Edges shorter than their chord; nodes no edge and no lift touches."""
    problems: list[Problem] = []
    used: set[str] = set()
    for e in site.edges.values():
        used.update((e.a, e.b))
        if e.length is not None:
            chord = polyline_length(edge_points(site, e))
            if e.length + LENGTH_TOLERANCE_M < chord * (1 - 1e-3):
                problems.append(
                    Problem(
                        f"edges.{e.id}",
                        f"length {e.length:.2f} m is shorter than its geometry ({chord:.2f} m)",
                    )
                )
    for lift in site.lifts.values():
        used.update(lift.landings.values())
    lonely = [n for n in site.nodes if n not in used]
    if lonely:
        sample = ", ".join(lonely[:5]) + (" ..." if len(lonely) > 5 else "")
        problems.append(Problem("nodes", f"{len(lonely)} node(s) without any edge: {sample}"))
    return problems


def site_problems(site: Site) -> list[Problem]:
    """All problems of a site, most serious first."""
    return lift_problems(site) + unreachable_places(site) + geometry_problems(site)


def _components(site: Site) -> tuple[int, set[str]]:
    g = nx.Graph()
    g.add_nodes_from(site.nodes)
    g.add_edges_from((e.a, e.b) for e in site.edges.values())
    for lift in site.lifts.values():
        ends = [n for n in lift.landings.values() if n in site.nodes]
        g.add_edges_from(pairwise(ends))
    comps = list(nx.connected_components(g))
    return len(comps), (max(comps, key=len) if comps else set())


def site_info(site: Site) -> dict[str, Any]:
    """A JSON-ready summary: floors, lifts, doors, gates, nodes, edges, places, components, problems."""
    count, main = _components(site)
    main_edges = sum(1 for e in site.edges.values() if e.a in main)
    total_len = math.fsum(edge_length(site, e) for e in site.edges.values())
    floors = [
        {
            "id": f.id,
            "building": f.building,
            "name": f.name,
            "elevation": f.elevation,
            "nodes": sum(1 for n in site.nodes.values() if n.floor == f.id),
        }
        for f in sorted(site.floors.values(), key=lambda f: (f.building, f.elevation))
    ]
    return {
        "site": site.name,
        "source": site.source,
        "origin": {"lat": site.origin.lat, "lon": site.origin.lon, "alt": site.origin.alt},
        "buildings": [{"id": b.id, "name": b.name, "label": b.label} for b in site.buildings.values()],
        "floors": floors,
        "lifts": [{"id": li.id, "building": li.building, "floors": li.floors} for li in site.lifts.values()],
        "doors": sorted(site.doors),
        "gates": sorted(site.gates),
        "entrances": [e.id for e in site.entrances()],
        "nodes": len(site.nodes),
        "edges": len(site.edges),
        "network_length_m": round(total_len, 1),
        "places": {
            p.name: {"kind": p.kind.value, "node": p.node, "label": p.label} for p in site.places.values()
        },
        "place_kinds": dict(Counter(p.kind.value for p in site.places.values())),
        "components": count,
        "main_component": {
            "nodes": len(main),
            "edges": main_edges,
            "share": round(len(main) / len(site.nodes), 4) if site.nodes else 0.0,
        },
        "counts": {
            "floors": len(site.floors),
            "lifts": len(site.lifts),
            "doors": len(site.doors),
            "gates": len(site.gates),
            "places": len(site.places),
            "buildings": len(site.buildings),
        },
        "problems": [str(p) for p in site_problems(site)],
    }
