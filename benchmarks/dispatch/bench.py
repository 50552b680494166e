"""Solve every instance of a folder, check each solution independently, compare with the best known.

Classical convention: real Euclidean distances, travel time = distance, objective vehicles first then
distance. A row per instance and solver: ``instance``, ``solver`` (``robopost`` = our PyVRP adapter,
``ortools`` = the baseline), ``vehicles``, ``distance``, ``bks_vehicles``, ``bks_distance``, ``gap_pct``
(distance gap to the BKS, in %), ``feasible``, ``violations`` (the checker's first five), ``seconds``,
``routes`` (customer/node ids of the instance in visiting order, depot excluded) — enough for anyone
to re-check a solution.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.dispatch.check import check
from orchestrator.dispatch.instances import BestKnown, read_bks_text, read_lilim_text, read_solomon_text
from orchestrator.dispatch.problem import Problem
from orchestrator.dispatch.solver import solve
from orchestrator.dispatch.stop import MaxIterations

CLASSICAL = ("vrptw", "pdptw")  # run here
SUITES = (*CLASSICAL, "campus", "online")  # the last two: campus.py and online.py


def load_instance(suite: str, path: Path) -> Problem:
    """Read one instance file of ``suite`` (``vrptw``: Solomon format, ``pdptw``: Li & Lim format)."""
    text = path.read_text(encoding="utf-8")
    if suite == "vrptw":
        return read_solomon_text(text, str(path))
    if suite == "pdptw":
        return read_lilim_text(text, path.stem, str(path))
    raise ValueError(f"unknown classical suite {suite!r}: expected one of {', '.join(CLASSICAL)}")


def row(
    problem: Problem, routes: list[list[int]], seconds: float, bks: BestKnown | None, solver: str
) -> dict[str, Any]:
    """One JSON row for ``routes``, judged by the independent checker (not by the solver's own claims)."""
    verdict = check(problem, routes)
    gap = None
    if bks is not None and verdict.feasible:
        gap = round(100 * (verdict.distance - bks.distance) / bks.distance, 3)
    return {
        "instance": problem.name,
        "solver": solver,
        "vehicles": verdict.vehicles,
        "distance": round(verdict.distance, 4),
        "bks_vehicles": bks.vehicles if bks else None,
        "bks_distance": bks.distance if bks else None,
        "gap_pct": gap,
        "feasible": verdict.feasible,
        "violations": list(verdict.violations[:5]),
        "seconds": round(seconds, 3),
        "routes": routes,
    }


def run_bench(
    suite: str,
    instances: Path,
    bks_file: Path,
    *,
    time_limit_s: float | None = 10.0,
    iterations: int | None = None,
    limit: int | None = None,
    seed: int = 1,
    baseline: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Solve the ``*.txt`` instances of ``instances`` (sorted, the first ``limit``); one row each.

    Each instance stops at ``time_limit_s`` seconds or ``iterations`` PyVRP iterations, whichever comes
    first (at least one must be given). With ``baseline``, OR-Tools' guided local search runs on the
    same instance with the same time limit and its row follows ours; it needs ``ortools`` (the ``bench``
    extra) and a time limit.
    """
    if suite not in CLASSICAL:
        raise ValueError(f"unknown classical suite {suite!r}: expected one of {', '.join(CLASSICAL)}")
    if time_limit_s is None and iterations is None:
        raise ValueError("give a time limit or an iteration count per instance")
    if baseline and time_limit_s is None:
        raise ValueError("the OR-Tools baseline needs a time limit")
    files = sorted(instances.glob("*.txt"))[:limit]
    if not files:
        raise ValueError(f"{instances}: no *.txt instance files")
    bks = read_bks_text(bks_file.read_text(encoding="utf-8"), str(bks_file))
    baseline_solver = _baseline() if baseline else None
    rows: list[dict[str, Any]] = []
    for path in files:
        problem = load_instance(suite, path)
        best = bks.get(problem.name)
        found = [_robopost_row(problem, best, time_limit_s, iterations, seed)]
        if baseline_solver is not None and time_limit_s is not None:
            started = time.perf_counter()
            routes = baseline_solver(problem, time_limit_s)
            found.append(row(problem, routes, time.perf_counter() - started, best, "ortools"))
        for result in found:
            rows.append(result)
            if progress is not None:
                progress(result)
    return rows


def _robopost_row(
    problem: Problem, bks: BestKnown | None, time_limit_s: float | None, iterations: int | None, seed: int
) -> dict[str, Any]:
    stop = MaxIterations(iterations) if iterations is not None else None
    clock = time.perf_counter if time_limit_s is not None else None
    started = time.perf_counter()
    result = solve(problem, seed=seed, stop=stop, time_limit_s=time_limit_s, clock=clock)
    return row(problem, [list(r) for r in result.routes], time.perf_counter() - started, bks, "robopost")


def _baseline() -> Callable[[Problem, float], list[list[int]]]:
    """OR-Tools' solver, imported only when asked for (``ImportError`` names the missing extra)."""
    try:
        from benchmarks.dispatch.ortools_baseline import solve_ortools
    except ImportError as exc:
        raise ImportError(f"the OR-Tools baseline needs ortools (pip install -e '.[bench]'): {exc}") from None
    return solve_ortools


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per solver: instances, feasible, BKS vehicle count reached (share too), mean gap on those, seconds.

    The gap is averaged over the feasible rows that use at most the best-known number of vehicles.
    """
    summary: dict[str, Any] = {}
    for solver in sorted({r["solver"] for r in rows}):
        mine = [r for r in rows if r["solver"] == solver]
        hit = [
            r
            for r in mine
            if r["feasible"] and r["bks_vehicles"] is not None and r["vehicles"] <= r["bks_vehicles"]
        ]
        gaps = [r["gap_pct"] for r in hit if r["gap_pct"] is not None]
        summary[solver] = {
            "instances": len(mine),
            "feasible": sum(1 for r in mine if r["feasible"]),
            "bks_vehicles_reached": len(hit),
            "bks_vehicles_reached_pct": round(100 * len(hit) / len(mine), 1),
            "mean_gap_pct_on_those": round(sum(gaps) / len(gaps), 3) if gaps else None,
            "max_gap_pct_on_those": round(max(gaps), 3) if gaps else None,
            "mean_seconds": round(sum(r["seconds"] for r in mine) / len(mine), 3),
        }
    return summary
