"""Time ``Localizer.process`` per measurement: wheel + gyro at 50 Hz in order, GNSS at 10 Hz 200 ms late.

Run: ``.venv/bin/python benchmarks/localization/bench_update.py [seconds]``. Prints mean and p99 in µs
for in-order updates and for late measurements (which replay up to 200 ms of history).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from robots.localization.frames import Pose2
from robots.localization.localizer import Localizer, LocalizerConfig, Outcome, SensorConfig, initial_estimate
from robots.localization.measurements import GnssFix, GnssFixType, Gyro, Measurement, WheelOdometry


def arrivals(duration: float, seed: int = 0) -> list[tuple[float, Measurement]]:
    """Measurements of a robot circling at 1 m/s, with the time each one arrives."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, Measurement]] = []
    for k in range(1, int(duration * 50)):
        t = k * 0.02
        out.append((t, WheelOdometry("wheel", t, 1.0 + rng.normal(0, 0.02), 0.1 + rng.normal(0, 0.01))))
        out.append((t + 0.001, Gyro("imu", t + 0.001, 0.1 + 0.003 + rng.normal(0, 0.003))))
        if k % 5 == 0:
            e, n = 10.0 * np.sin(0.1 * t), 10.0 * (1 - np.cos(0.1 * t))
            fix = GnssFix("gnss", t, e + rng.normal(0, 0.02), n + rng.normal(0, 0.02), GnssFixType.FIXED)
            out.append((t + 0.2, fix))
    out.sort(key=lambda a: a[0])
    return out


def main(duration: float = 60.0) -> None:
    """Run the benchmark and print the figures."""
    sensors = {name: SensorConfig() for name in ("wheel", "imu", "gnss")}
    loc = Localizer(LocalizerConfig(sensors), initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (0.1, 0.1, 0.05)))
    times: dict[Outcome, list[float]] = {o: [] for o in Outcome}
    for _, meas in arrivals(duration):
        t0 = time.perf_counter_ns()
        outcome = loc.process(meas)
        times[outcome].append((time.perf_counter_ns() - t0) / 1000.0)
    every = np.array([t for ts in times.values() for t in ts])
    print(f"all      n={every.size:6d} mean={every.mean():7.1f} µs p99={np.percentile(every, 99):7.1f} µs")
    for outcome, ts in times.items():
        if ts:
            a = np.array(ts)
            print(
                f"{outcome.value:8s} n={a.size:6d} mean={a.mean():7.1f} µs p99={np.percentile(a, 99):7.1f} µs"
            )
    print(f"final pose {loc.latest.pose}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
