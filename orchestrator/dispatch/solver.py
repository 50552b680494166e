"""The routing core: a thin adapter over PyVRP 0.14 (Wouda, Lan & Kool, INFORMS J. Computing 2024).

``solve(problem, seed=..., stop=...)`` → ``Result``. The frozen ``Problem`` becomes PyVRP problem data
(a customer is a PyVRP *client*, a Li & Lim pickup-delivery pair a *shipment*) through
``IntegerScale``, which turns real distances and times into PyVRP's integers so that every solution
PyVRP calls feasible is feasible in real numbers too. One budget is spent in two phases, vehicles
first (``Tuning`` holds the knobs):

1. fleet minimisation (at most ``Tuning.fleet_share`` of the budget): solve with the whole fleet until
   the first feasible solution, then again with one vehicle fewer than that solution used, and so on,
   each attempt from scratch (as PyVRP's ``minimise_fleet``, but keeping each solution). The time to
   a first feasible solution is heavy-tailed, so an attempt that uses up ``Tuning.attempt_share``
   restarts with another seed and late-acceptance history length (Gomes, Selman & Kautz, AAAI 1998);
2. distance: PyVRP's iterated local search on the smallest fleet found, warm-started from phase 1.

Every returned solution is verified by the independent checker (``check.check``). Should PyVRP's best
fail it (it should not: see ``IntegerScale``), the previous solution that passed is returned and
``Result.notes`` says so; if nothing feasible was found the result carries the checker's violations.
Deterministic for a seed under an iteration budget.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyvrp import (
    Client,
    Depot,
    IteratedLocalSearchParams,
    Location,
    ProblemData,
    Route,
    Shipment,
    Solution,
    SolveParams,
    VehicleType,
)
from pyvrp import solve as pyvrp_solve
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import FirstFeasible, MultipleCriteria
from pyvrp.stop import StoppingCriterion as PyVRPStop

from orchestrator.dispatch.check import check
from orchestrator.dispatch.problem import Problem
from orchestrator.dispatch.stop import FirstOf, MaxRuntime, Share, StoppingCriterion

MAX_VALUE = 1 << 44  # PyVRP's largest safe matrix entry (pyvrp.constants.MAX_VALUE)
UNBOUNDED = np.iinfo(np.int64).max  # PyVRP's "no limit" for windows
SNAP = 1e-6  # scaled values this close to an integer are that integer (float noise, not data)


@dataclass(frozen=True)
class IntegerScale:
    """Real distances and times ↔ PyVRP integers, rounded so integer feasibility implies real feasibility.

    Values are multiplied by ``factor``. Durations (travel plus service) round *up* and window opens
    round up, window closes round *down*: every integer schedule then starts each service no earlier
    than the real-valued schedule would, and a real schedule is never later than its integer twin, so
    a route PyVRP calls on time is on time in real numbers. Costs (distances) round to nearest: they
    only rank solutions, and the real distance is recomputed by the checker. Scaled values within
    ``SNAP`` of an integer are taken as that integer, so float noise (``4.35 * 100 ==
    434.99999999999994``) neither costs a unit nor closes a zero-width window.
    """

    factor: int = 1000

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ValueError(f"the scale factor must be >= 1, got {self.factor}")

    def cost(self, value: float) -> int:
        """A distance (or any cost) to the nearest integer."""
        return round(value * self.factor)

    def duration(self, value: float) -> int:
        """A travel or service time, rounded up."""
        return self._up(value)

    def opens(self, value: float) -> int:
        """A window's opening time, rounded up."""
        return self._up(value)

    def closes(self, value: float) -> int:
        """A window's closing time, rounded down; infinity is PyVRP's "no limit"."""
        if math.isinf(value) and value > 0:
            return int(UNBOUNDED)
        scaled = value * self.factor
        nearest = round(scaled)
        return nearest if abs(scaled - nearest) <= SNAP else math.floor(scaled)

    def real(self, value: int) -> float:
        """An integer back to real units."""
        return value / self.factor

    def cost_matrix(self, values: np.ndarray) -> np.ndarray:
        """``cost`` of every entry, as int64 (fast for large matrices)."""
        return np.rint(values * self.factor).astype(np.int64)

    def duration_matrix(self, values: np.ndarray) -> np.ndarray:
        """``duration`` of every entry, as int64 (fast for large matrices)."""
        scaled = values * self.factor
        nearest = np.rint(scaled)
        return np.where(np.abs(scaled - nearest) <= SNAP, nearest, np.ceil(scaled)).astype(np.int64)

    def _up(self, value: float) -> int:
        scaled = value * self.factor
        nearest = round(scaled)
        return nearest if abs(scaled - nearest) <= SNAP else math.ceil(scaled)


