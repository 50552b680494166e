"""Solve every instance of a folder, check each solution independently, compare with the best known.

Classical convention: real Euclidean distances, travel time = distance, objective vehicles first then
distance. A row per instance: ``instance``, ``vehicles``, ``distance``, ``bks_vehicles``,
``bks_distance``, ``gap_pct`` (distance gap to the BKS, in %), ``feasible``, ``seconds``, ``routes``
(customer ids in visiting order, depot excluded) — enough for anyone to re-check a solution.
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

SUITES = ("vrptw", "pdptw")


def load_instance(suite: str, path: Path) -> Problem:
    """Read one instance file of ``suite`` (``vrptw``: Solomon format, ``pdptw``: Li & Lim format)."""
    text = path.read_text(encoding="utf-8")
    if suite == "vrptw":
        return read_solomon_text(text, str(path))
    if suite == "pdptw":
        return read_lilim_text(text, path.stem, str(path))
    raise ValueError(f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}")


def _row(problem: Problem, routes: list[list[int]], seconds: float, bks: BestKnown | None) -> dict[str, Any]:
    verdict = check(problem, routes)
    gap = None
    if bks is not None and verdict.feasible:
        gap = round(100 * (verdict.distance - bks.distance) / bks.distance, 3)
    return {
        "instance": problem.name,
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
    time_limit_s: float = 10.0,
    limit: int | None = None,
    seed: int = 1,
    baseline: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Solve the ``*.txt`` instances of ``instances`` (sorted, the first ``limit``); one row each.

    With ``baseline``, OR-Tools' guided local search runs on the same instance with the same limit and
    its row (``solver: "ortools"``) follows ours (``solver: "robopost"``).
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}")
    files = sorted(instances.glob("*.txt"))[:limit]
    if not files:
        raise ValueError(f"{instances}: no *.txt instance files")
    bks = read_bks_text(bks_file.read_text(encoding="utf-8"), str(bks_file))
    rows: list[dict[str, Any]] = []
    for path in files:
        problem = load_instance(suite, path)
        result = solve(problem, seed=seed, time_limit_s=time_limit_s, clock=time.perf_counter)
        found = [_row(problem, [list(r) for r in result.routes], result.seconds, bks.get(problem.name))]
        found[0]["solver"] = "robopost"
        if baseline:
            found.append(_baseline_row(problem, time_limit_s, bks.get(problem.name)))
        for row in found:
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows


def _baseline_row(problem: Problem, time_limit_s: float, bks: BestKnown | None) -> dict[str, Any]:
    from benchmarks.dispatch.ortools_baseline import solve_ortools

    started = time.perf_counter()
    routes = solve_ortools(problem, time_limit_s)
    row = _row(problem, routes, time.perf_counter() - started, bks)
    row["solver"] = "ortools"
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per solver: instances, feasible, BKS vehicle count reached, mean gap on those, mean seconds."""
    summary: dict[str, Any] = {}
    for solver in sorted({row.get("solver", "robopost") for row in rows}):
        mine = [row for row in rows if row.get("solver", "robopost") == solver]
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
            "mean_gap_pct_on_those": round(sum(gaps) / len(gaps), 3) if gaps else None,
            "mean_seconds": round(sum(r["seconds"] for r in mine) / len(mine), 3),
        }
    return summary
