"""The localizer: fusion, late-measurement replay, duplicates, clock offsets, floors, GNSS recovery."""

import math

import numpy as np
import pytest

from robots.localization.frames import Extrinsics, Pose2
from robots.localization.gating import GateConfig, GateDecision
from robots.localization.localizer import (
    Localizer,
    LocalizerConfig,
    Outcome,
    SensorConfig,
    initial_estimate,
)
from robots.localization.measurements import (
    FloorChange,
    GnssFix,
    GnssFixType,
    Gyro,
    Measurement,
    PoseFix,
    WheelOdometry,
)


def make_localizer(**sensors: SensorConfig) -> Localizer:
    """A localizer at the origin facing east with wheel, imu, gnss and lidar sensors."""
    base = {"wheel": SensorConfig(), "imu": SensorConfig(), "gnss": SensorConfig(), "lidar": SensorConfig()}
    base.update(sensors)
    return Localizer(LocalizerConfig(base), initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (1.0, 1.0, 0.1)))


def drive(n: int, dt: float = 0.02, speed: float = 1.0) -> list[Measurement]:
    """Wheel and gyro measurements of a robot driving east at ``speed`` for ``n`` steps."""
    out: list[Measurement] = []
    for k in range(1, n + 1):
        out.append(WheelOdometry("wheel", k * dt, speed, 0.0))
        out.append(Gyro("imu", k * dt + 0.001, 0.0))
    return out


def gnss(t: float, east: float, north: float, fix: GnssFixType = GnssFixType.FIXED) -> GnssFix:
    """A GNSS fix at ``t``."""
    return GnssFix("gnss", t, east, north, fix)


def test_odometry_dead_reckons_forward() -> None:
    """Driving east at 1 m/s for 1 s puts the estimate about 1 m east (the prior starts at rest)."""
    loc = make_localizer()
    for m in drive(50):
        assert loc.process(m) is Outcome.APPLIED
    assert loc.latest.x[3] == pytest.approx(1.0, abs=0.01)
    assert loc.latest.pose.x == pytest.approx(1.0, abs=0.1)


def test_late_fix_gives_same_estimate_as_on_time_fix() -> None:
    """Replay: a GNSS fix arriving 300 ms late is applied at its time, giving the on-time estimate."""
    fix = gnss(0.5, 0.8, 0.3)
    on_time, late = make_localizer(), make_localizer()
    stream = drive(50)
    for m in [*[m for m in stream if m.stamp <= 0.5], fix, *[m for m in stream if m.stamp > 0.5]]:
        on_time.process(m)
    outcome = None
    for m in stream:
        late.process(m)
        if m.stamp == pytest.approx(0.8):
            outcome = late.process(fix)
    assert outcome is Outcome.REPLAYED
    np.testing.assert_allclose(late.latest.x, on_time.latest.x, atol=1e-9)
    np.testing.assert_allclose(late.latest.p, on_time.latest.p, atol=1e-12)
    assert late.latest.pose.y == pytest.approx(on_time.latest.pose.y)


def test_late_fix_is_not_fused_as_current() -> None:
    """The replayed estimate differs from applying the late fix as if it were current."""
    fix = gnss(0.5, 0.8, 0.3)
    late = make_localizer()
    for m in drive(40):
        late.process(m)
    late.process(fix)
    naive = make_localizer()
    for m in drive(40):
        naive.process(m)
    naive.process(gnss(0.8 + 1e-6, 0.8, 0.3))
    assert abs(late.latest.pose.x - naive.latest.pose.x) > 0.1


def test_too_late_and_duplicate_measurements_are_refused() -> None:
    """A fix older than the 500 ms window is refused; the same source and stamp twice is a duplicate."""
    loc = make_localizer()
    for m in drive(50):
        loc.process(m)
    before = loc.latest.x.copy()
    assert loc.process(gnss(0.4, 0.0, 0.0)) is Outcome.TOO_LATE
    assert loc.process(WheelOdometry("wheel", 0.9, 1.0, 0.0)) is Outcome.DUPLICATE
    np.testing.assert_array_equal(loc.latest.x, before)


def test_out_of_order_stream_equals_sorted_stream() -> None:
    """Shuffled arrival within the window gives the same estimate as time order."""
    stream = [*drive(20), gnss(0.11, 0.1, 0.05), gnss(0.25, 0.25, 0.05)]
    ordered, shuffled = make_localizer(), make_localizer()
    for m in sorted(stream, key=lambda m: m.stamp):
        ordered.process(m)
    rng = np.random.default_rng(3)
    for i in rng.permutation(len(stream)):
        assert shuffled.process(stream[int(i)]) in (Outcome.APPLIED, Outcome.REPLAYED)
    np.testing.assert_allclose(shuffled.latest.x, ordered.latest.x, atol=1e-9)


