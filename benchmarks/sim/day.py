"""The fast-mode target: a full campus day (2,000 parcels, 3 carts, 6 indoor robots, 300 mini-program
orders) simulated in ≤ 20 s, with the same KPIs for the same seed.

Run: ``python -m benchmarks.sim.day [--scenario sim/scenarios/neijiang-3carts.yaml] [--seed 0]
[--repeat 2] [--report DIR]``. Prints the wall time of each run (``time.perf_counter``: the benchmark,
not the simulator, reads the clock), whether the runs' KPIs were identical, and the KPIs.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from sim.day.engine import simulate_day
from sim.day.kpis import kpis
from sim.day.report import write_report
from sim.day.scenario import load_scenario

DEFAULT = Path(__file__).resolve().parents[2] / "sim" / "scenarios" / "neijiang-3carts.yaml"


def main(argv: Sequence[str] | None = None) -> None:
    """Simulate the day ``--repeat`` times; print wall times, determinism and the KPIs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=DEFAULT)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--report", type=Path, default=None, help="also write the day report here")
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario, seed=args.seed)
    walls, runs = [], []
    for _ in range(max(1, args.repeat)):
        started = time.perf_counter()
        result = simulate_day(scenario)
        walls.append(time.perf_counter() - started)
        runs.append(kpis(result))
    if args.report is not None:
        write_report(result, args.report, wall_s=walls[-1])
    print(
        f"sim day {scenario.name} seed {scenario.seed}: {scenario.parcels} parcels, {scenario.carts} carts, "
        f"{scenario.indoor} indoor robots, {scenario.requests} orders"
    )
    print(f"  wall time per day: {', '.join(f'{w:.2f} s' for w in walls)} (target <= 20 s)")
    print(f"  identical KPIs over {len(runs)} runs: {all(r == runs[0] for r in runs)}")
    print(json.dumps(runs[0], indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
