"""Time of ``orchestrator.dispatch.windows.recommend`` on 10^5 pickup times (a seeded campus day).

Run: ``.venv/bin/python -m benchmarks.windows.recommend [--points 100000] [--repeat 5] [--seed 0]
[--json OUT]``. Demand: 40 % around the 17:00 peak (SCENARIO.md), 20 % around lunch, 15 % in the
morning, the rest spread over 06:00–23:00. Prints, per setting (window step, capacity), the best and
median wall time of ``repeat`` runs, the windows found and their share; the default setting (4 windows,
60–90 min, 2 h gap, 07:00–22:30, 5-min step) first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from orchestrator.dispatch.windows import HOUR, MINUTE, WindowRules, recommend

SETTINGS: tuple[tuple[str, WindowRules], ...] = (
    ("step 5 min", WindowRules()),
    ("step 1 min", WindowRules(step_s=MINUTE)),
    ("step 5 min, capacity 15000", WindowRules(capacity=15_000)),
    ("any time (no step)", WindowRules(step_s=None)),
    ("any time, capacity 15000", WindowRules(step_s=None, capacity=15_000)),
    ("6 windows, any time", WindowRules(count=6, min_gap_s=HOUR, step_s=None)),
)


def campus_demand(points: int, seed: int) -> NDArray[np.float64]:
    """``points`` pickup times (seconds since midnight, not rounded) of a busy campus day."""
    rng = np.random.default_rng(seed)
    morning, lunch, peak = int(points * 0.15), int(points * 0.20), int(points * 0.40)
    drawn = [
        rng.normal(8 * HOUR, 25 * MINUTE, morning),
        rng.normal(12.5 * HOUR, 30 * MINUTE, lunch),
        rng.normal(17 * HOUR, 45 * MINUTE, peak),
        rng.uniform(6 * HOUR, 23 * HOUR, points - morning - lunch - peak),
    ]
    return np.clip(np.concatenate(drawn), 0.0, 86_400.0)


def run_bench(points: int, repeat: int, seed: int) -> list[dict[str, object]]:
    """One row per setting: name, best_ms, median_ms, windows, share."""
    times = campus_demand(points, seed)
    rows = []
    for name, rules in SETTINGS:
        took = []
        for _ in range(repeat):
            started = time.perf_counter()
            rec = recommend(times, rules)
            took.append(time.perf_counter() - started)
        rows.append(
            {
                "setting": name,
                "points": points,
                "best_ms": round(min(took) * 1000, 1),
                "median_ms": round(statistics.median(took) * 1000, 1),
                "windows": " ".join(c.label() for c in rec.windows),
                "share": round(rec.share, 4),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = run_bench(args.points, args.repeat, args.seed)
    for row in rows:
        print(
            f"{row['setting']:<28} {row['points']} points: best {row['best_ms']:7.1f} ms, "
            f"median {row['median_ms']:7.1f} ms, share {row['share']:.1%}  {row['windows']}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