@dataclass(frozen=True)
class Result:
    """A solution: routes of customer ids (depot excluded), its objective and the checker's verdict.

    ``iterations`` counts PyVRP's search iterations over both phases; ``notes`` explains a fallback
    (PyVRP's best rejected by the checker) or the absence of a feasible solution.
    """

    routes: tuple[tuple[int, ...], ...]
    vehicles: int
    distance: float
    feasible: bool
    violations: tuple[str, ...]
    seconds: float
    iterations: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Translation:
    """A ``Problem`` as PyVRP data, and the way back: node id of each client, (pickup, delivery) of each
    shipment."""

    data: ProblemData
    clients: tuple[int, ...]
    shipments: tuple[tuple[int, int], ...]

    def routes(self, solution: Solution) -> tuple[tuple[int, ...], ...]:
        """The solution's non-empty routes as node ids in visiting order, depot excluded."""
        found = []
        for route in solution.routes():
            nodes = []
            for visit in route.schedule():
                if visit.is_client():
                    nodes.append(self.clients[visit.idx])
                elif visit.is_pickup():
                    nodes.append(self.shipments[visit.idx][0])
                elif visit.is_delivery():
                    nodes.append(self.shipments[visit.idx][1])
            if nodes:
                found.append(tuple(nodes))
        return tuple(found)

    def with_fleet(self, vehicles: int) -> ProblemData:
        """The data with ``vehicles`` vehicles available."""
        fleet = self.data.vehicle_type(0).replace(num_available=vehicles)
        return self.data.replace(vehicle_types=[fleet])


def translate(problem: Problem, scale: IntegerScale) -> Translation:
    """``problem`` as PyVRP data: one location per node (node id = location index), unpaired customers
    as clients (a negative demand is a pickup), pairs as shipments; service times folded into the
    travel times leaving each node. Raises ``ValueError`` for a pair whose delivery does not take off
    exactly what its pickup put on, or times too large for ``scale``."""
    nodes = problem.nodes
    dist = np.array(problem.dist, dtype=float)
    service = np.array([n.service for n in nodes], dtype=float)
    _check_range(problem, scale, dist, service)
    # Any: PyVRP's stubs spell the matrices ``np.ndarray[int]``, which numpy's own types never match.
    distances: Any = scale.cost_matrix(dist)
    durations: Any = scale.duration_matrix(dist + service[:, None])
    np.fill_diagonal(durations, 0)
    clients: list[Client] = []
    client_ids: list[int] = []
    shipments: list[Shipment] = []
    pairs: list[tuple[int, int]] = []
    for node in problem.customers:
        if node.delivery:
            shipments.append(_shipment(problem, node.id, node.delivery, scale))
            pairs.append((node.id, node.delivery))
        elif not node.pickup:
            clients.append(
                Client(
                    location=node.id,
                    delivery=[max(node.demand, 0)],
                    pickup=[max(-node.demand, 0)],
                    tw_early=scale.opens(node.ready),
                    tw_late=scale.closes(node.due),
                )
            )
            client_ids.append(node.id)
    depot = problem.depot
    opens, closes = scale.opens(depot.ready), scale.closes(depot.due)
    data = ProblemData(
        locations=[Location(x=n.x, y=n.y) for n in nodes],
        clients=clients,
        depots=[Depot(location=0, tw_early=opens, tw_late=closes)],
        vehicle_types=[
            VehicleType(
                num_available=problem.vehicles, capacity=[problem.capacity], tw_early=opens, tw_late=closes
            )
        ],
        distance_matrices=[distances],
        duration_matrices=[durations],
        shipments=shipments,
    )
    return Translation(data, tuple(client_ids), tuple(pairs))


def _shipment(problem: Problem, pickup_id: int, delivery_id: int, scale: IntegerScale) -> Shipment:
    pickup, delivery = problem.nodes[pickup_id], problem.nodes[delivery_id]
    if pickup.demand < 0 or delivery.demand != -pickup.demand:
        raise ValueError(
            f"{problem.name}: pair {pickup_id}->{delivery_id} must pick up a demand >= 0 and deliver "
            f"exactly that (demands {pickup.demand} and {delivery.demand})"
        )
    return Shipment(
        pickup_location=pickup_id,
        delivery_location=delivery_id,
        pickup_tw_early=scale.opens(pickup.ready),
        pickup_tw_late=scale.closes(pickup.due),
        delivery_tw_early=scale.opens(delivery.ready),
        delivery_tw_late=scale.closes(delivery.due),
        amount=[pickup.demand],
    )


def _check_range(problem: Problem, scale: IntegerScale, dist: np.ndarray, service: np.ndarray) -> None:
    finite = [t for n in problem.nodes for t in (n.ready, n.due) if math.isfinite(t)]
    largest = max([float(dist.max(initial=0.0)) + float(service.max(initial=0.0)), *finite])
    if largest * scale.factor > MAX_VALUE:
        raise ValueError(
            f"{problem.name}: times up to {largest:g} overflow PyVRP's integers at scale "
            f"{scale.factor}; use a smaller IntegerScale factor"
        )


