"""How fast a new mini-program request is answered: ``insert_request`` at 50 robots and 500 open tasks.

``run_online(site)`` builds a fleet on the campus (robots of kind ROBOT based at the station, plus a few
INDOOR robots at the buildings' hand-off points, each with S/M/L compartments and a battery), fills
their plans with ``tasks`` open requests by inserting random pickups and coffee orders one by one (until
``tasks`` are accepted), then times ``samples`` further insertions. Each sample is inserted into the same
filled plan (not accumulating), so every sample sees exactly ``tasks`` open tasks. Requests spread over
six hours from ``now`` with 15–45 min promises (coffee: 20 min).

Run: ``python -m benchmarks.dispatch.online [--robots 50] [--tasks 500] [--samples 200] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from maps.io import load_map
from maps.model import PlaceKind, Site
from orchestrator.dispatch.campus import (
    Battery,
    Compartments,
    Handoff,
    Plan,
    Request,
    RequestKind,
    Robot,
    RobotKind,
    Size,
    Snapshot,
)
from orchestrator.dispatch.insertion import Accepted, insert_request
from orchestrator.dispatch.travel import TravelBook, TravelTable

SAMPLE_CAMPUS = Path(__file__).resolve().parents[2] / "maps" / "campuses" / "neijiang.yaml"
NOW = 8 * 3600.0  # 08:00
HORIZON_S = 6 * 3600.0
SHOPS = ("canteen", "library")
HANDOFFS = {
    "ADM": Handoff("ADM", "stop_adm", "adm_mailroom"),
    "TEA": Handoff("TEA", "stop_tea", "tea_handoff"),
}


def fleet(robots: int, rng: random.Random, now: float = NOW) -> tuple[Robot, ...]:
    """``robots`` robots: one in eight (at least two) INDOOR, alternating ADM and TEA; the rest ROBOT."""
    indoor = max(2, robots // 8) if robots >= 4 else 0
    out: list[Robot] = []
    for n in range(robots):
        battery = Battery(
            capacity_wh=1000.0, level_wh=rng.uniform(600.0, 1000.0), reserve_wh=100.0, per_m_wh=0.05,
            per_lift_wh=1.0, charge_w=500.0,
        )  # fmt: skip
        if n < indoor:
            handoff = HANDOFFS["ADM" if n % 2 == 0 else "TEA"]
            out.append(
                Robot(
                    f"indoor_{n + 1}",
                    RobotKind.INDOOR,
                    "indoor",
                    Compartments(s=6, m=2, l=0),
                    handoff.robot_place,
                    handoff.robot_place,
                    battery,
                    now,
                    building=handoff.building,
                )
            )
        else:
            out.append(
                Robot(
                    f"robot_{n + 1}",
                    RobotKind.ROBOT,
                    "robot",
                    Compartments(s=4, m=2, l=1),
                    "post_station",
                    "post_station",
                    battery,
                    now,
                )
            )
    return tuple(out)


def doors(site: Site) -> tuple[str, ...]:
    """Where requests are made: offices and rooms, stops, and the library and canteen fronts."""
    kinds = {PlaceKind.ROOM, PlaceKind.STOP}
    names = [p.name for p in site.places.values() if p.kind in kinds or p.name in SHOPS]
    return tuple(sorted(names))


def random_request(rid: str, rng: random.Random, places: Sequence[str], now: float = NOW) -> Request:
    """A pickup (70 %, S/M/L) or a coffee from a shop (S), promised within the next six hours."""
    place = rng.choice(places)
    earliest = now + rng.uniform(0.0, HORIZON_S)
    if rng.random() < 0.7:
        size = rng.choices((Size.S, Size.M, Size.L), (6, 3, 1))[0]
        latest = earliest + rng.uniform(15 * 60, 45 * 60)
        return Request(rid, RequestKind.PICKUP, place, earliest, latest, size, created_s=now)
    origin = rng.choice(SHOPS)
    return Request(rid, RequestKind.COFFEE, place, earliest, earliest + 20 * 60, Size.S, origin, now)


def tables_of(site: Site) -> dict[str, TravelTable]:
    """The travel tables of the profiles the fleet uses (and the cart's, for completeness)."""
    book = TravelBook(site)
    return {profile: book.table(profile) for profile in ("cart", "indoor", "robot")}


def fill(
    snapshot: Snapshot, tables: dict[str, TravelTable], tasks: int, rng: random.Random, places: Sequence[str]
) -> tuple[Plan, Snapshot, int]:
    """Insert random requests until ``tasks`` are accepted; the plan, the snapshot with them, refusals."""
    plan = Plan(NOW, {r.id: () for r in snapshot.robots})
    accepted: list[Request] = []
    refused = 0
    attempts = 0
    while len(accepted) < tasks:
        attempts += 1
        if attempts > 5 * tasks:
            raise RuntimeError(
                f"only {len(accepted)} of {tasks} requests fit the fleet after {attempts - 1} tries"
            )
        request = random_request(f"open_{attempts}", rng, places)
        decision = insert_request(plan, snapshot, request, tables, NOW)
        if isinstance(decision, Accepted):
            plan = decision.plan
            accepted.append(request)
        else:
            refused += 1
    return plan, replace(snapshot, requests=tuple(accepted)), refused


def _percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_online(
    site: Site,
    *,
    robots: int = 50,
    tasks: int = 500,
    samples: int = 200,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Fill a fleet's plans with ``tasks`` open requests, then time ``samples`` insertions (ms).

    Returns ``robots``, ``open_tasks``, ``legs`` (in the filled plan), ``fill_refused``, ``samples``,
    ``accepted``, ``refused``, ``refusals`` (count by the reason's first words), ``p50_ms``, ``p95_ms``,
    ``p99_ms``, ``max_ms``, ``mean_ms``, ``fill_s``. Samples are not accumulated: each is inserted into
    the same filled plan.
    """
    if robots < 1 or tasks < 0 or samples < 1:
        raise ValueError("robots and samples must be >= 1 and tasks >= 0")
    rng = random.Random(seed)
    tables = tables_of(site)
    places = doors(site)
    snapshot = Snapshot(
        robots=fleet(robots, rng), windows=(), parcels=(), handoffs=HANDOFFS,
        chargers=("adm_charger", "tea_charger"),
    )  # fmt: skip
    start = clock()
    plan, snapshot, fill_refused = fill(snapshot, tables, tasks, rng, places)
    fill_s = clock() - start
    times: list[float] = []
    reasons: Counter[str] = Counter()
    accepted = 0
    for n in range(samples):
        request = random_request(f"new_{n}", rng, places)
        t0 = clock()
        decision = insert_request(plan, snapshot, request, tables, NOW)
        times.append((clock() - t0) * 1000.0)
        if isinstance(decision, Accepted):
            accepted += 1
        else:
            reasons[decision.reason.split(":")[0]] += 1
    return {
        "robots": robots,
        "open_tasks": tasks,
        "legs": sum(len(legs) for legs in plan.legs.values()),
        "fill_refused": fill_refused,
        "fill_s": round(fill_s, 3),
        "samples": samples,
        "accepted": accepted,
        "refused": samples - accepted,
        "refusals": dict(reasons),
        "p50_ms": round(_percentile(times, 0.50), 3),
        "p95_ms": round(_percentile(times, 0.95), 3),
        "p99_ms": round(_percentile(times, 0.99), 3),
        "max_ms": round(max(times), 3),
        "mean_ms": round(statistics.fmean(times), 3),
    }


def format_result(result: dict[str, Any]) -> str:
    """The figures as a few printable lines."""
    return "\n".join(
        [
            f"online insertion: {result['robots']} robots, {result['open_tasks']} open tasks "
            f"({result['legs']} legs; filled in {result['fill_s']} s, "
            f"{result['fill_refused']} refused while filling)",
            f"{result['samples']} insertions into the filled plan (not accumulated): "
            f"{result['accepted']} accepted, {result['refused']} refused {result['refusals']}",
            f"p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms  p99 {result['p99_ms']} ms  "
            f"max {result['max_ms']} ms  mean {result['mean_ms']} ms",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.dispatch.online``: print the figures on the sample campus (or ``--map``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dispatch.online", description=__doc__)
    parser.add_argument("--map", type=Path, default=SAMPLE_CAMPUS, help="campus map (robopost YAML)")
    parser.add_argument("--robots", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run_online(
        load_map(args.map), robots=args.robots, tasks=args.tasks, samples=args.samples, seed=args.seed
    )
    print(format_result(result))


if __name__ == "__main__":
    main()
