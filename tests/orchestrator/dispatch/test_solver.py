"""The PyVRP adapter: feasible under the independent checker, deterministic, vehicles first, safe rounding."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from dispatch_builders import pdptw, tiny, tiny_pair, vrptw
from hypothesis import given, settings
from hypothesis import strategies as st
from pyvrp import Solution

from orchestrator.dispatch.check import check
from orchestrator.dispatch.instances import read_lilim_text, read_solomon_text
from orchestrator.dispatch.problem import Node, Problem
from orchestrator.dispatch.solver import IntegerScale, Tuning, solve, translate
from orchestrator.dispatch.stop import FirstOf, MaxIterations, MaxRuntime, Share


def _ticking(step: float) -> Callable[[], float]:
    """A fake clock advancing ``step`` seconds at every reading."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def _one_customer(x: float, y: float, due: float, vehicles: int = 1) -> Problem:
    """Depot at (0, 0) open until 100; one customer of demand 1 at (x, y) whose window is [0, due]."""
    return Problem(
        "one",
        (Node(0, 0, 0, 0, 0, 100, 0), Node(1, x, y, 1, 0, due, 0)),
        vehicles=vehicles,
        capacity=5,
    )


# ---- small hand-checked problems -------------------------------------------------------------------


def test_tiny_problem_is_solved_with_one_vehicle_when_capacity_allows() -> None:
    """Capacity 10 and a late depot: one route [1, 2] of length 20."""
    result = solve(tiny(capacity=10), seed=0, stop=MaxIterations(20))
    assert result.feasible
    assert result.routes == ((1, 2),)
    assert (result.vehicles, result.distance) == (1, pytest.approx(20.0))
    assert result.iterations <= 20


def test_tiny_problem_needs_two_vehicles_when_capacity_is_short() -> None:
    """Capacity 5 < 3 + 4: two routes."""
    result = solve(tiny(capacity=5), seed=0, stop=MaxIterations(20))
    assert result.feasible
    assert sorted(result.routes) == [(1,), (2,)]


def test_pair_is_served_pickup_first() -> None:
    """The only pair goes [1, 2] on one vehicle."""
    result = solve(tiny_pair(), seed=0, stop=MaxIterations(10))
    assert result.routes == ((1, 2),)
    assert result.feasible


def test_a_pair_heavier_than_the_vehicle_is_reported_not_raised() -> None:
    """Capacity 4 < the pair's 5 units: an infeasible result with the checker's load violation."""
    result = solve(tiny_pair(capacity=4), seed=0, stop=MaxIterations(10))
    assert not result.feasible
    assert any("capacity 4" in v for v in result.violations)
    assert result.notes[-1] == "no feasible solution found within the budget"


def test_an_impossible_customer_gives_an_infeasible_result_not_an_exception() -> None:
    """A customer 50 away with a window closing at 10 is late on every route: the checker says so."""
    result = solve(_one_customer(30, 40, due=10), seed=0, stop=MaxIterations(5))
    assert not result.feasible
    assert result.violations == ("route 0: serves customer 1 at 50.00, after its window closes at 10",)
    assert "no feasible solution found within the budget" in result.notes


def test_fewest_vehicles_beat_a_shorter_distance() -> None:
    """P and R, Q and S pair up in two short routes (42.1); one vehicle needs the zig-zag P Q R S (80.1)."""
    problem = Problem(
        "zigzag",
        (
            Node(0, 0, 0, 0, 0, 1000, 0),
            Node(1, 10, 0, 1, 0, 11, 0),  # P: early, east
            Node(2, -10, 0, 1, 0, 40, 0),  # Q: before R, west
            Node(3, 10, 1, 1, 60, 70, 0),  # R: late, east
            Node(4, -10, 1, 1, 75, 85, 0),  # S: after R, west
        ),
        vehicles=2,
        capacity=5,
    )
    result = solve(problem, seed=0, stop=MaxIterations(100))
    assert result.feasible
    assert result.routes == ((1, 2, 3, 4),)
    assert result.distance == pytest.approx(10 + 20 + math.hypot(20, 1) + 20 + math.hypot(10, 1))


