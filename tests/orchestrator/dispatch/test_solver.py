"""The first solver: feasible, deterministic, near the best known on easy classical instances."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dispatch_builders import pdptw, tiny, tiny_pair, vrptw
from hypothesis import given, settings

from orchestrator.dispatch.check import check
from orchestrator.dispatch.instances import read_lilim_text, read_solomon_text
from orchestrator.dispatch.problem import Node, Problem
from orchestrator.dispatch.solver import solve
from orchestrator.dispatch.stop import FirstOf, MaxIterations, MaxRuntime


def _ticking(step: float) -> Callable[[], float]:
    """A fake clock advancing ``step`` seconds at every reading."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_tiny_problem_is_solved_with_one_vehicle_when_capacity_allows() -> None:
    """Capacity 10 and a late depot: one route [1, 2] of length 20."""
    result = solve(tiny(capacity=10), seed=0, stop=MaxIterations(20))
    assert result.feasible
    assert result.routes == ((1, 2),)
    assert (result.vehicles, result.distance, result.iterations) == (1, pytest.approx(20.0), 20)


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


def test_an_impossible_customer_gives_an_infeasible_result_not_an_exception() -> None:
    """A customer unreachable within its window is reported by the result's violations."""
    problem = Problem(
        "impossible",
        (Node(0, 0, 0, 0, 0, 100, 0), Node(1, 30, 40, 1, 0, 10, 0)),
        vehicles=1,
        capacity=5,
    )
    result = solve(problem, seed=0, stop=MaxIterations(5))
    assert not result.feasible
    assert "request (1,) fits in no route" in result.violations


def test_same_seed_same_solution(shared_data: Path) -> None:
    """Two runs with the same seed and iteration budget give identical routes."""
    problem = read_solomon_text((shared_data / "vrptw" / "solomon" / "R102.txt").read_text())
    first = solve(problem, seed=7, stop=MaxIterations(40))
    second = solve(problem, seed=7, stop=MaxIterations(40))
    assert first.routes == second.routes
    assert first.feasible


def test_c101_reaches_the_best_known_vehicle_count(shared_data: Path) -> None:
    """C101: 10 vehicles (BKS) and within 1 % of 828.94 after 1000 iterations; checker agrees."""
    problem = read_solomon_text((shared_data / "vrptw" / "solomon" / "C101.txt").read_text())
    result = solve(problem, seed=0, stop=MaxIterations(1000))
    verdict = check(problem, result.routes)
    assert result.feasible and verdict.feasible
    assert result.vehicles == 10
    assert result.distance == pytest.approx(verdict.distance)
    assert result.distance <= 828.94 * 1.01


def test_lc101_reaches_the_best_known_vehicle_count(shared_data: Path) -> None:
    """lc101 (PDPTW): 10 vehicles and within 1 % of 828.94 after 200 iterations, pairs intact."""
    path = shared_data / "pdptw" / "lilim" / "lc101.txt"
    problem = read_lilim_text(path.read_text(), "lc101")
    result = solve(problem, seed=1, stop=MaxIterations(200))
    assert result.feasible
    assert result.vehicles == 10
    assert result.distance <= 828.94 * 1.01


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


def test_time_limit_reads_the_injected_clock() -> None:
    """With a clock ticking 1 s per reading and a 5 s limit, the search stops after a few iterations."""
    result = solve(tiny(capacity=10), seed=0, time_limit_s=5, clock=_ticking(1.0))
    assert result.feasible
    assert 0 < result.iterations < 5
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


def test_first_of_stops_at_the_earliest_criterion() -> None:
    """FirstOf(iterations, runtime) stops when either is exhausted and reports the larger progress."""
    criterion = FirstOf(MaxIterations(10), MaxRuntime(100, _ticking(1)))
    assert not criterion(3)
    assert criterion(10)
    assert criterion.progress(5) == pytest.approx(0.5)
