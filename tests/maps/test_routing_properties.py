"""Property tests of routing on random sites (Hypothesis)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maps.io import load_site
from maps.model import Door, Edge, GeoOrigin, Node, Site, edge_length
from maps.routing import Router

coord = st.floats(min_value=-500, max_value=500, allow_nan=False, allow_infinity=False)


@st.composite
def random_sites(draw: st.DrawFn) -> Site:
    """Random outdoor graphs: lengths at least the chord, some one-ways, speed limits, doors."""
    site = Site("random", GeoOrigin(29.58, 105.06))
    n = draw(st.integers(min_value=2, max_value=12))
    for i in range(n):
        site.add_node(Node(f"n{i}", draw(coord), draw(coord)))
    site.doors["d"] = Door("d", pass_s=draw(st.floats(min_value=0, max_value=10)))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=30))
    for k, (i, j) in enumerate(pairs):
        if i == j:
            continue
        a, b = site.nodes[f"n{i}"], site.nodes[f"n{j}"]
        stretch = draw(st.one_of(st.none(), st.floats(min_value=1.0, max_value=2.0)))
        length = None if stretch is None else math.dist((a.x, a.y), (b.x, b.y)) * stretch
        site.add_edge(
            Edge(
                f"e{k}",
                a.id,
                b.id,
                oneway=draw(st.booleans()),
                length=length,
                speed_limit=draw(st.one_of(st.none(), st.floats(min_value=0.5, max_value=5.0))),
                door="d" if draw(st.booleans()) else None,
            )
        )
    return site


@settings(max_examples=60, deadline=None)
@given(random_sites())
def test_route_cost_is_sum_of_edges_and_bounded_by_straight_line(site: Site) -> None:
    """Every route's time is the sum of its edges' times and at least the straight line at top speed;
    its length is the sum of its edges' lengths."""
    router = Router(site, "cart")
    ids = list(site.nodes)
    m = router.matrix(ids)
    vmax = router.profile.max_speed
    for i, a in enumerate(ids):
        for j, b in enumerate(ids):
            if i == j or not np.isfinite(m[i, j]):
                continue
            route = router.route(a, b)
            edges = [site.edges[s.ref] for s in route.steps]
            assert route.length_m == math.fsum(edge_length(site, e) for e in edges)
            assert math.isclose(route.time_s, math.fsum(router.edge_time(e) for e in edges), rel_tol=1e-9)
            assert math.isclose(route.time_s, m[i, j], rel_tol=1e-9, abs_tol=1e-9)
            na, nb = site.nodes[a], site.nodes[b]
            straight = math.dist((na.x, na.y), (nb.x, nb.y))
            assert route.time_s >= straight / vmax * (1 - 1e-9)


@settings(max_examples=60, deadline=None)
@given(random_sites())
def test_travel_time_matrix_obeys_triangle_inequality(site: Site) -> None:
    """t(a, c) <= t(a, b) + t(b, c) for every triple of nodes."""
    m = Router(site, "cart").matrix(list(site.nodes))
    via = m[:, :, None] + m[None, :, :]  # via[a, b, c] = t(a,b) + t(b,c)
    direct = m[:, None, :]
    assert np.all((direct <= via * (1 + 1e-12) + 1e-9) | ~np.isfinite(via))


SAMPLE_CAMPUS = Path(__file__).resolve().parents[2] / "maps" / "campuses" / "neijiang.yaml"


@pytest.fixture(scope="module")
def campus_robot() -> Router:
    """The indoor/outdoor robot's router on the sample campus (every floor, lift, door and gate)."""
    return Router(load_site(SAMPLE_CAMPUS), "robot")


def test_sample_campus_matrix_obeys_triangle_inequality(campus_robot: Router) -> None:
    """On 120 places of the sample campus, across floors and lifts: t(a, c) <= t(a, b) + t(b, c)."""
    names = sorted(campus_robot.site.places)[:120]
    m = campus_robot.matrix(names)
    assert np.all(np.isfinite(m))
    via = m[:, :, None] + m[None, :, :]
    assert np.all(m[:, None, :] <= via + 1e-9)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_sample_campus_routes_cost_the_sum_of_their_steps(campus_robot: Router, data: st.DataObject) -> None:
    """A route between two random places costs the sum of its steps (edges and lift rides), equals the
    matrix entry, and takes at least the straight line at top speed."""
    names = sorted(campus_robot.site.places)
    a, b = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
    route = campus_robot.route(a, b)
    assert route.time_s == math.fsum(s.time_s for s in route.steps)
    assert route.time_s == pytest.approx(campus_robot.matrix([a], [b])[0, 0], rel=1e-9, abs=1e-9)
    for step in route.steps:
        if step.kind == "edge":
            assert step.time_s == campus_robot.edge_time(campus_robot.site.edges[step.ref])
    na, nb = (campus_robot.site.nodes[campus_robot.resolve(x)] for x in (a, b))
    assert route.time_s >= math.dist((na.x, na.y), (nb.x, nb.y)) / campus_robot.profile.max_speed
