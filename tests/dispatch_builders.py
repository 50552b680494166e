"""Small hand-made problems and Hypothesis strategies for dispatch tests."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from orchestrator.dispatch.problem import Node, Problem

HORIZON = 2000.0


def tiny(
    *, capacity: int = 5, c2_window: tuple[float, float] = (20, 30), depot_due: float = 100, vehicles: int = 3
) -> Problem:
    """Depot (0,0); customer 1 at (3,4) (5 away) window 0..10, demand 3; customer 2 at (6,8), demand 4.

    Service times: 1 at customer 1, 0 elsewhere.
    """
    return Problem(
        "tiny",
        (
            Node(0, 0, 0, 0, 0, depot_due, 0),
            Node(1, 3, 4, 3, 0, 10, 1),
            Node(2, 6, 8, 4, *c2_window, 0),
        ),
        vehicles=vehicles,
        capacity=capacity,
    )


def tiny_pair(capacity: int = 10) -> Problem:
    """Depot (0,0); pickup 1 at (3,4) of 5 units delivered to 2 at (6,8); wide windows."""
    return Problem(
        "tiny-pair",
        (
            Node(0, 0, 0, 0, 0, 100, 0),
            Node(1, 3, 4, 5, 0, 100, 0, delivery=2),
            Node(2, 6, 8, -5, 0, 100, 0, pickup=1),
        ),
        vehicles=2,
        capacity=capacity,
    )


@st.composite
def vrptw(draw: st.DrawFn, max_customers: int = 12) -> Problem:
    """A random VRPTW where every customer can be served alone by one vehicle."""
    n = draw(st.integers(1, max_customers))
    capacity = draw(st.integers(10, 40))
    nodes = [Node(0, 50, 50, 0, 0, HORIZON, 0)]
    for i in range(1, n + 1):
        x, y = draw(st.integers(0, 100)), draw(st.integers(0, 100))
        reach = math.hypot(x - 50, y - 50)
        ready = draw(st.integers(0, 600))
        due = max(ready + draw(st.integers(0, 300)), math.ceil(reach))
        nodes.append(Node(i, x, y, draw(st.integers(1, 10)), ready, due, draw(st.integers(0, 20))))
    return Problem("random", tuple(nodes), vehicles=n, capacity=capacity)


@st.composite
def pdptw(draw: st.DrawFn, max_pairs: int = 6) -> Problem:
    """A random PDPTW where every pair can be served alone (depot → pickup → delivery → depot)."""
    pairs = draw(st.integers(1, max_pairs))
    capacity = draw(st.integers(10, 30))
    nodes = [Node(0, 50, 50, 0, 0, HORIZON, 0)]
    for k in range(pairs):
        p, d = 2 * k + 1, 2 * k + 2
        px, py, dx, dy = (draw(st.integers(0, 100)) for _ in range(4))
        ready_p = draw(st.integers(0, 500))
        due_p = max(ready_p + draw(st.integers(0, 200)), math.ceil(math.hypot(px - 50, py - 50)))
        service = draw(st.integers(0, 10))
        earliest_d = max(ready_p, math.hypot(px - 50, py - 50)) + service + math.hypot(dx - px, dy - py)
        due_d = math.ceil(earliest_d) + draw(st.integers(0, 200))
        ready_d = draw(st.integers(0, due_d))
        demand = draw(st.integers(1, 10))
        nodes.append(Node(p, px, py, demand, ready_p, due_p, service, delivery=d))
        nodes.append(Node(d, dx, dy, -demand, ready_d, due_d, service, pickup=p))
    return Problem("random-pairs", tuple(nodes), vehicles=pairs, capacity=capacity)
