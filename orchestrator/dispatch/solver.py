"""A first solver: greedy insertion construction plus ruin-and-recreate large neighbourhood search.

``solve(problem, seed=..., stop=...)`` → ``Result``. A *request* is one customer (VRPTW) or one
pickup-delivery pair (PDPTW), always removed and inserted together. Each iteration removes some
requests (related customers, i.e. near neighbours — Shaw 1998; or a whole short route, to try to save
a vehicle), reinserts them greedily at their cheapest feasible positions (opening a route only when
none fits) and accepts the result by threshold acceptance on (vehicles, distance), vehicles first.
Insertion feasibility is O(1) per position for a single customer thanks to the earliest start and
latest start of every stop (Savelsbergh 1992). Deterministic for a seed; the final solution is
verified by the independent checker (``check.check``).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.dispatch.check import check
from orchestrator.dispatch.problem import Problem
from orchestrator.dispatch.stop import FirstOf, MaxRuntime, StoppingCriterion

Request = tuple[int, ...]
START_THRESHOLD = 0.02  # accept up to 2 % worse distance at the start, 0 % at the end
NEIGHBOURS = 20
ROUTE_REMOVAL = 0.3  # share of iterations that try to empty a short route
MAX_REMOVED = 15  # related requests removed per iteration, at most


@dataclass(frozen=True)
class Result:
    """A solution: routes of customer ids (depot excluded), its objective and the checker's verdict."""

    routes: tuple[tuple[int, ...], ...]
    vehicles: int
    distance: float
    feasible: bool
    violations: tuple[str, ...]
    seconds: float
    iterations: int


@dataclass
class _Route:
    """A route and, per position (0 = leaving the depot, m+1 = back), start times, latest starts, loads."""

    nodes: list[int]
    begin: list[float]
    latest: list[float]
    load: list[int]
    length: float


