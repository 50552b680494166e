"""An independent feasibility checker for VRPTW/PDPTW solutions.

It recomputes everything from the node coordinates (it does not use ``Problem.dist`` nor anything of
the solver): every customer served exactly once, capacity at every point of a route, service start
within each window, return to the depot before it closes, each delivery after its pickup on the same
route, at most ``problem.vehicles`` non-empty routes. Routes are lists of customer ids, depot
excluded; empty routes are ignored.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.dispatch.problem import Node, Problem

EPS = 1e-6


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The checker's verdict: violations (empty when feasible) and the objective."""

    violations: tuple[str, ...]
    vehicles: int
    distance: float

    @property
    def feasible(self) -> bool:
        """Whether no rule is violated."""
        return not self.violations


def _travel(a: Node, b: Node) -> float:
    return math.hypot(a.x - b.x, a.y - b.y)


def check(problem: Problem, routes: Sequence[Sequence[int]]) -> CheckResult:
    """Check ``routes`` against ``problem``; return the violations and (vehicles, distance)."""
    used = [list(route) for route in routes if route]
    violations = _coverage(problem, used)
    if len(used) > problem.vehicles:
        violations.append(f"{len(used)} routes but only {problem.vehicles} vehicles")
    distance = 0.0
    for index, route in enumerate(used):
        known = [c for c in route if 0 < c < len(problem.nodes)]
        distance += _route_length(problem, known)
        violations += [f"route {index}: {v}" for v in _route_violations(problem, known)]
    return CheckResult(tuple(violations), len(used), distance)


def _coverage(problem: Problem, routes: list[list[int]]) -> list[str]:
    seen: dict[int, int] = {}
    violations: list[str] = []
    for route in routes:
        for customer in route:
            if not 0 < customer < len(problem.nodes):
                violations.append(f"customer {customer} does not exist")
            seen[customer] = seen.get(customer, 0) + 1
    for customer, times in sorted(seen.items()):
        if times > 1 and 0 < customer < len(problem.nodes):
            violations.append(f"customer {customer} is served {times} times")
    missing = [n.id for n in problem.customers if n.id not in seen]
    if missing:
        violations.append(f"customers not served: {', '.join(map(str, missing))}")
    return violations


def _route_length(problem: Problem, route: list[int]) -> float:
    stops = [problem.depot, *(problem.nodes[c] for c in route), problem.depot]
    return sum(_travel(a, b) for a, b in itertools.pairwise(stops))


def _route_violations(problem: Problem, route: list[int]) -> list[str]:
    return (
        _window_violations(problem, route)
        + _load_violations(problem, route)
        + _pair_violations(problem, route)
    )


def _window_violations(problem: Problem, route: list[int]) -> list[str]:
    violations: list[str] = []
    here, time = problem.depot, problem.depot.ready
    for customer in [*route, 0]:
        node = problem.nodes[customer]
        start = max(node.ready, time + here.service + _travel(here, node))
        if start > node.due + EPS:
            what = "returns to the depot" if customer == 0 else f"serves customer {customer}"
            violations.append(f"{what} at {start:.2f}, after its window closes at {node.due:g}")
        here, time = node, start
    return violations


def _load_violations(problem: Problem, route: list[int]) -> list[str]:
    # Unpaired demand is loaded at the depot; a pickup adds its demand, a delivery removes it.
    load = sum(problem.nodes[c].demand for c in route if not _paired(problem.nodes[c]))
    violations = (
        [f"leaves the depot with {load} > capacity {problem.capacity}"] if load > problem.capacity else []
    )
    for customer in route:
        node = problem.nodes[customer]
        load += node.demand if _paired(node) else -node.demand
        if load > problem.capacity:
            violations.append(f"carries {load} > capacity {problem.capacity} after customer {customer}")
    return violations


def _pair_violations(problem: Problem, route: list[int]) -> list[str]:
    position = {c: i for i, c in enumerate(route)}
    violations: list[str] = []
    for customer in route:
        node = problem.nodes[customer]
        if node.delivery and node.delivery not in position:
            violations.append(f"pickup {customer} without its delivery {node.delivery} on the same route")
        if node.pickup and node.pickup not in position:
            violations.append(f"delivery {customer} without its pickup {node.pickup} on the same route")
        elif node.pickup and position[node.pickup] > position[customer]:
            violations.append(f"delivery {customer} before its pickup {node.pickup}")
    return violations


def _paired(node: Node) -> bool:
    return bool(node.pickup or node.delivery)
