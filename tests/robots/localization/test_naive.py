"""The naive baseline: late GNSS fused as current, no gating, odometry + GNSS only; worse indoors."""

import math

import numpy as np
import pytest

from robots.localization.frames import Pose2
from robots.localization.localizer import Localizer, LocalizerConfig, SensorConfig, initial_estimate
from robots.localization.measurements import FloorChange, GnssFix, GnssFixType, Gyro, UwbFix, WheelOdometry
from robots.localization.naive import NaiveConfig, NaiveFilter
from sim.sensors import Env, Regime, default_extrinsics, simulate, straight, trajectory, turn, wait


def naive() -> NaiveFilter:
    """A naive filter at the origin facing east."""
    return NaiveFilter(NaiveConfig(), initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (1.0, 1.0, 0.1)))


def drive(f: NaiveFilter, n: int) -> None:
    """Wheel odometry driving east at 1 m/s for ``n`` 20 ms steps."""
    for k in range(1, n + 1):
        f.process(WheelOdometry("wheel", k * 0.02, 1.0, 0.0))


def test_late_fix_is_fused_at_the_current_time() -> None:
    """A fix stamped 0.5 s arriving at 1.0 s is applied at 1.0 s, pulling the estimate back toward it."""
    f = naive()
    drive(f, 50)
    ahead = f.latest.pose.x
    assert f.process(GnssFix("gnss", 0.5, 0.5, 0.0, GnssFixType.FIXED))
    assert f.latest.stamp == pytest.approx(1.0)
    assert f.latest.pose.x < ahead - 0.2


def test_no_gating_outlier_is_accepted() -> None:
    """A 50 m outlier is fused: the estimate moves metres (the Localizer's gate would reject it)."""
    f = naive()
    drive(f, 50)
    before = f.latest.pose
    f.process(GnssFix("gnss", 1.0, before.x + 50.0, before.y, GnssFixType.SINGLE))
    assert f.latest.pose.x - before.x > 1.0


def test_other_sources_are_ignored() -> None:
    """Gyro, UWB, floor changes and fix-less GNSS are not used."""
    f = naive()
    drive(f, 5)
    before = f.latest
    for m in (
        Gyro("imu", 0.2, 0.3),
        UwbFix("uwb", 0.2, 5.0, 5.0),
        FloorChange("floor", 0.2, "6"),
        GnssFix("gnss", 0.2, 0.0, 0.0, GnssFixType.NONE),
    ):
        assert not f.process(m)
    assert f.latest is before


def test_naive_is_much_worse_indoors_than_localizer() -> None:
    """After a GNSS-fixed start, 60 s indoors with turns: the Localizer (lidar fixes) is ≥ 5× better."""
    sky = Env(Regime.OPEN_SKY, None, GnssFixType.FIXED)
    hall = Env(Regime.INDOOR, "1", lidar=True)
    legs = [wait(1.0, sky), straight(15.0, 1.5, sky)]
    for _ in range(4):
        legs += [straight(10.0, 1.0, hall), turn(math.pi / 2, 0.5, 2.0, hall)]
    traj = trajectory(legs, Pose2(0.0, 0.0, 0.0))
    ext = default_extrinsics()
    init = initial_estimate(0.0, traj.pose(0), (0.5, 0.5, 0.05))
    loc = Localizer(LocalizerConfig({n: SensorConfig(e) for n, e in ext.items()}), init)
    base = NaiveFilter(NaiveConfig(extrinsics=ext), init)
    ours, theirs, stamps = [], [], []
    for a in simulate(traj, 11):
        loc.process(a.meas)
        base.process(a.meas)
        if isinstance(a.meas, WheelOdometry) and a.regime is Regime.INDOOR:
            stamps.append(a.meas.stamp)
            ours.append(loc.latest.x[:2].copy())
            theirs.append(base.latest.x[:2].copy())
    truth = traj.position_at(np.array(stamps))
    rmse = [float(np.sqrt(np.mean(np.sum((np.array(e) - truth) ** 2, axis=1)))) for e in (ours, theirs)]
    assert rmse[1] >= 5.0 * rmse[0]