class _Search:
    """The mutable state of one run; every public effect goes through ``solve``."""

    def __init__(self, problem: Problem, rng: random.Random) -> None:
        self.p = problem
        self.rng = rng
        self.d = problem.dist
        nodes = problem.nodes
        self.ready = [n.ready for n in nodes]
        self.due = [n.due for n in nodes]
        self.service = [n.service for n in nodes]
        self.paired = [bool(n.pickup or n.delivery) for n in nodes]
        self.demand = [n.demand for n in nodes]
        self.requests = _requests(problem)
        self.request_of = {c: r for r, req in enumerate(self.requests) for c in req}
        self.near = [_nearest(problem, i) for i in range(len(nodes))]

    # ---- route profiles --------------------------------------------------------------------------

    def profile(self, nodes: list[int]) -> _Route:
        """Earliest service starts, latest feasible starts and loads along ``nodes``."""
        full = [0, *nodes, 0]
        d, ready, service = self.d, self.ready, self.service
        begin = [ready[0]]
        for prev, node in itertools.pairwise(full):
            begin.append(max(ready[node], begin[-1] + service[prev] + d[prev][node]))
        latest = [0.0] * len(full)
        latest[-1] = self.due[0]
        for k in range(len(full) - 2, -1, -1):
            node, nxt = full[k], full[k + 1]
            latest[k] = min(self.due[node], latest[k + 1] - service[node] - d[node][nxt])
        load = [sum(self.demand[c] for c in nodes if not self.paired[c])]
        for node in nodes:
            load.append(load[-1] + (self.demand[node] if self.paired[node] else -self.demand[node]))
        length = sum(d[a][b] for a, b in itertools.pairwise(full))
        return _Route(nodes, begin, latest, load, length)

    # ---- insertion -------------------------------------------------------------------------------

    def best_insertion(self, route: _Route, request: Request) -> tuple[float, tuple[int, ...]] | None:
        """The cheapest feasible way to put ``request`` into ``route``: (added distance, positions)."""
        if len(request) == 1:
            return self._insert_one(route, request[0])
        return self._insert_pair(route, request[0], request[1])

    def _insert_one(self, route: _Route, u: int) -> tuple[float, tuple[int, ...]] | None:
        d, full = self.d, [0, *route.nodes, 0]
        q, cap = self.demand[u], self.p.capacity
        best: tuple[float, tuple[int, ...]] | None = None
        peak = 0
        for k in range(len(full) - 1):
            peak = max(peak, route.load[k])
            if peak + q > cap:
                break
            prev, nxt = full[k], full[k + 1]
            start = max(self.ready[u], route.begin[k] + self.service[prev] + d[prev][u])
            if start > self.due[u]:
                if route.begin[k] > self.due[u]:
                    break  # start times only grow along the route
                continue
            arrive = max(self.ready[nxt], start + self.service[u] + d[u][nxt])
            if arrive > route.latest[k + 1]:
                continue
            delta = d[prev][u] + d[u][nxt] - d[prev][nxt]
            if best is None or delta < best[0]:
                best = (delta, (k,))
        return best

    def _insert_pair(self, route: _Route, p: int, q_: int) -> tuple[float, tuple[int, ...]] | None:
        d, full, cap = self.d, [0, *route.nodes, 0], self.p.capacity
        q = self.demand[p]
        ready, due, service = self.ready, self.due, self.service
        best: tuple[float, tuple[int, ...]] | None = None
        for i in range(len(full) - 1):
            prev, after = full[i], full[i + 1]
            start_p = max(ready[p], route.begin[i] + service[prev] + d[prev][p])
            if start_p > due[p]:
                if route.begin[i] > due[p]:
                    break
                continue
            if route.load[i] + q > cap:
                continue
            # Delivery right after the pickup.
            start_d = max(ready[q_], start_p + service[p] + d[p][q_])
            if (
                start_d <= due[q_]
                and max(ready[after], start_d + service[q_] + d[q_][after]) <= route.latest[i + 1]
            ):
                delta = d[prev][p] + d[p][q_] + d[q_][after] - d[prev][after]
                if best is None or delta < best[0]:
                    best = (delta, (i, i))
            added_p = d[prev][p] + d[p][after] - d[prev][after]
            time, last = start_p, p
            for j in range(i + 1, len(full) - 1):
                node = full[j]
                time = max(ready[node], time + service[last] + d[last][node])
                if time > due[node] or route.load[j] + q > cap:
                    break
                last, nxt = node, full[j + 1]
                start_d = max(ready[q_], time + service[node] + d[node][q_])
                if start_d > due[q_]:
                    continue
                if max(ready[nxt], start_d + service[q_] + d[q_][nxt]) > route.latest[j + 1]:
                    continue
                delta = added_p + d[node][q_] + d[q_][nxt] - d[node][nxt]
                if best is None or delta < best[0]:
                    best = (delta, (i, j))
        return best

    def insert(self, routes: list[_Route], request: Request) -> bool:
        """Insert ``request`` at its cheapest feasible place, opening a route if none fits."""
        best: tuple[float, int, tuple[int, ...]] | None = None
        for index, route in enumerate(routes):
            found = self.best_insertion(route, request)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], index, found[1])
        if best is None:
            empty = self.profile([])
            found = self.best_insertion(empty, request)
            if found is None:
                return False
            routes.append(empty)
            best = (found[0], len(routes) - 1, found[1])
        _, index, positions = best
        routes[index] = self.profile(_placed(routes[index].nodes, request, positions))
        return True

    def recreate(self, routes: list[_Route], removed: list[Request]) -> list[Request]:
        """Reinsert ``removed`` in a randomly chosen order; return the requests that fit nowhere."""
        order = self.rng.randrange(3)
        if order == 0:
            self.rng.shuffle(removed)
        elif order == 1:
            removed.sort(key=lambda r: -sum(self.demand[c] for c in r if self.demand[c] > 0))
        else:
            removed.sort(key=lambda r: -self.d[0][r[0]])
        return [r for r in removed if not self.insert(routes, r)]

    # ---- ruin ------------------------------------------------------------------------------------

    def ruin(self, routes: list[_Route]) -> tuple[list[_Route], list[Request]]:
        """Remove related requests, or a short route's requests; return the kept routes and the removed."""
        if len(routes) > 1 and self.rng.random() < ROUTE_REMOVAL:
            shortest = sorted(range(len(routes)), key=lambda i: len(routes[i].nodes))[:3]
            victim = routes[self.rng.choice(shortest)]
            chosen = {self.request_of[c] for c in victim.nodes}
        else:
            chosen = set()
        seed = self.rng.randrange(1, len(self.p.nodes))
        target = len(chosen) + self.rng.randint(3, max(3, min(MAX_REMOVED, len(self.requests) // 4)))
        for customer in [seed, *self.near[seed]]:
            if len(chosen) >= target:
                break
            chosen.add(self.request_of[customer])
        drop = {c for r in chosen for c in self.requests[r]}
        kept = [
            self.profile([c for c in r.nodes if c not in drop]) if drop & set(r.nodes) else r for r in routes
        ]
        return [r for r in kept if r.nodes], [self.requests[r] for r in sorted(chosen)]


def _nearest(problem: Problem, node: int) -> list[int]:
    """The ``NEIGHBOURS`` customers closest to ``node``, itself excluded."""
    row = problem.dist[node]
    others = [c for c in range(1, len(problem.nodes)) if c != node]
    return sorted(others, key=row.__getitem__)[:NEIGHBOURS]


def _requests(problem: Problem) -> list[Request]:
    requests: list[Request] = []
    for node in problem.customers:
        if node.delivery:
            requests.append((node.id, node.delivery))
        elif not node.pickup:
            requests.append((node.id,))
    return requests


def _placed(nodes: list[int], request: Request, positions: tuple[int, ...]) -> list[int]:
    """``nodes`` with ``request`` inserted: customer after position k (0 = after the depot); a pair
    with its pickup after position i and its delivery after original position j (j == i: right after)."""
    if len(request) == 1:
        k = positions[0]
        return [*nodes[:k], request[0], *nodes[k:]]
    i, j = positions
    return [*nodes[:i], request[0], *nodes[i:j], request[1], *nodes[j:]]


def _objective(routes: list[_Route]) -> tuple[int, float]:
    return len(routes), sum(r.length for r in routes)


def _better(candidate: tuple[int, float], current: tuple[int, float], threshold: float) -> bool:
    if candidate[0] != current[0]:
        return candidate[0] < current[0]
    return candidate[1] < current[1] * (1 + threshold)


def solve(
    problem: Problem,
    *,
    seed: int,
    stop: StoppingCriterion | None = None,
    time_limit_s: float | None = None,
    clock: Callable[[], float] | None = None,
) -> Result:
    """Solve a VRPTW/PDPTW: vehicles first, then distance, within ``stop`` and/or ``time_limit_s``.

    ``time_limit_s`` needs ``clock`` (e.g. ``time.perf_counter``): this package never reads the wall
    clock itself. ``seconds`` in the result is measured with ``clock`` (0.0 without one).
    """
    criterion = _criterion(stop, time_limit_s, clock)
    started = clock() if clock else 0.0
    search = _Search(problem, random.Random(seed))
    current: list[_Route] = []
    unplaced = search.recreate(current, sorted(search.requests, key=lambda r: search.due[r[0]]))
    best = list(current)
    iteration = 0
    while not unplaced and not criterion(iteration):
        threshold = START_THRESHOLD * (1 - criterion.progress(iteration))
        kept, removed = search.ruin(current)
        if not search.recreate(kept, removed) and _better(_objective(kept), _objective(current), threshold):
            current = kept
            if _better(_objective(current), _objective(best), 0.0):
                best = list(current)
        iteration += 1
    routes = tuple(tuple(r.nodes) for r in best)
    verdict = check(problem, routes)
    # The checker already lists unserved customers; say why they are unserved.
    violations = verdict.violations + tuple(f"request {r} fits in no route" for r in unplaced)
    seconds = (clock() - started) if clock else 0.0
    return Result(routes, verdict.vehicles, verdict.distance, not violations, violations, seconds, iteration)


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