def test_clock_offset_shifts_measurement_time() -> None:
    """A sensor whose clock runs 0.2 s behind is applied 0.2 s later in filter time."""
    loc = make_localizer(gnss=SensorConfig(clock_offset=0.2))
    for m in drive(10):
        loc.process(m)
    loc.process(gnss(0.1, 0.3, 0.0))
    assert loc.latest.stamp == pytest.approx(0.3)


def test_gnss_lever_arm_is_compensated() -> None:
    """With the antenna 0.5 m ahead, a fix at (10.5, 0) puts the base at (10, 0)."""
    loc = Localizer(
        LocalizerConfig({"gnss": SensorConfig(Extrinsics(lever_x=0.5))}),
        initial_estimate(0.0, Pose2(10.0, 0.0, 0.0), (1.0, 1.0, 0.001)),
    )
    for k in range(1, 20):
        loc.process(gnss(k * 0.1, 10.5, 0.0))
    assert (loc.latest.pose.x, loc.latest.pose.y) == pytest.approx((10.0, 0.0), abs=0.01)


def test_floor_change_is_carried_and_replayed() -> None:
    """A lift exit sets the floor; a late pose fix before it does not undo the floor change."""
    loc = make_localizer(lift=SensorConfig())
    for m in drive(20):
        loc.process(m)
    loc.process(FloorChange("lift", 0.41, "B1-F6"))
    loc.process(WheelOdometry("wheel", 0.5, 1.0, 0.0))
    assert loc.process(PoseFix("lidar", 0.3, Pose2(0.3, 0.0, 0.0))) is Outcome.REPLAYED
    assert loc.latest.floor == "B1-F6"


def test_outlier_rejected_then_consistent_gnss_recovers() -> None:
    """A 30 m jump is rejected at first; GNSS that keeps agreeing with itself is recovered, not locked out."""
    gate = GateConfig(recover_after=5)
    loc = make_localizer(gnss=SensorConfig(gate=gate))
    for k in range(1, 11):
        loc.process(gnss(k * 0.1, 0.0, 0.0))
    decisions = []
    for k in range(11, 30):
        loc.process(gnss(k * 0.1, 30.0, 0.0))
        decisions.append(loc.latest.decision)
    assert decisions[0] is GateDecision.REJECT
    assert GateDecision.RECOVER in decisions
    assert loc.latest.pose.x == pytest.approx(30.0, abs=0.1)


def test_gnss_without_fix_leaves_position_unchanged() -> None:
    """A fix of type NONE only advances time."""
    loc = make_localizer()
    loc.process(gnss(0.1, 100.0, 100.0, GnssFixType.NONE))
    assert math.hypot(loc.latest.pose.x, loc.latest.pose.y) < 1e-9
    assert loc.latest.stamp == pytest.approx(0.1)


def test_unknown_source_is_an_error() -> None:
    """A measurement from an unconfigured sensor is refused with a clear error."""
    with pytest.raises(ValueError, match="unknown sensor source 'sonar'"):
        make_localizer().process(WheelOdometry("sonar", 0.1, 0.0, 0.0))


def test_gyro_bias_is_estimated_from_wheel_odometry() -> None:
    """A gyro reading 0.02 rad/s too high while the wheels say straight: the bias state converges to it."""
    loc = make_localizer()
    for k in range(1, 500):
        loc.process(WheelOdometry("wheel", k * 0.02, 1.0, 0.0, yaw_rate_std=0.01))
        loc.process(Gyro("imu", k * 0.02 + 0.001, 0.02))
    assert loc.latest.x[5] == pytest.approx(0.02, abs=0.002)
    assert loc.latest.x[4] == pytest.approx(0.0, abs=0.002)


def test_estimate_at_predicts_forward_without_changing_state() -> None:
    """estimate_at extrapolates the newest estimate and leaves the localizer untouched."""
    loc = make_localizer()
    for m in drive(50):
        loc.process(m)
    ahead = loc.estimate_at(1.5)
    assert ahead.pose.x == pytest.approx(loc.latest.pose.x + 0.5, abs=0.01)
    assert np.trace(ahead.p) > np.trace(loc.latest.p)
    assert loc.latest.stamp == pytest.approx(1.001)


def test_estimates_are_read_only() -> None:
    """The history cannot be corrupted by editing a returned estimate in place."""
    loc = make_localizer()
    loc.process(WheelOdometry("wheel", 0.1, 1.0, 0.0))
    with pytest.raises(ValueError, match="read-only"):
        loc.latest.x[0] = 5.0
