"""Time ``Localizer.process`` per measurement on a synthetic circle drive, without the simulator.

Wheel odometry, gyro and accelerometer at 50 Hz (20 ms means), RTK GNSS at 10 Hz arriving 200 ms
late, and every 2 s a fix 400 ms late (behind the fusion horizon: replayed). Prints mean and p99 in µs
per outcome, and the cost of reading the current estimate after each wheel message.

Run: ``python -m benchmarks.localization.bench_update [seconds]``.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from robots.localization.frames import Pose2
from robots.localization.fusion import AnyMeasurement
from robots.localization.gating import GateConfig
from robots.localization.localizer import Localizer, LocalizerConfig, Outcome, SensorConfig, initial_estimate
from robots.localization.measurements import Accel, GnssFix, GnssFixType, Gyro, WheelOdometry


def arrivals(duration: float, seed: int = 0) -> list[tuple[float, AnyMeasurement]]:
    """Measurements of a robot circling at 1 m/s (radius 10 m), with the time each one arrives."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, AnyMeasurement]] = []
    for k in range(1, int(duration * 50)):
        t = round(k * 0.02, 9)
        out.append((t, WheelOdometry("wheel", t, 1.0 + rng.normal(0, 0.02), 0.1, 0.03, 0.02, 0.02)))
        out.append((t, Gyro("imu", t, 0.1 + 0.003 + rng.normal(0, 0.005), 0.005, 0.02)))
        out.append((t, Accel("accel", t, rng.normal(0, 0.05), 0.05, 0.02)))
        if k % 5 == 0:
            e, n = 10.0 * math.sin(0.1 * t), 10.0 * (1 - math.cos(0.1 * t))
            fix = GnssFix("gnss", t, e + rng.normal(0, 0.02), n + rng.normal(0, 0.02), GnssFixType.FIXED)
            out.append((t + (0.4 if k % 100 == 0 else 0.2), fix))
    out.sort(key=lambda a: a[0])
    return out


def main(duration: float = 60.0) -> None:
    """Run the benchmark and print the figures."""
    ungated = SensorConfig(gate=GateConfig(enabled=False))
    sensors = {"wheel": ungated, "imu": ungated, "accel": ungated, "gnss": SensorConfig()}
    loc = Localizer(LocalizerConfig(sensors), initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (0.1, 0.1, 0.05)))
    times: dict[Outcome, list[float]] = {o: [] for o in Outcome}
    reads: list[float] = []
    for _, meas in arrivals(duration):
        t0 = time.perf_counter_ns()
        outcome = loc.process(meas)
        t1 = time.perf_counter_ns()
        times[outcome].append((t1 - t0) / 1000.0)
        if isinstance(meas, WheelOdometry):
            _ = loc.latest
            reads.append((time.perf_counter_ns() - t1) / 1000.0)
    every = np.array([t for ts in times.values() for t in ts])
    print(f"all      n={every.size:6d} mean={every.mean():7.1f} µs p99={np.percentile(every, 99):7.1f} µs")
    for outcome, ts in times.items():
        if ts:
            a = np.array(ts)
            print(
                f"{outcome.value:8s} n={a.size:6d} mean={a.mean():7.1f} µs p99={np.percentile(a, 99):7.1f} µs"
            )
    r = np.array(reads)
    print(f"latest   n={r.size:6d} mean={r.mean():7.1f} µs p99={np.percentile(r, 99):7.1f} µs")
    print(f"final pose {loc.latest.pose}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
