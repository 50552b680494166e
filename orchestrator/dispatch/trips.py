"""Group visits into trips from one home place with PyVRP: the routing core behind the campus planner.

One call = one capacitated VRP with time windows, release times and optional visits (prizes): every
vehicle of the model is one *trip* (home → visits → home); the planner then lays trips end to end on
real robots. (PyVRP 0.14's own multi-trip reloading did not move a single reload in our tests and
even dropped a feasible multi-trip start solution, so trips are packed onto robots by the planner.)

Times are ceiled to whole seconds and metres to whole metres for PyVRP; the planner re-times every
trip in exact floats afterwards, so rounding never makes a plan infeasible.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pyvrp import Client, Depot, Location, ProblemData, VehicleType
from pyvrp import solve as pyvrp_solve
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import StoppingCriterion

from orchestrator.dispatch.campus import Dims
from orchestrator.dispatch.travel import TravelTable

BIG = 10**9  # "no limit" for PyVRP integers (keeps sums far from overflow)


@dataclass(frozen=True, slots=True)
class Visit:
    """Something to do at ``place`` that must go in one trip: demand, service, window, release, prize."""

    place: str
    demand: Dims
    service_s: float
    earliest_s: float = 0.0
    latest_s: float = math.inf
    release_s: float = 0.0
    prize: int = 0  # 0: required; > 0: optional, worth this much


@dataclass(frozen=True, slots=True)
class TripModel:
    """The trips' common part: home place, capacity, how early/late a trip may leave/come back."""

    home: str
    capacity: Dims
    depart_s: float
    return_by_s: float
    home_service_s: float = 0.0  # at home before each trip (loading)
    trip_cost: int = 5_000  # fixed cost per trip, in metres: fewer trips unless it costs > 5 km
    max_trips: int | None = None


def _ceil(value: float) -> int:
    return BIG if not math.isfinite(value) else max(0, math.ceil(value - 1e-9))


def _floor(value: float) -> int:
    return BIG if not math.isfinite(value) else max(0, math.floor(value + 1e-9))


def solve_trips(
    model: TripModel,
    visits: Sequence[Visit],
    table: TravelTable,
    stop: Callable[[], StoppingCriterion],
    seed: int = 0,
) -> tuple[list[list[int]], list[int]]:
    """Trips as lists of indices into ``visits`` in order, and the indices left out (optional ones).

    Visits whose place the table cannot reach from home (or back), or whose window closes before it
    opens or before the trips may leave, are left out before solving.
    """
    if not visits:
        return [], []
    reachable = [
        i
        for i, v in enumerate(visits)
        if table.reachable(model.home, v.place)
        and table.reachable(v.place, model.home)
        and v.latest_s >= max(v.earliest_s, v.release_s, model.depart_s)
    ]
    left_out = [i for i in range(len(visits)) if i not in set(reachable)]
    if not reachable:
        return [], left_out
    places = [model.home, *dict.fromkeys(visits[i].place for i in reachable)]
    loc_of = {p: k for k, p in enumerate(places)}
    idx = [table.index[p] for p in places]
    durations = np.vectorize(_ceil, otypes=[np.int64])(table.time_s[np.ix_(idx, idx)])
    distances = np.vectorize(_ceil, otypes=[np.int64])(table.metres[np.ix_(idx, idx)])
    np.fill_diagonal(durations, 0)
    np.fill_diagonal(distances, 0)
    offset = model.depart_s  # PyVRP times start at 0
    clients = []
    for i in reachable:
        v = visits[i]
        clients.append(
            Client(
                location=loc_of[v.place],
                delivery=list(v.demand),
                service_duration=_ceil(v.service_s),
                tw_early=_ceil(v.earliest_s - offset),
                tw_late=_floor(v.latest_s - offset),
                release_time=_ceil(v.release_s - offset),
                prize=v.prize,
                required=v.prize == 0,
            )
        )
    # as many trips as the load needs twice over (and a few): enough room, and a smaller search
    needed = max(
        math.ceil(sum(visits[i].demand[k] for i in reachable) / model.capacity[k]) if model.capacity[k] else 0
        for k in range(3)
    )
    vehicle = VehicleType(
        num_available=model.max_trips or min(len(reachable), 2 * needed + 3),
        capacity=list(model.capacity),
        fixed_cost=model.trip_cost,
        tw_early=0,
        tw_late=_floor(model.return_by_s - offset),
    )
    depot = Depot(location=0, service_duration=_ceil(model.home_service_s))
    data = ProblemData(
        locations=[Location(float(k), 0.0) for k in range(len(places))],
        clients=clients,
        depots=[depot],
        vehicle_types=[vehicle],
        distance_matrices=[distances],
        duration_matrices=[durations],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = pyvrp_solve(data, stop=stop(), seed=seed, collect_stats=False, display=False)
    best = result.best
    feasible = best.is_feasible()
    trips: list[list[int]] = []
    visited: set[int] = set()
    for route in best.routes():
        trip = [reachable[a.idx] for a in route.schedule() if a.is_client()]
        if trip:
            trips.append(trip)
            visited.update(trip)
    left_out += [i for i in reachable if i not in visited]
    if not feasible:  # the planner re-checks every trip; an infeasible answer is only a starting point
        trips = [part for trip in trips for part in _split_to_capacity(trip, visits, model.capacity)]
    return trips, sorted(left_out)


def _split_to_capacity(trip: list[int], visits: Sequence[Visit], capacity: Dims) -> list[list[int]]:
    """Cut a trip into consecutive parts whose total demand fits ``capacity``."""
    parts: list[list[int]] = [[]]
    load = (0, 0, 0)
    for i in trip:
        d = visits[i].demand
        nxt = (load[0] + d[0], load[1] + d[1], load[2] + d[2])
        if parts[-1] and not all(a <= c for a, c in zip(nxt, capacity, strict=True)):
            parts.append([])
            nxt = d
        parts[-1].append(i)
        load = nxt
    return parts