def test_a_problem_without_customers_needs_no_vehicle() -> None:
    """Only a depot: no route, feasible, nothing run."""
    problem = Problem("empty", (Node(0, 0, 0, 0, 0, 100, 0),), vehicles=1, capacity=5)
    result = solve(problem, seed=0, stop=MaxIterations(5))
    assert (result.routes, result.vehicles, result.feasible, result.iterations) == ((), 0, True, 0)


def test_a_pair_that_does_not_balance_is_refused() -> None:
    """A delivery that drops less than its pickup took on is a data error named in one sentence."""
    nodes = (
        Node(0, 0, 0, 0, 0, 100, 0),
        Node(1, 3, 4, 5, 0, 100, 0, delivery=2),
        Node(2, 6, 8, -4, 0, 100, 0, pickup=1),
    )
    with pytest.raises(ValueError, match="pair 1->2 must pick up a demand >= 0 and deliver exactly that"):
        solve(Problem("unbalanced", nodes, vehicles=1, capacity=10), seed=0, stop=MaxIterations(5))


# ---- classical instances ---------------------------------------------------------------------------


def test_same_seed_same_solution(shared_data: Path) -> None:
    """Two runs with the same seed and iteration budget give identical routes."""
    problem = read_solomon_text((shared_data / "vrptw" / "solomon" / "R102.txt").read_text())
    first = solve(problem, seed=7, stop=MaxIterations(60))
    second = solve(problem, seed=7, stop=MaxIterations(60))
    assert first.routes == second.routes
    assert first.feasible


def test_c101_reaches_the_best_known_solution(shared_data: Path) -> None:
    """C101: 10 vehicles (BKS) and within 0.1 % of 828.94 after 100 iterations; checker agrees."""
    problem = read_solomon_text((shared_data / "vrptw" / "solomon" / "C101.txt").read_text())
    result = solve(problem, seed=0, stop=MaxIterations(100))
    verdict = check(problem, result.routes)
    assert result.feasible and verdict.feasible
    assert result.vehicles == 10
    assert result.distance == pytest.approx(verdict.distance)
    assert result.distance <= 828.94 * 1.001


def test_lc101_reaches_the_best_known_solution(shared_data: Path) -> None:
    """lc101 (PDPTW): 10 vehicles and within 0.1 % of 828.94 after 100 iterations, pairs intact."""
    path = shared_data / "pdptw" / "lilim" / "lc101.txt"
    problem = read_lilim_text(path.read_text(), "lc101")
    result = solve(problem, seed=1, stop=MaxIterations(100))
    assert result.feasible
    assert result.vehicles == 10
    assert result.distance <= 828.94 * 1.001
    assert sorted(c for route in result.routes for c in route) == list(range(1, len(problem.nodes)))


@given(vrptw())
@settings(max_examples=25, deadline=None)
def test_random_vrptw_solutions_are_feasible(problem: Problem) -> None:
    """On any generated VRPTW where each customer fits alone, the solver's answer passes the checker."""
    result = solve(problem, seed=0, stop=MaxIterations(15))
    assert result.feasible, result.violations
    assert check(problem, result.routes).feasible


@given(pdptw())
@settings(max_examples=25, deadline=None)
def test_random_pdptw_solutions_are_feasible(problem: Problem) -> None:
    """On any generated PDPTW where each pair fits alone, pairs stay together and in order."""
    result = solve(problem, seed=0, stop=MaxIterations(15))
    assert result.feasible, result.violations
    for pickup, delivery in problem.pairs:
        route = next(r for r in result.routes if pickup in r)
        assert route.index(pickup) < route.index(delivery)


# ---- rounding to PyVRP's integers ------------------------------------------------------------------


def test_scale_rounds_times_towards_feasibility_and_costs_to_nearest() -> None:
    """Durations and window opens round up, window closes down, costs to nearest."""
    scale = IntegerScale(1000)
    assert (scale.duration(math.sqrt(2)), scale.opens(0.0004), scale.closes(1.9999)) == (1415, 1, 1999)
    assert scale.cost(math.sqrt(2)) == 1414
    assert scale.real(1415) == pytest.approx(1.415)


