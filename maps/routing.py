"""Fastest routes and travel-time matrices over the campus graph for one robot profile.

A ``Router`` freezes a ``Site`` and a ``Profile`` into a directed graph whose edge weight is the travel
time in seconds:

* a passage: ``length / min(profile speed, edge speed limit)`` plus the door's and the gate's pass time;
  an edge the profile may not use (too narrow, kerb, step, barrier, door or gate it cannot open,
  outdoor/indoor not allowed) is left out;
* a lift ride between two landings: expected wait + door open/close at both ends + storeys × time per
  storey (storeys counted in the building's floor order, by elevation).

Routes are Dijkstra shortest paths (networkx); matrices use SciPy's compiled Dijkstra on the same
graph, so a route's time always equals the matrix entry and the sum of its steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any, Literal

import networkx as nx
import numpy as np
import pymap3d
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from maps.errors import RoutingError, UnknownPlaceError
from maps.model import OUTDOOR, Edge, Lift, Profile, Site, edge_length

MIN_STEP_S = 1e-6
"""Lower bound of a step's time, so that coincident nodes still make a positive weight."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a route: a passage (``kind='edge'``) or a lift ride (``kind='lift'``)."""

    kind: Literal["edge", "lift"]
    ref: str  # edge id or lift id
    a: str
    b: str
    length_m: float
    time_s: float
    door: str | None = None
    gate: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """A fastest route. ``floors`` lists the floors passed in order (``outdoor`` for outdoor parts)."""

    profile: str
    start: str
    end: str
    path: list[str]
    steps: list[Step]
    length_m: float
    time_s: float
    floors: list[str] = field(default_factory=list)
    lifts: list[str] = field(default_factory=list)
    doors: list[str] = field(default_factory=list)
    gates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Router:
    """Routing for one profile on one site. Build once, query many times (the site must not change)."""

    def __init__(self, site: Site, profile: str | Profile, closed_lifts: Iterable[str] = ()) -> None:
        """``closed_lifts``: lift ids out of service, left out of every route."""
        if isinstance(profile, str):
            if profile not in site.profiles:
                known = ", ".join(sorted(site.profiles))
                raise RoutingError(f"unknown profile {profile!r} (known: {known})")
            profile = site.profiles[profile]
        self.site = site
        self.profile = profile
        self.closed_lifts = frozenset(closed_lifts)
        self.graph = nx.DiGraph()
        self._build()
        self._index: dict[str, int] | None = None
        self._csr: csr_matrix | None = None

    # ---- graph -------------------------------------------------------------------------------

    def node_allowed(self, node_id: str) -> bool:
        node = self.site.nodes[node_id]
        return self.profile.outdoor if node.outdoor else self.profile.indoor

    def edge_allowed(self, edge: Edge) -> bool:
        """Whether the profile may use the passage at all (in its allowed direction)."""
        p = self.profile
        if not (self.node_allowed(edge.a) and self.node_allowed(edge.b)):
            return False
        if edge.width is not None and edge.width < p.min_width:
            return False
        blocked = (
            (edge.kerb and not p.kerbs)
            or (edge.step and not p.steps)
            or (edge.barrier is not None and not p.barriers)
            or (edge.door is not None and not p.doors)
            or (edge.gate is not None and not p.gates)
        )
        return not blocked

    def edge_time(self, edge: Edge) -> float:
        speed = self.profile.max_speed
        if edge.speed_limit is not None:
            speed = min(speed, edge.speed_limit)
        t = edge_length(self.site, edge) / speed
        if edge.door is not None:
            t += self.site.doors[edge.door].pass_s
        if edge.gate is not None:
            t += self.site.gates[edge.gate].pass_s
        return max(t, MIN_STEP_S)

    def lift_time(self, lift: Lift, from_floor: str, to_floor: str) -> float:
        order = [f.id for f in self.site.floors_of(lift.building)]
        storeys = abs(order.index(from_floor) - order.index(to_floor))
        doors = 2 * (lift.door_open_s + lift.door_close_s)
        return lift.wait_s + doors + storeys * lift.floor_travel_s

    def _add(self, a: str, b: str, step: Step) -> None:
        old = self.graph.get_edge_data(a, b)
        if old is None or step.time_s < old["time"]:
            self.graph.add_edge(a, b, time=step.time_s, step=step)

    def _build(self) -> None:
        for nid in self.site.nodes:
            if self.node_allowed(nid):
                self.graph.add_node(nid)
        for e in self.site.edges.values():
            if not self.edge_allowed(e):
                continue
            length, time = edge_length(self.site, e), self.edge_time(e)
            self._add(e.a, e.b, Step("edge", e.id, e.a, e.b, length, time, e.door, e.gate))
            if not e.oneway:
                self._add(e.b, e.a, Step("edge", e.id, e.b, e.a, length, time, e.door, e.gate))
        if self.profile.lifts:
            for lift in self.site.lifts.values():
                if lift.id not in self.closed_lifts:
                    self._add_lift(lift)

    def _add_lift(self, lift: Lift) -> None:
        stops = [(f, n) for f, n in lift.landings.items() if n in self.graph]
        for fa, na in stops:
            for fb, nb in stops:
                if fa != fb:
                    self._add(na, nb, Step("lift", lift.id, na, nb, 0.0, self.lift_time(lift, fa, fb)))

    # ---- ends ----------------------------------------------------------------------------------

    def resolve(self, spec: str) -> str:
        """A node id for a route end: a place name, a node id, or ``lat,lon`` (nearest usable node)."""
        place = self.site.places.get(spec)
        if place is not None:
            return place.node
        if spec in self.site.nodes:
            return spec
        latlon = _parse_latlon(spec)
        if latlon is None:
            raise UnknownPlaceError(f"{spec!r} is neither a place, a node nor 'lat,lon'")
        o = self.site.origin
        x, y, _ = pymap3d.geodetic2enu(latlon[0], latlon[1], o.alt, o.lat, o.lon, o.alt)
        return self.nearest_node(float(x), float(y))

    def nearest_node(self, x: float, y: float, floor: str | None = None) -> str:
        """The usable node closest to ``(x, y)`` (on ``floor`` when given; outdoor first if allowed)."""
        want_outdoor = floor is None and self.profile.outdoor
        best, best_d = None, math.inf
        for nid in self.graph.nodes:
            n = self.site.nodes[nid]
            if (floor is not None and n.floor != floor) or (want_outdoor and not n.outdoor):
                continue
            d = math.hypot(n.x - x, n.y - y)
            if d < best_d:
                best, best_d = nid, d
        if best is None:
            raise UnknownPlaceError(
                f"no node usable by profile {self.profile.name!r} near ({x:.1f}, {y:.1f})"
            )
        return best

    # ---- queries -------------------------------------------------------------------------------

    def route(self, start: str, end: str) -> Route:
        """The fastest route from ``start`` to ``end`` (place names, node ids or ``lat,lon``)."""
        a, b = self.resolve(start), self.resolve(end)
        for spec, nid in ((start, a), (end, b)):
            if nid not in self.graph:
                raise RoutingError(f"{spec!r} cannot be used by profile {self.profile.name!r}")
        try:
            path = nx.dijkstra_path(self.graph, a, b, weight="time")
        except nx.NetworkXNoPath:
            raise RoutingError(
                f"no route from {start!r} to {end!r} for profile {self.profile.name!r}"
            ) from None
        steps = [self.graph.edges[u, v]["step"] for u, v in pairwise(path)]
        return self._summarise(start, end, path, steps)

    def _summarise(self, start: str, end: str, path: list[str], steps: list[Step]) -> Route:
        floors: list[str] = []
        for nid in path:
            f = self.site.nodes[nid].floor or OUTDOOR
            if not floors or floors[-1] != f:
                floors.append(f)
        return Route(
            profile=self.profile.name,
            start=start,
            end=end,
            path=path,
            steps=steps,
            length_m=math.fsum(s.length_m for s in steps),
            time_s=math.fsum(s.time_s for s in steps),
            floors=floors,
            lifts=[s.ref for s in steps if s.kind == "lift"],
            doors=[s.door for s in steps if s.door is not None],
            gates=[s.gate for s in steps if s.gate is not None],
        )

    def reachable(self, start: str, end: str) -> bool:
        """Whether a route exists from ``start`` to ``end``."""
        a, b = self.resolve(start), self.resolve(end)
        return a in self.graph and b in self.graph and nx.has_path(self.graph, a, b)

    def _compiled(self) -> tuple[dict[str, int], csr_matrix]:
        if self._index is None or self._csr is None:
            index = {nid: i for i, nid in enumerate(self.graph.nodes)}
            rows, cols, vals = [], [], []
            for u, v, t in self.graph.edges(data="time"):
                rows.append(index[u])
                cols.append(index[v])
                vals.append(t)
            n = len(index)
            self._index, self._csr = index, csr_matrix((vals, (rows, cols)), shape=(n, n))
        return self._index, self._csr

    def matrix(self, ends: Sequence[str], targets: Sequence[str] | None = None) -> np.ndarray:
        """Travel times in seconds from each of ``ends`` to each of ``targets`` (default: ``ends``).

        Unreachable pairs are ``inf``. Entries equal ``route(a, b).time_s`` up to float rounding.
        """
        targets = ends if targets is None else targets
        index, csr = self._compiled()
        src = self._indices(ends, index)
        dst = self._indices(targets, index)
        if not src:
            return np.zeros((0, len(dst)))
        unique = sorted(set(src))
        times = dijkstra(csr, directed=True, indices=unique)
        row = {s: i for i, s in enumerate(unique)}
        return np.asarray(times[[row[s] for s in src]][:, dst])

    def legs(self, ends: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Times (s), lengths (m) and lift rides along the fastest route between each pair of ``ends``.

        Unreachable pairs have time and length ``inf`` and -1 rides. One Dijkstra per distinct end, then
        lengths and rides summed back along its shortest-path tree.
        """
        index, csr = self._compiled()
        nodes = self._indices(ends, index)
        n = len(index)
        steps = {(index[u], index[v]): step for u, v, step in self.graph.edges(data="step")}
        unique = sorted(set(nodes))
        times, pred = dijkstra(csr, directed=True, indices=unique, return_predecessors=True)
        k = len(nodes)
        out_t, out_m, out_r = np.full((k, k), np.inf), np.full((k, k), np.inf), np.full((k, k), -1)
        row = {s: i for i, s in enumerate(unique)}
        for src in unique:
            r = row[src]
            metres, rides = np.full(n, np.inf), np.zeros(n, dtype=np.int64)
            metres[src] = 0.0
            for v in np.argsort(times[r], kind="stable"):
                p = pred[r, v]
                if p < 0:
                    continue
                step = steps[(int(p), int(v))]
                metres[v] = metres[p] + step.length_m
                rides[v] = rides[p] + (step.kind == "lift")
            for i, a in enumerate(nodes):
                if a != src:
                    continue
                out_t[i] = times[r][nodes]
                out_m[i] = metres[nodes]
                out_r[i] = np.where(np.isfinite(out_t[i]), rides[nodes], -1)
        return out_t, out_m, out_r

    def _indices(self, specs: Iterable[str], index: dict[str, int]) -> list[int]:
        out = []
        for spec in specs:
            nid = self.resolve(spec)
            if nid not in index:
                raise RoutingError(f"{spec!r} cannot be used by profile {self.profile.name!r}")
            out.append(index[nid])
        return out


def _parse_latlon(spec: str) -> tuple[float, float] | None:
    parts = spec.split(",")
    if len(parts) != 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise UnknownPlaceError(f"{spec!r}: latitude must be within ±90 and longitude within ±180")
    return lat, lon
