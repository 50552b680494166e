"""The fusion schedule (cells, closing fixes), the odometry-driven step and dead reckoning."""

import math

import numpy as np
import pytest

from robots.localization.frames import Pose2
from robots.localization.fusion import (
    Estimate,
    LocalizerConfig,
    SensorConfig,
    Timed,
    aggregatable,
    dead_reckon,
    fuse_pending,
    fuse_step,
    step_length,
)
from robots.localization.gating import GateConfig
from robots.localization.localizer import initial_estimate
from robots.localization.measurements import GnssFix, GnssFixType, Gyro, WheelOdometry
from robots.localization.state import BG, YAW, X, Y

UNGATED = SensorConfig(gate=GateConfig(enabled=False))
CONFIG = LocalizerConfig({"wheel": UNGATED, "imu": UNGATED, "gnss": SensorConfig()})


def start() -> Estimate:
    """At the origin facing east, well known."""
    return initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (0.01, 0.01, 0.001))


def readings(n: int, speed: float = 1.0, rate: float = 0.0, t0: float = 0.0) -> list[Timed]:
    """Wheel and gyro readings (20 ms means) every 20 ms after ``t0``."""
    out: list[Timed] = []
    for k in range(1, n + 1):
        t = round(t0 + k * 0.02, 9)
        out.append((t, WheelOdometry("wheel", t, speed, rate, 0.02, 0.02, 0.02)))
        out.append((t, Gyro("imu", t, rate, 0.005, 0.02)))
    return out


def fix(t: float, east: float) -> Timed:
    """An RTK fixed GNSS fix."""
    return t, GnssFix("gnss", t, east, 0.0, GnssFixType.FIXED)


def cut(pending: list[Timed], horizon: float) -> list[tuple[int, float]]:
    """The successive step lengths and ends of ``pending`` that the horizon allows."""
    stamps = [t for t, _ in pending]
    closes = [not aggregatable(m) for _, m in pending]
    out, start = [], 0
    while start < len(pending):
        n, end = step_length(stamps, closes, start, 0.1)
        if end > horizon:
            break
        out.append((n, end))
        start += n
    return out


def test_steps_are_cells_closed_early_by_fixes() -> None:
    """Readings are cut into 0.1 s cells; a fix closes its cell's step, the rest of the cell is the next."""
    pending = sorted([*readings(10), fix(0.14, 0.14)], key=lambda tm: tm[0])
    steps = cut(pending, 1.0)
    assert [n for n, _ in steps] == [10, 5, 6]  # (0, 0.1]; (0.1, 0.14] + fix; (0.14, 0.2]
    assert [end for _, end in steps] == pytest.approx([0.1, 0.14, 0.2])
    assert cut(pending, 0.15) == steps[:2]  # the last cell waits for the horizon to pass its end


def test_reading_without_period_is_fused_on_its_own() -> None:
    """An instantaneous reading (period 0) cannot be aggregated: it closes a step like a fix."""
    assert not aggregatable(WheelOdometry("wheel", 0.1, 1.0, 0.0))
    assert aggregatable(WheelOdometry("wheel", 0.1, 1.0, 0.0, period=0.02))
    assert not aggregatable(fix(0.1, 0.0)[1])


def test_odometry_step_moves_the_pose_by_the_measured_distance_and_turn() -> None:
    """A step of five readings at 1 m/s and 0.5 rad/s moves the pose 0.1 m along an arc and turns it by
    0.05 rad, whatever the (still unknown) speed and rate states were."""
    step = fuse_step(CONFIG, start(), readings(5, 1.0, 0.5))
    x = step.after.x
    assert step.motion is not None and step.motion.gyro
    assert x[YAW] == pytest.approx(0.05, abs=1e-3)
    assert math.hypot(x[X], x[Y]) == pytest.approx(0.1, abs=1e-3)
    assert x[Y] == pytest.approx(0.1 * math.sin(0.025), abs=1e-4)


def test_gyro_bias_is_learnt_from_the_wheels_while_driving() -> None:
    """Driving straight (wheels: no turn) with a gyro reading 0.01 rad/s: the bias state finds it."""
    est = start()
    pending: list[Timed] = []
    for k in range(1, 751):
        t = round(k * 0.02, 9)
        pending += [
            (t, WheelOdometry("wheel", t, 1.0, 0.0, 0.02, 0.01, 0.02)),
            (t, Gyro("imu", t, 0.01, 0.005, 0.02)),
        ]
    stamps = [t for t, _ in pending]
    steps, used = fuse_pending(CONFIG, est, pending, stamps, [False] * len(pending), math.inf)
    assert used == len(pending)
    assert steps[-1].after.x[BG] == pytest.approx(0.01, abs=0.002)


def test_dead_reckoning_follows_the_readings_and_grows_the_covariance() -> None:
    """Dead reckoning 1 s of straight readings moves 1 m east. The variance grows along the travel by the
    speed readings' noise (50 × (0.02 m/s × 20 ms)²) and across it by the heading and bias uncertainty
    carried over the metre travelled."""
    e = start()
    out = dead_reckon(CONFIG, e, readings(50), 1.0)
    assert out.stamp == 1.0
    assert out.x[X] == pytest.approx(1.0, abs=1e-9)
    assert out.p[X, X] - e.p[X, X] == pytest.approx(50 * (0.02 * 0.02) ** 2, rel=0.2)
    across = e.p[YAW, YAW] + 0.25 * e.p[BG, BG]  # heading lever 1 m, bias over 1 s at mid-course
    assert out.p[Y, Y] - e.p[Y, Y] == pytest.approx(across, rel=0.2)


def test_dead_reckoning_without_odometry_is_the_model_prediction() -> None:
    """With nothing but a fix in the buffer the current estimate is the process model's prediction."""
    e = start()
    out = dead_reckon(CONFIG, e, [fix(0.5, 3.0)], 0.5)
    assert out.x[X] == pytest.approx(0.0)
    assert out.p[X, X] >= e.p[X, X]


def test_fuse_pending_waits_for_the_horizon() -> None:
    """Only the steps that end at or before the horizon are fused."""
    pending: list[Timed] = readings(10)
    stamps = [t for t, _ in pending]
    closes = [False] * len(pending)
    steps, used = fuse_pending(CONFIG, start(), pending, stamps, closes, 0.15)
    assert (len(steps), used) == (1, 10)
    steps, used = fuse_pending(CONFIG, start(), pending, stamps, closes, 0.05)
    assert (steps, used) == ([], 0)


def test_fixes_are_gated_and_their_innovations_kept() -> None:
    """A step keeps the NIS of what it fused; a fix 50 m off is rejected and not counted as used."""
    pending: list[Timed] = [*readings(5), fix(0.1, 50.0)]
    step = fuse_step(CONFIG, start(), pending)
    sources = [src for src, _, _ in step.innovations]
    assert "gnss" in sources
    assert ("gnss", pytest.approx(0.1)) not in step.accepted
    assert step.after.x[X] == pytest.approx(0.1, abs=0.01)


def test_estimate_arrays_are_frozen() -> None:
    """Estimates freeze their arrays."""
    e = start()
    with pytest.raises(ValueError, match="read-only"):
        e.x[0] = 1.0
    assert np.all(np.diag(e.p) > 0)