def test_scale_matrices_round_like_the_scalars() -> None:
    """The numpy versions used for distance and duration matrices agree with the scalar methods."""
    scale = IntegerScale(100)
    values = np.array([[0.0, math.sqrt(2), 4.35], [5.0, 0.004, 1.995]])
    assert scale.cost_matrix(values).tolist() == [[scale.cost(v) for v in row] for row in values]
    assert scale.duration_matrix(values).tolist() == [[scale.duration(v) for v in row] for row in values]


def test_scale_ignores_float_noise() -> None:
    """4.35 * 100 is 434.99999999999994 in floats: a zero-width window [4.35, 4.35] stays open."""
    scale = IntegerScale(100)
    assert scale.opens(4.35) == scale.closes(4.35) == 435
    assert scale.duration(5.0) == 500


def test_scale_maps_an_open_window_to_pyvrps_no_limit() -> None:
    """An infinite window close is PyVRP's largest int64, not an overflow."""
    assert IntegerScale().closes(math.inf) == 2**63 - 1


def test_scale_factor_must_be_positive() -> None:
    """A factor below 1 is refused with one sentence."""
    with pytest.raises(ValueError, match="scale factor must be >= 1"):
        IntegerScale(0)


def test_times_too_large_for_the_scale_are_refused() -> None:
    """A horizon that overflows PyVRP's integers at the chosen scale is a ValueError naming the fix."""
    problem = _one_customer(3, 4, due=1e12)
    with pytest.raises(ValueError, match="use a smaller IntegerScale factor"):
        translate(problem, IntegerScale(1000))


@st.composite
def _tight_route(draw: st.DrawFn) -> tuple[Problem, int]:
    """A route 1..n whose every window closes within ±1 scaled unit of the real arrival time, and the
    scale: exactly where rounding decides between on time and late."""
    factor = draw(st.sampled_from([1, 10, 1000]))
    n = draw(st.integers(1, 4))
    coordinate = st.floats(0, 100, allow_nan=False)
    points = [(50.0, 50.0)] + [(draw(coordinate), draw(coordinate)) for _ in range(n)]
    nodes = [Node(0, 50, 50, 0, 0, 10_000, 0)]
    time = 0.0
    for i in range(1, n + 1):
        service = draw(st.sampled_from([0.0, 0.5, 10.0]))
        time += math.dist(points[i - 1], points[i]) + (nodes[-1].service if i > 1 else 0.0)
        due = max(0.0, time + draw(st.floats(-1, 1)) / factor)
        nodes.append(Node(i, *points[i], 1, 0, due, service))
    return Problem("tight", tuple(nodes), vehicles=1, capacity=n), factor


@given(_tight_route())
@settings(max_examples=300, deadline=None)
def test_a_route_pyvrp_calls_on_time_is_on_time_in_real_numbers(case: tuple[Problem, int]) -> None:
    """Windows closing a hair before or after the real arrival: whenever PyVRP's integer model (at
    any scale) calls the route on time, the independent real-valued checker agrees."""
    problem, factor = case
    translation = translate(problem, IntegerScale(factor))
    route = tuple(range(1, len(problem.nodes)))
    solution = Solution(translation.data, [list(range(len(route)))])
    assert translation.routes(solution) == (route,)
    if solution.is_feasible():
        assert check(problem, [route]).feasible


def test_a_larger_scale_recovers_a_window_that_coarse_rounding_closes() -> None:
    """√2 away with the window closing at 1.41422: too tight at scale 1000 (1415 > 1414), fine at 10⁵."""
    problem = _one_customer(1, 1, due=1.41422)
    coarse = solve(problem, seed=0, stop=MaxIterations(5), scale=IntegerScale(1000))
    fine = solve(problem, seed=0, stop=MaxIterations(5), scale=IntegerScale(100_000))
    assert not coarse.feasible
    assert fine.feasible and fine.routes == ((1,),)


