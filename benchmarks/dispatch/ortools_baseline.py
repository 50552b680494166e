"""Baseline: OR-Tools routing with guided local search, on the same frozen ``Problem``.

Optional: needs ``ortools`` (the ``bench`` extra). Distances and times are scaled by ``SCALE`` to
integers; travel and service times are rounded up, so a schedule OR-Tools finds is feasible under the
real-valued convention too (the independent checker has the last word). Vehicles are minimised first
through a fixed cost per used vehicle larger than any route set's distance. First solution: parallel
cheapest insertion; then guided local search until the time limit.
"""

from __future__ import annotations

import math
from typing import Any

from orchestrator.dispatch.problem import Problem

SCALE = 1000
VEHICLE_COST = 10**9


def solve_ortools(problem: Problem, time_limit_s: float) -> list[list[int]]:
    """Routes (customer ids, depot excluded) found by OR-Tools GLS within ``time_limit_s``; [] if none."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n = len(problem.nodes)
    manager = pywrapcp.RoutingIndexManager(n, problem.vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)
    dist = [[round(d * SCALE) for d in row] for row in problem.dist]
    travel = [
        [
            math.ceil(problem.dist[i][j] * SCALE) + math.ceil(problem.nodes[i].service * SCALE)
            for j in range(n)
        ]
        for i in range(n)
    ]
    arc = routing.RegisterTransitCallback(lambda a, b: dist[manager.IndexToNode(a)][manager.IndexToNode(b)])
    routing.SetArcCostEvaluatorOfAllVehicles(arc)
    routing.SetFixedCostOfAllVehicles(VEHICLE_COST)
    _time_dimension(problem, manager, routing, travel)
    _load_dimension(problem, manager, routing)
    _pairs(problem, manager, routing)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return []
    return _routes(problem, manager, routing, solution)


def _time_dimension(problem: Problem, manager: Any, routing: Any, travel: list[list[int]]) -> None:
    callback = routing.RegisterTransitCallback(
        lambda a, b: travel[manager.IndexToNode(a)][manager.IndexToNode(b)]
    )
    horizon = math.ceil(problem.depot.due * SCALE)
    routing.AddDimension(callback, horizon, horizon, False, "time")
    dimension = routing.GetDimensionOrDie("time")
    for node in problem.customers:
        index = manager.NodeToIndex(node.id)
        dimension.CumulVar(index).SetRange(math.ceil(node.ready * SCALE), math.floor(node.due * SCALE))
    for vehicle in range(problem.vehicles):
        dimension.CumulVar(routing.Start(vehicle)).SetRange(math.ceil(problem.depot.ready * SCALE), horizon)
        dimension.CumulVar(routing.End(vehicle)).SetRange(0, horizon)


def _load_dimension(problem: Problem, manager: Any, routing: Any) -> None:
    demand = [n.demand for n in problem.nodes]
    callback = routing.RegisterUnaryTransitCallback(lambda a: demand[manager.IndexToNode(a)])
    routing.AddDimensionWithVehicleCapacity(callback, 0, [problem.capacity] * problem.vehicles, True, "load")


def _pairs(problem: Problem, manager: Any, routing: Any) -> None:
    time = routing.GetDimensionOrDie("time")
    solver = routing.solver()
    for pickup, delivery in problem.pairs:
        p, d = manager.NodeToIndex(pickup), manager.NodeToIndex(delivery)
        routing.AddPickupAndDelivery(p, d)
        solver.Add(routing.VehicleVar(p) == routing.VehicleVar(d))
        solver.Add(time.CumulVar(p) <= time.CumulVar(d))


def _routes(problem: Problem, manager: Any, routing: Any, solution: Any) -> list[list[int]]:
    routes: list[list[int]] = []
    for vehicle in range(problem.vehicles):
        index = solution.Value(routing.NextVar(routing.Start(vehicle)))
        route: list[int] = []
        while not routing.IsEnd(index):
            route.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        if route:
            routes.append(route)
    return routes