@dataclass(frozen=True)
class Tuning:
    """How ``solve`` spends one budget; the defaults are what the classical benchmarks favoured.

    ``fleet_share``: the share of the budget fleet minimisation may use at most. ``attempt_share``: the
    share one attempt at a fleet size may use before it restarts with the next seed and late-acceptance
    history length of ``fleet_histories`` (time to a first feasible solution is heavy-tailed: several
    short attempts beat one long one). ``distance_history``: PyVRP's late-acceptance history length in
    the distance phase. ``distance_runs``: the distance phase is split into this many runs, on equal
    shares of what is left; the first starts from phase 1's solution, each other one from a fresh
    first feasible solution with the same fleet (a run stalls in its start's basin: new starts beat
    more time). Raises ``ValueError`` for shares outside their range, empty or zero histories, or
    fewer than one run.
    """

    fleet_share: float = 0.35
    attempt_share: float = 0.15
    fleet_histories: tuple[int, ...] = (20, 100)
    distance_history: int = 300
    distance_runs: int = 3

    def __post_init__(self) -> None:
        if not (0 <= self.fleet_share <= 1 and 0 < self.attempt_share <= 1):
            raise ValueError("fleet_share must be in [0, 1] and attempt_share in (0, 1]")
        if not self.fleet_histories or min(*self.fleet_histories, self.distance_history) < 1:
            raise ValueError("history lengths must be >= 1, with at least one for the fleet attempts")
        if self.distance_runs < 1:
            raise ValueError(f"distance_runs must be >= 1, got {self.distance_runs}")

    def fleet_params(self, attempt: int) -> SolveParams:
        """PyVRP parameters of the ``attempt``-th fleet attempt (histories rotate)."""
        history = self.fleet_histories[attempt % len(self.fleet_histories)]
        return SolveParams(ils=IteratedLocalSearchParams(history_length=history))

    def distance_params(self) -> SolveParams:
        """PyVRP parameters of the distance phase."""
        return SolveParams(ils=IteratedLocalSearchParams(history_length=self.distance_history))


# Measured on the 28 Solomon and 28 Li & Lim instances of ../shared/data at 10 s each (mean gap on the
# instances at the best-known fleet): Solomon runs stall early in their start's basin, so three runs from
# different starts beat one (0.33 % instead of 0.47 %); with shipments PyVRP's iterations are 3-10 times
# slower and a late-acceptance history of 20 converges where 300 still wanders (0.00 % instead of 0.92 %).
VRPTW_TUNING = Tuning()
PDPTW_TUNING = Tuning(distance_history=20, distance_runs=1)


def default_tuning(problem: Problem) -> Tuning:
    """The tuning the classical benchmarks favoured for this kind of problem (with pairs or without)."""
    return PDPTW_TUNING if problem.is_pdptw else VRPTW_TUNING


def solve(
    problem: Problem,
    *,
    seed: int,
    stop: StoppingCriterion | None = None,
    time_limit_s: float | None = None,
    clock: Callable[[], float] | None = None,
    scale: IntegerScale | None = None,
    tuning: Tuning | None = None,
) -> Result:
    """Solve a VRPTW/PDPTW: vehicles first, then distance, within ``stop`` and/or ``time_limit_s``.

    ``time_limit_s`` needs ``clock`` (e.g. ``time.perf_counter``): this package never reads the wall
    clock itself. ``seconds`` in the result is measured with ``clock`` (0.0 without one). An instance
    with no feasible solution gives a result with ``feasible=False`` and the checker's violations,
    not an exception. ``scale`` and ``tuning`` default to ``IntegerScale()`` and
    ``default_tuning(problem)``.
    """
    criterion = _criterion(stop, time_limit_s, clock)
    started = clock() if clock else 0.0
    if not problem.customers:
        return Result((), 0, 0.0, True, (), 0.0, 0)
    translation = translate(problem, scale or IntegerScale())
    with warnings.catch_warnings():
        # Expected while an attempt with one vehicle too few fails; the attempt's result says so.
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        search = _Search(translation, seed, tuning or default_tuning(problem))
        search.minimise_fleet(criterion, _capacity_bound(problem))
        search.minimise_distance(criterion)
    seconds = (clock() - started) if clock else 0.0
    return _verified(problem, translation, search, seconds)