class _Optimistic(IntegerScale):
    """A wrong scale that rounds travel times down, so PyVRP may accept late arrivals."""

    def duration(self, value: float) -> int:
        return math.floor(value * self.factor)

    def duration_matrix(self, values: np.ndarray) -> np.ndarray:
        return np.floor(values * self.factor).astype(np.int64)


def test_a_solution_failing_the_checker_is_never_reported_feasible() -> None:
    """With rounding down, PyVRP calls a late visit on time; the checker catches it and the note says so."""
    result = solve(_one_customer(1, 1, due=1.2), seed=0, stop=MaxIterations(5), scale=_Optimistic(1))
    assert not result.feasible
    assert result.violations == ("route 0: serves customer 1 at 1.41, after its window closes at 1.2",)
    assert result.notes[0].startswith("PyVRP's solution (1 routes) failed the checker: route 0: serves")


# ---- budgets ---------------------------------------------------------------------------------------


def test_time_limit_reads_the_injected_clock() -> None:
    """With a clock ticking 1 s per reading and a 5 s limit, the search stops within a few iterations."""
    result = solve(tiny(capacity=10), seed=0, time_limit_s=5, clock=_ticking(1.0))
    assert result.feasible
    assert result.iterations < 5
    assert result.seconds > 0


def test_stop_arguments_are_validated() -> None:
    """No criterion, a time limit without a clock, or negative budgets are refused with a sentence."""
    with pytest.raises(ValueError, match="stopping criterion"):
        solve(tiny(), seed=0)
    with pytest.raises(ValueError, match="needs a clock"):
        solve(tiny(), seed=0, time_limit_s=1)
    with pytest.raises(ValueError, match=">= 0"):
        MaxIterations(-1)
    with pytest.raises(ValueError, match=">= 0 s"):
        MaxRuntime(-1, _ticking(1))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        Share(MaxIterations(1), 1.5)


def test_tuning_is_validated() -> None:
    """Shares outside their range and empty or zero history lengths are refused with a sentence."""
    with pytest.raises(ValueError, match="fleet_share must be in"):
        Tuning(fleet_share=1.5)
    with pytest.raises(ValueError, match="attempt_share"):
        Tuning(attempt_share=0)
    with pytest.raises(ValueError, match="history lengths must be >= 1"):
        Tuning(fleet_histories=())
    with pytest.raises(ValueError, match="distance_runs must be >= 1, got 0"):
        Tuning(distance_runs=0)


def test_no_fleet_phase_still_gives_a_feasible_solution() -> None:
    """fleet_share=0: the distance phase alone, on the whole fleet, solves the tiny problem."""
    result = solve(tiny(capacity=10), seed=0, stop=MaxIterations(20), tuning=Tuning(fleet_share=0))
    assert result.feasible
    assert result.routes == ((1, 2),)


def test_max_iterations_counts_calls_and_stops_at_the_budget() -> None:
    """Three iterations run, the fourth call stops; progress follows."""
    criterion = MaxIterations(3)
    assert [criterion(0) for _ in range(4)] == [False, False, False, True]
    assert criterion.progress() == 1.0


def test_first_of_stops_at_the_earliest_criterion() -> None:
    """FirstOf(iterations, runtime) stops when either is exhausted and reports the larger progress."""
    iterations = MaxIterations(10)
    criterion = FirstOf(iterations, MaxRuntime(100, _ticking(1)))
    assert not any(criterion(0) for _ in range(5))
    assert iterations.progress() == pytest.approx(0.5)
    assert criterion.progress() == pytest.approx(0.5)
    assert not any(criterion(0) for _ in range(5))
    assert criterion(0)


def test_a_share_spends_part_of_the_budget_and_counts_against_it() -> None:
    """Share(budget, 0.3) of 10 iterations runs 3; the budget then has 7 left."""
    budget = MaxIterations(10)
    phase = Share(budget, 0.3)
    ran = 0
    while not phase(0):
        ran += 1
    assert (ran, phase.progress()) == (3, 1.0)
    assert sum(1 for _ in iter(lambda: budget(0), True)) == 7
