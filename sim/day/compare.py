"""What-if: ``compare(a, b, seeds)`` runs two scenarios on the same seeds and reports KPI differences.

The runs are paired (seed k of A against seed k of B: the same parcels, students and requests when the
scenarios share their load), so the difference of each numeric KPI is estimated with the paired t
interval: mean of (B − A) ± t(0.975, n − 1) · sd / √n (``scipy.stats.t``). With one seed the interval
is empty (``None``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

from sim.day.engine import simulate_day
from sim.day.kpis import kpis
from sim.day.scenario import Scenario

COMPARED = (
    "delivered_in_window_pct",
    "pickup_rate_pct",
    "student_wait_mean_s",
    "student_wait_p95_s",
    "orders_on_time_pct",
    "robot_utilisation_pct",
    "cart_km",
    "lift_rides",
    "lift_wait_mean_s",
    "handoff_wait_mean_s",
    "parcels_delivered",
    "parcels_at_station_end",
    "alarms",
)


@dataclass(frozen=True)
class Difference:
    """One KPI: the means of A and B and the paired difference B − A with its 95 % interval."""

    kpi: str
    a: float
    b: float
    diff: float
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"kpi": self.kpi, "a": self.a, "b": self.b, "diff": self.diff, "ci95": [self.low, self.high]}


def paired_interval(a: Sequence[float], b: Sequence[float]) -> Difference:
    """The paired difference of two equally long samples (``kpi`` left empty)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired samples must be non-empty and equally long")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(diffs)
    low = high = None
    if len(diffs) > 1:
        sd = statistics.stdev(diffs)
        half = float(stats.t.ppf(0.975, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
        low, high = round(mean - half, 3), round(mean + half, 3)
    return Difference(
        "", round(statistics.fmean(a), 3), round(statistics.fmean(b), 3), round(mean, 3), low, high
    )


def compare(
    a: Scenario,
    b: Scenario,
    seeds: Sequence[int],
    *,
    on_run: Callable[[str, int], None] | None = None,
) -> list[Difference]:
    """Run A and B on every seed; one ``Difference`` per compared KPI."""
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for seed in seeds:
        for label, scenario in (("A", a), ("B", b)):
            if on_run is not None:
                on_run(label, seed)
            runs[label].append(kpis(simulate_day(scenario.model_copy(update={"seed": seed}))))
    out = []
    for key in COMPARED:
        d = paired_interval([float(k[key]) for k in runs["A"]], [float(k[key]) for k in runs["B"]])
        out.append(Difference(key, d.a, d.b, d.diff, d.low, d.high))
    return out
