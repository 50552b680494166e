"""The campus-day benchmark: plan a generated day, then take its mini-program requests as they come.

``run_campus(site, seed=0, ...)`` generates a day (``sim.campus_day``: 2,000 parcels, 4 windows,
3 carts, 6 indoor robots, 300 requests by default), plans it at 06:00 with the ``Dispatcher``, then
inserts each request at its creation time into the current plan (the online path), and checks the
final plan with the independent ``validate``. Figures:

- ``planning_s``: the 06:00 plan of every parcel (PyVRP iterations bounded, wall time measured);
- ``parcels_on_time``: share of parcels planned to be delivered in one of their windows by their
  deadline (every planned parcel is, by the plan rules); ``first_window``: share delivered in the
  first window open to them; ``unplanned_parcels`` with the reasons counted;
- ``cart_km``: kilometres driven by carts; ``utilisation``: per robot kind, busy time (travel and
  service) over the span from the first window's start to the last window's end;
- ``requests_accepted``/``refused`` and ``insert_ms`` p50/p95/max; ``violations`` (must be 0).
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from maps.io import load_map
from maps.model import Site
from orchestrator.dispatch.campus import LegKind, Plan, RobotKind, Snapshot
from orchestrator.dispatch.dispatcher import Dispatcher
from orchestrator.dispatch.insertion import Accepted
from orchestrator.dispatch.validate import validate
from orchestrator.settings import default_campus_map
from sim.campus_day import DAY_START_S, campus_day


def run_campus(
    site: Site,
    *,
    seed: int = 0,
    parcels: int = 2000,
    requests: int = 300,
    iterations: int = 1000,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Plan one generated day and serve its requests online; the figures (see the module docstring)."""
    day = campus_day(site, seed=seed, parcels=parcels, requests=requests)
    dispatcher = Dispatcher(site, iterations=iterations, seed=seed)
    started = clock()
    outcome = dispatcher.plan(day.snapshot, DAY_START_S)
    planning_s = clock() - started
    plan = outcome.plan
    snapshot = day.snapshot
    insert_ms: list[float] = []
    refused: Counter[str] = Counter()
    for request in day.requests:
        snapshot = replace(snapshot, requests=(*snapshot.requests, request))
        started = clock()
        decision = dispatcher.insert(plan, snapshot, request, request.created_s)
        insert_ms.append(1000 * (clock() - started))
        if isinstance(decision, Accepted):
            plan = decision.plan
        else:
            refused[decision.reason.split(":")[0]] += 1
            plan = Plan(plan.created_s, plan.legs, {**plan.unplanned, request.id: decision.reason})
    violations = validate(plan, snapshot, dispatcher.tables(snapshot))
    return {
        "seed": seed,
        "parcels": parcels,
        "requests": requests,
        "planned_ok": outcome.ok,
        "planning_reason": outcome.reason,
        "planning_s": round(planning_s, 2),
        **_parcel_figures(plan, snapshot),
        "cart_km": round(sum(leg.metres for leg in _legs_of_kind(plan, snapshot, RobotKind.CART)) / 1000, 1),
        "utilisation": _utilisation(plan, snapshot),
        "requests_accepted": len(day.requests) - sum(refused.values()),
        "requests_refused": dict(refused),
        "insert_ms": _percentiles(insert_ms),
        "violations": len(violations),
        "first_violations": list(violations[:3]),
    }


def _legs_of_kind(plan: Plan, snapshot: Snapshot, kind: RobotKind) -> list[Any]:
    ids = {r.id for r in snapshot.robots if r.kind is kind}
    return [leg for rid, legs in plan.legs.items() if rid in ids for leg in legs]


def _parcel_figures(plan: Plan, snapshot: Snapshot) -> dict[str, Any]:
    done_at: dict[str, str | None] = {}
    for leg in plan.all_legs():
        if leg.kind is LegKind.LOAD and leg.window is not None:
            for pid in leg.parcels:
                done_at[pid] = leg.window
    order = {w.id: k for k, w in enumerate(sorted(snapshot.windows, key=lambda w: w.start_s))}
    first = 0
    for parcel in snapshot.parcels:
        window = done_at.get(parcel.id)
        if window is None:
            continue
        open_to_it = [
            w
            for w in snapshot.windows
            if (not parcel.windows or w.id in parcel.windows) and w.start_s >= parcel.received_s
        ]
        if open_to_it and order[window] == min(order[w.id] for w in open_to_it):
            first += 1
    total = len(snapshot.parcels) or 1
    reasons = Counter(plan.unplanned[p.id] for p in snapshot.parcels if p.id in plan.unplanned)
    return {
        "parcels_on_time": round(len(done_at) / total, 4),
        "first_window": round(first / total, 4),
        "unplanned_parcels": sum(reasons.values()),
        "unplanned_reasons": dict(reasons),
    }


def _utilisation(plan: Plan, snapshot: Snapshot) -> dict[str, float]:
    span = max(w.end_s for w in snapshot.windows) - min(w.start_s for w in snapshot.windows)
    out: dict[str, float] = {}
    for kind in RobotKind:
        robots = [r for r in snapshot.robots if r.kind is kind]
        if not robots:
            continue
        busy = 0.0
        for robot in robots:
            legs = plan.legs.get(robot.id, ())
            previous_end: float | None = None
            for leg in legs:
                if leg.kind is LegKind.CHARGE:
                    previous_end = leg.end_s
                    continue
                travel = leg.arrive_s - previous_end if previous_end is not None else 0.0
                busy += max(0.0, travel) + (leg.end_s - leg.start_s)
                previous_end = leg.end_s
        out[kind.value] = round(busy / (span * len(robots)), 3)
    return out


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)

    return {"p50": pick(0.5), "p95": pick(0.95), "max": round(ordered[-1], 2)}


def format_campus(result: dict[str, Any]) -> str:
    """A few human lines of the figures."""
    return "\n".join(
        [
            f"campus day seed {result['seed']}: {result['parcels']} parcels, {result['requests']} requests",
            f"  planned in {result['planning_s']} s (ok={result['planned_ok']}); "
            f"on time {100 * result['parcels_on_time']:.1f} %, "
            f"first window {100 * result['first_window']:.1f} %, "
            f"unplanned {result['unplanned_parcels']} {result['unplanned_reasons']}",
            f"  cart-km {result['cart_km']}, utilisation {result['utilisation']}",
            f"  requests accepted {result['requests_accepted']}, refused {result['requests_refused']}, "
            f"insert ms {result['insert_ms']}",
            f"  plan rule violations: {result['violations']} {result['first_violations']}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.dispatch.campus [--seed N]``: print the figures of one campus day."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parcels", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    site = load_map(default_campus_map())
    print(format_campus(run_campus(site, seed=args.seed, parcels=args.parcels, requests=args.requests)))


if __name__ == "__main__":
    main()
