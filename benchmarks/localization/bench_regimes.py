"""Per-regime position error of the Localizer, the RTS smoother and the naive baseline.

Run: ``.venv/bin/python benchmarks/localization/bench_regimes.py [--seed N] [--json OUT]``.

The scripted trajectory of ``sim.sensors`` is simulated for the seed; the arrivals are fed in arrival
order to the ``Localizer`` (online) and the ``NaiveFilter``, and all measurements to ``smooth``
(offline). Errors are the base position error (m) at every wheel-odometry stamp, grouped by the
regime the odometry was taken in: for the online filters the estimate right after that odometry was
processed (what a controller would read), for the smoother the smoothed state at that stamp.
The JSON holds one object per regime: ``rmse_m``, ``p95_m``, ``max_m`` (Localizer),
``smoother_rmse_m``, ``naive_rmse_m``, plus ``n`` samples.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from robots.localization.localizer import Estimate, Localizer, LocalizerConfig, SensorConfig, initial_estimate
from robots.localization.measurements import WheelOdometry
from robots.localization.naive import NaiveConfig, NaiveFilter
from robots.localization.smoother import smooth
from sim.sensors import Arrival, Regime, Trajectory, default_extrinsics, scripted_trajectory, simulate

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Errors:
    """Position errors (m) at the wheel-odometry stamps, and the regime of each."""

    localizer: Array
    smoother: Array
    naive: Array
    regimes: tuple[Regime, ...]


def _initial(traj: Trajectory) -> Estimate:
    return initial_estimate(float(traj.t[0]), traj.pose(0), (0.5, 0.5, 0.05), traj.env(0).floor)


def _config() -> LocalizerConfig:
    return LocalizerConfig({name: SensorConfig(ext) for name, ext in default_extrinsics().items()})


def _online_errors(traj: Trajectory, arrivals: list[Arrival]) -> tuple[Array, Array, Array]:
    loc = Localizer(_config(), _initial(traj))
    naive = NaiveFilter(NaiveConfig(extrinsics=default_extrinsics()), _initial(traj))
    stamps, ours, theirs = [], [], []
    for a in arrivals:
        loc.process(a.meas)
        naive.process(a.meas)
        if isinstance(a.meas, WheelOdometry):
            stamps.append(a.meas.stamp)
            ours.append(loc.latest.x[:2].copy())
            theirs.append(naive.latest.x[:2].copy())
    t = np.array(stamps)
    truth = traj.position_at(t)
    return t, np.linalg.norm(np.array(ours) - truth, axis=1), np.linalg.norm(np.array(theirs) - truth, axis=1)


def run(seed: int) -> Errors:
    """Simulate the scripted trajectory for ``seed`` and return the three filters' errors."""
    traj = scripted_trajectory()
    arrivals = simulate(traj, seed)
    t, ours, naive = _online_errors(traj, arrivals)
    result = smooth(_config(), _initial(traj), [a.meas for a in arrivals])
    wheel = np.array([s == "wheel" for s in result.smoothed.sources])
    s_t = result.smoothed.stamps[wheel]
    s_err = np.linalg.norm(result.smoothed.positions()[wheel] - traj.position_at(s_t), axis=1)
    if not np.allclose(s_t, t):
        raise RuntimeError("smoother and online filters disagree on the wheel-odometry stamps")
    regimes = tuple(a.regime for a in arrivals if isinstance(a.meas, WheelOdometry))
    return Errors(ours, s_err, naive, regimes)


def _rmse(e: Array) -> float:
    return math.sqrt(float(np.mean(e**2)))


def summary(errors: Errors) -> dict[str, dict[str, float]]:
    """Per regime: ``rmse_m``, ``p95_m``, ``max_m``, ``smoother_rmse_m``, ``naive_rmse_m``, ``n``."""
    out: dict[str, dict[str, float]] = {}
    tags = np.array([r.value for r in errors.regimes])
    for regime in Regime:
        sel = tags == regime.value
        if not sel.any():
            continue
        e = errors.localizer[sel]
        out[regime.value] = {
            "rmse_m": _rmse(e),
            "p95_m": float(np.percentile(e, 95)),
            "max_m": float(e.max()),
            "smoother_rmse_m": _rmse(errors.smoother[sel]),
            "naive_rmse_m": _rmse(errors.naive[sel]),
            "n": int(sel.sum()),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the benchmark, print a table and optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, dest="json_out")
    args = parser.parse_args(argv)
    table = summary(run(args.seed))
    print(f"seed {args.seed}")
    print(f"{'regime':10s} {'n':>5s} {'rmse':>8s} {'p95':>8s} {'max':>8s} {'smoother':>9s} {'naive':>8s}")
    for name, row in table.items():
        print(
            f"{name:10s} {row['n']:5.0f} {row['rmse_m']:8.3f} {row['p95_m']:8.3f} {row['max_m']:8.3f}"
            f" {row['smoother_rmse_m']:9.3f} {row['naive_rmse_m']:8.3f}"
        )
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
