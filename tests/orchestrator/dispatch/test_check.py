"""The independent feasibility checker on hand-checkable cases and Hypothesis-generated ones."""

from __future__ import annotations

import itertools
import math

import pytest
from dispatch_builders import tiny, tiny_pair, vrptw
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.dispatch.check import check
from orchestrator.dispatch.problem import Node, Problem


def test_two_single_customer_routes_are_feasible_and_measured() -> None:
    """[1] and [2]: both windows met, 2 vehicles, distance 2*5 + 2*10 = 30."""
    result = check(tiny(), [[1], [2]])
    assert result.feasible
    assert result.violations == ()
    assert (result.vehicles, result.distance) == (2, pytest.approx(30.0))


def test_empty_routes_do_not_count() -> None:
    """Empty routes are ignored: neither a vehicle nor a distance."""
    result = check(tiny(capacity=10), [[], [1, 2], []])
    assert result.feasible
    assert (result.vehicles, result.distance) == (1, pytest.approx(20.0))


def test_capacity_is_checked_on_the_depot_load() -> None:
    """Demands 3 + 4 = 7 on one vehicle of capacity 5 is a violation."""
    result = check(tiny(capacity=5), [[1, 2]])
    assert not result.feasible
    assert result.violations == ("route 0: leaves the depot with 7 > capacity 5",)


def test_a_late_service_start_is_a_violation() -> None:
    """Customer 2 (10 away) with window 0..8 cannot be served in time even alone."""
    result = check(tiny(c2_window=(0, 8)), [[1], [2]])
    assert result.violations == ("route 1: serves customer 2 at 10.00, after its window closes at 8",)


def test_waiting_for_a_window_to_open_is_allowed_and_delays_what_follows() -> None:
    """[1, 2]: serve 1 at 5 (done 6), reach 2 at 11, wait until 20; back at 30 > depot due 25."""
    result = check(tiny(capacity=10, depot_due=25), [[1, 2]])
    assert result.violations == ("route 0: returns to the depot at 30.00, after its window closes at 25",)
    assert check(tiny(capacity=10, depot_due=30), [[1, 2]]).feasible


def test_wrong_order_misses_a_window() -> None:
    """[2, 1]: customer 2 served at 20, customer 1 (window 0..10) only at 25."""
    result = check(tiny(capacity=10), [[2, 1]])
    assert result.violations == ("route 0: serves customer 1 at 25.00, after its window closes at 10",)


def test_every_customer_exactly_once() -> None:
    """Missing, repeated and unknown customers are each reported."""
    assert check(tiny(), [[1]]).violations == ("customers not served: 2",)
    assert "customer 1 is served 2 times" in check(tiny(), [[1], [1], [2]]).violations
    assert "customer 7 does not exist" in check(tiny(), [[1], [2, 7]]).violations
    assert "customer 0 does not exist" in check(tiny(), [[1], [0, 2]]).violations


def test_more_routes_than_vehicles() -> None:
    """Two routes with one vehicle is a violation."""
    assert check(tiny(vehicles=1), [[1], [2]]).violations == ("2 routes but only 1 vehicles",)


def test_pickup_then_delivery_on_one_route_is_feasible() -> None:
    """[1, 2]: pick up 5, deliver 5; distance 5 + 5 + 10."""
    result = check(tiny_pair(), [[1, 2]])
    assert result.feasible
    assert result.distance == pytest.approx(20.0)


def test_delivery_before_pickup_is_a_violation() -> None:
    """[2, 1]: the delivery comes first."""
    assert "route 0: delivery 2 before its pickup 1" in check(tiny_pair(), [[2, 1]]).violations


def test_pair_split_over_two_routes_is_a_violation() -> None:
    """Pickup and delivery on different routes are both reported."""
    violations = check(tiny_pair(), [[1], [2]]).violations
    assert "route 0: pickup 1 without its delivery 2 on the same route" in violations
    assert "route 1: delivery 2 without its pickup 1 on the same route" in violations


def test_pickup_load_is_checked_en_route() -> None:
    """A pickup of 5 on a vehicle of 4 overloads it after the pickup."""
    violations = check(tiny_pair(capacity=4), [[1, 2]]).violations
    assert violations == ("route 0: carries 5 > capacity 4 after customer 1",)


def _loose(problem: Problem) -> Problem:
    """The same customers with no capacity limit and no time windows that bind."""
    nodes = tuple(Node(n.id, n.x, n.y, n.demand, 0, 1e9, 0) for n in problem.nodes)
    return Problem(problem.name, nodes, vehicles=len(nodes), capacity=10**9)


@st.composite
def _partitioned(draw: st.DrawFn) -> tuple[Problem, list[list[int]]]:
    problem = _loose(draw(vrptw()))
    order = draw(st.permutations([n.id for n in problem.customers]))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=4)))
    bounds = [0, *cuts, len(order)]
    return problem, [list(order[a:b]) for a, b in itertools.pairwise(bounds)]


@given(_partitioned())
@settings(max_examples=60, deadline=None)
def test_any_partition_without_binding_limits_is_feasible(case: tuple[Problem, list[list[int]]]) -> None:
    """With no binding capacity or windows, any partition is feasible and at least the round trips."""
    problem, routes = case
    result = check(problem, routes)
    assert result.feasible
    assert result.vehicles == sum(1 for r in routes if r)
    depot = problem.depot
    bound = sum(
        2 * max(math.hypot(problem.nodes[c].x - depot.x, problem.nodes[c].y - depot.y) for c in r)
        for r in routes
        if r
    )
    assert result.distance >= bound - 1e-9


@given(_partitioned(), st.data())
@settings(max_examples=60, deadline=None)
def test_dropping_or_repeating_a_customer_is_always_caught(
    case: tuple[Problem, list[list[int]]], data: st.DataObject
) -> None:
    """Removing one customer reports it unserved; serving one twice reports the repeat."""
    problem, routes = case
    customer = data.draw(st.sampled_from([n.id for n in problem.customers]))
    dropped = [[c for c in r if c != customer] for r in routes]
    assert check(problem, dropped).violations == (f"customers not served: {customer}",)
    repeated = [*routes, [customer]]
    assert f"customer {customer} is served 2 times" in check(problem, repeated).violations


@given(vrptw(), st.data())
@settings(max_examples=60, deadline=None)
def test_a_lone_customer_is_late_exactly_when_it_cannot_be_reached_in_time(
    problem: Problem, data: st.DataObject
) -> None:
    """Shrinking a customer's due time below its travel time from the depot is always reported."""
    node = data.draw(st.sampled_from(problem.customers))
    reach = math.hypot(node.x - problem.depot.x, node.y - problem.depot.y)
    late = Node(node.id, node.x, node.y, node.demand, 0, reach / 2, node.service)
    nodes = tuple(late if n.id == node.id else n for n in problem.nodes)
    tight = Problem(problem.name, nodes, vehicles=problem.vehicles, capacity=10**9)
    others = [[n.id] for n in tight.customers if n.id != node.id]
    verdict = check(tight, [*others, [node.id]])
    assert any(f"serves customer {node.id} at" in v for v in verdict.violations) == (reach / 2 < reach - 1e-6)