class _Search:
    """The PyVRP runs of one ``solve``: feasible solutions found so far, best (fewest vehicles) last."""

    def __init__(self, translation: Translation, seed: int, tuning: Tuning) -> None:
        self.translation = translation
        self.seed = seed
        self.tuning = tuning
        self.feasible: list[Solution] = []
        self.last: Solution | None = None  # PyVRP's last best, feasible or not
        self.iterations = 0

    def run(
        self,
        data: ProblemData,
        stop: PyVRPStop,
        params: SolveParams,
        seed: int,
        initial: Solution | None = None,
    ) -> Solution:
        """One PyVRP run; its best solution (kept if feasible)."""
        result = pyvrp_solve(
            data, stop, seed=seed, collect_stats=False, params=params, initial_solution=initial
        )
        self.iterations += result.num_iterations
        self.last = result.best
        if result.best.is_feasible():
            self.feasible.append(result.best)
        return result.best

    def minimise_fleet(self, budget: StoppingCriterion, lower_bound: int) -> None:
        """Phase 1: fewer and fewer vehicles, each attempt from scratch until its first feasible solution;
        an attempt that uses up its share restarts with the next seed and history length."""
        end = self.tuning.fleet_share
        vehicles = self.translation.data.num_vehicles
        attempt = 0
        while vehicles >= lower_bound and budget.progress() < end:
            until = min(end, budget.progress() + self.tuning.attempt_share)
            stop = MultipleCriteria([FirstFeasible(), Share(budget, until)])
            data = self.translation.with_fleet(vehicles)
            best = self.run(data, stop, self.tuning.fleet_params(attempt), self.seed + attempt)
            if best.is_feasible():
                vehicles = best.num_routes() - 1
            else:
                attempt += 1

    def minimise_distance(self, budget: StoppingCriterion) -> None:
        """Phase 2: the distance on the smallest feasible fleet, first warm-started from phase 1's
        solution, then (``Tuning.distance_runs``) from fresh first feasible solutions of that fleet."""
        params = self.tuning.distance_params()
        if not self.feasible:  # no feasible fleet yet: keep trying with all vehicles
            self.run(self.translation.data, budget, params, self.seed)
            return
        start = self.feasible[-1]
        data = self.translation.with_fleet(start.num_routes())
        runs = self.tuning.distance_runs
        begin = budget.progress()
        for run in range(runs):
            stop = budget if run == runs - 1 else Share(budget, begin + (1 - begin) * (run + 1) / runs)
            initial = _rebased(data, start)
            if run > 0:
                first = MultipleCriteria([FirstFeasible(), stop])
                # Seeds the fleet attempts have not used, so the start differs from phase 1's.
                fresh_seed = self.seed + 100 + run
                fresh = self.run(data, first, self.tuning.fleet_params(0), fresh_seed)
                if fresh.is_feasible():
                    initial = fresh
            self.run(data, stop, params, self.seed + run, initial)


def _rebased(data: ProblemData, solution: Solution) -> Solution:
    """``solution`` as a solution of ``data`` (same clients and shipments, another fleet size)."""
    routes = [Route(data, [v for v in r.schedule() if not v.is_depot()], 0) for r in solution.routes()]
    return Solution(data, routes)


def _capacity_bound(problem: Problem) -> int:
    """Vehicles needed at least to carry every unpaired customer's demand from the depot."""
    load = sum(max(n.demand, 0) for n in problem.customers if not (n.pickup or n.delivery))
    return max(1, math.ceil(load / problem.capacity)) if problem.capacity else 1


def _verified(problem: Problem, translation: Translation, search: _Search, seconds: float) -> Result:
    """The best solution that passes the independent checker; notes say what was rejected."""
    notes: list[str] = []
    candidates = sorted(search.feasible, key=lambda s: (s.num_routes(), s.distance()))
    for solution in candidates:
        routes = translation.routes(solution)
        verdict = check(problem, routes)
        if verdict.feasible:
            return Result(
                routes, verdict.vehicles, verdict.distance, True, (), seconds, search.iterations, tuple(notes)
            )
        notes.append(
            f"PyVRP's solution ({verdict.vehicles} routes) failed the checker: {verdict.violations[0]}"
        )
    notes.append("no feasible solution found within the budget")
    routes = translation.routes(search.last) if search.last is not None else ()
    verdict = check(problem, routes)
    return Result(
        routes,
        verdict.vehicles,
        verdict.distance,
        False,
        verdict.violations,
        seconds,
        search.iterations,
        tuple(notes),
    )


def _criterion(
    stop: StoppingCriterion | None, time_limit_s: float | None, clock: Callable[[], float] | None
) -> StoppingCriterion:
    if time_limit_s is not None and clock is None:
        raise ValueError("time_limit_s needs a clock (e.g. time.perf_counter): the solver reads no clock")
    criteria = [c for c in (stop,) if c is not None]
    if time_limit_s is not None and clock is not None:
        criteria.append(MaxRuntime(time_limit_s, clock))
    if not criteria:
        raise ValueError("give a stopping criterion (stop=MaxIterations(n)) or a time limit")
    return criteria[0] if len(criteria) == 1 else FirstOf(*criteria)
