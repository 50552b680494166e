"""The localizer: fusion on a delayed horizon, late-measurement replay, duplicates, clock offsets, floors,
GNSS recovery, the current (dead-reckoned) estimate."""

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
    Accel,
    FloorChange,
    GnssFix,
    GnssFixType,
    Gyro,
    Measurement,
    PoseFix,
    WheelOdometry,
)
from robots.localization.state import BG, DW, V, W

SOURCES = ("wheel", "imu", "accel", "gnss", "lidar")


def make_localizer(delay: float = 0.25, **sensors: SensorConfig) -> Localizer:
    """A localizer at the origin facing east with wheel, imu and accel (ungated), gnss and lidar sensors."""
    ungated = SensorConfig(gate=GateConfig(enabled=False))
    base = {name: ungated if name in ("wheel", "imu", "accel") else SensorConfig() for name in SOURCES}
    base.update(sensors)
    config = LocalizerConfig(base, fusion_delay=delay)
    return Localizer(config, initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (1.0, 1.0, 0.1)))


def drive(n: int, speed: float = 1.0, rate: float = 0.0, period: float = 0.02) -> list[Measurement]:
    """Wheel, gyro and accelerometer readings (means over 20 ms) of a robot driving at ``speed``."""
    out: list[Measurement] = []
    for k in range(1, n + 1):
        t = round(k * 0.02, 9)
        out.append(WheelOdometry("wheel", t, speed, rate, 0.02, 0.02, period))
        out.append(Gyro("imu", t, rate, 0.005, period))
        out.append(Accel("accel", t, 0.0, 0.05, period))
    return out


def gnss(t: float, east: float, north: float, fix: GnssFixType = GnssFixType.FIXED) -> GnssFix:
    """A GNSS fix at ``t``."""
    return GnssFix("gnss", t, east, north, fix)


def feed(loc: Localizer, stream: list[Measurement]) -> list[Outcome]:
    """Process ``stream`` in order; the outcomes."""
    return [loc.process(m) for m in stream]


def test_odometry_dead_reckons_forward() -> None:
    """Driving east at 1 m/s for 1 s (from rest, uncertain speed) puts the estimate 1 m east."""
    loc = make_localizer()
    assert set(feed(loc, drive(50))) == {Outcome.APPLIED}
    assert loc.latest.x[V] == pytest.approx(1.0, abs=0.01)
    assert loc.latest.pose.x == pytest.approx(1.0, abs=0.05)
    assert loc.latest.stamp == pytest.approx(1.0)
    assert loc.filtered.stamp <= 1.0 - loc.config.fusion_delay


@pytest.mark.parametrize(("lateness", "outcome"), [(0.2, Outcome.APPLIED), (0.4, Outcome.REPLAYED)])
def test_late_fix_gives_same_estimate_as_on_time_fix(lateness: float, outcome: Outcome) -> None:
    """A fix stamped 0.5 s arriving 200 ms late waits in the buffer in its place; one 400 ms late (behind
    the 250 ms horizon) is replayed. Both give the estimate of the same fix arriving on time."""
    fix = gnss(0.5, 0.52, 0.03)
    stream = drive(60)
    on_time, late = make_localizer(), make_localizer()
    feed(on_time, [*[m for m in stream if m.stamp <= 0.5], fix, *[m for m in stream if m.stamp > 0.5]])
    got = None
    for m in stream:
        late.process(m)
        if m.stamp == pytest.approx(0.5 + lateness) and isinstance(m, Accel):
            got = late.process(fix)
    assert got is outcome
    for a, b in ((late.latest, on_time.latest), (late.filtered, on_time.filtered)):
        np.testing.assert_allclose(a.x, b.x, atol=1e-9)
        np.testing.assert_allclose(a.p, b.p, atol=1e-12)


def test_late_fix_is_not_fused_as_current() -> None:
    """The replayed estimate differs from applying the late fix as if it were current."""
    fix = gnss(0.5, 0.5, 0.3)
    late, naive = make_localizer(delay=0.0), make_localizer(delay=0.0)
    feed(late, drive(40))
    feed(naive, drive(40))
    late.process(fix)
    naive.process(gnss(0.8 + 1e-6, 0.5, 0.3))
    late.flush()
    naive.flush()
    assert abs(late.latest.pose.x - naive.latest.pose.x) > 0.1


def test_too_late_and_duplicate_measurements_are_refused() -> None:
    """A fix older than the 500 ms window is refused; the same source and stamp twice is a duplicate."""
    loc = make_localizer()
    feed(loc, drive(50))
    before = loc.latest.x.copy()
    assert loc.process(gnss(0.4, 0.0, 0.0)) is Outcome.TOO_LATE
    assert loc.process(WheelOdometry("wheel", 0.9, 1.0, 0.0, period=0.02)) is Outcome.DUPLICATE
    assert loc.process(WheelOdometry("wheel", 0.6, 1.0, 0.0, period=0.02)) is Outcome.DUPLICATE
    np.testing.assert_array_equal(loc.latest.x, before)


def test_out_of_order_stream_equals_sorted_stream() -> None:
    """Shuffled arrival within the window gives the same estimate as time order."""
    stream = [*drive(20), gnss(0.11, 0.1, 0.05), gnss(0.25, 0.25, 0.05)]
    ordered, shuffled = make_localizer(), make_localizer()
    feed(ordered, sorted(stream, key=lambda m: m.stamp))
    rng = np.random.default_rng(3)
    for i in rng.permutation(len(stream)):
        assert shuffled.process(stream[int(i)]) in (Outcome.APPLIED, Outcome.REPLAYED)
    ordered.flush()
    shuffled.flush()
    np.testing.assert_allclose(shuffled.latest.x, ordered.latest.x, atol=1e-9)


def test_clock_offset_shifts_measurement_time() -> None:
    """A sensor whose clock runs 0.2 s behind is applied 0.2 s later in filter time."""
    loc = make_localizer(delay=0.0, gnss=SensorConfig(clock_offset=0.2))
    feed(loc, drive(10))
    loc.process(gnss(0.1, 0.3, 0.0))
    assert loc.newest == pytest.approx(0.3)
    assert loc.filtered.stamp == pytest.approx(0.3)


def test_gnss_lever_arm_is_compensated() -> None:
    """With the antenna 0.5 m ahead, fixes at (10.5, 0) put the base at (10, 0)."""
    loc = Localizer(
        LocalizerConfig({"gnss": SensorConfig(Extrinsics(lever_x=0.5))}),
        initial_estimate(0.0, Pose2(10.0, 0.0, 0.0), (1.0, 1.0, 0.001)),
    )
    feed(loc, [gnss(k * 0.1, 10.5, 0.0) for k in range(1, 20)])
    assert (loc.latest.pose.x, loc.latest.pose.y) == pytest.approx((10.0, 0.0), abs=0.01)


def test_floor_change_is_carried_and_replayed() -> None:
    """A lift exit sets the floor; a late pose fix before it does not undo the floor change."""
    loc = make_localizer(lift=SensorConfig())
    feed(loc, drive(30))
    loc.process(FloorChange("lift", 0.41, "B1-F6"))
    assert loc.latest.floor == "B1-F6"  # the current estimate knows at once
    feed(loc, drive(40)[90:])
    assert loc.process(PoseFix("lidar", 0.35, Pose2(0.35, 0.0, 0.0))) is Outcome.REPLAYED
    assert loc.latest.floor == "B1-F6"
    assert loc.filtered.floor == "B1-F6"


def test_outlier_rejected_then_consistent_gnss_recovers() -> None:
    """A 30 m jump is rejected at first; GNSS that keeps agreeing with itself is recovered, not locked out."""
    gate = GateConfig(recover_after=5)
    loc = make_localizer(delay=0.0, gnss=SensorConfig(gate=gate))
    feed(loc, [gnss(k * 0.1, 0.0, 0.0) for k in range(1, 11)])
    decisions = []
    for k in range(11, 30):
        loc.process(gnss(k * 0.1, 30.0, 0.0))
        decisions.append(loc.latest.decision)
    assert decisions[0] is GateDecision.REJECT
    assert GateDecision.RECOVER in decisions
    assert loc.latest.pose.x == pytest.approx(30.0, abs=0.1)


def test_gnss_fix_type_change_resets_the_receiver_error() -> None:
    """After RTK fixed, float fixes 0.4 m off (their common wander) move the position only a little:
    the GNSS error states take most of it."""
    loc = make_localizer(delay=0.0)
    feed(loc, [gnss(k * 0.1, 0.0, 0.0) for k in range(1, 21)])
    feed(loc, [gnss(k * 0.1, 0.4, 0.0, GnssFixType.FLOAT) for k in range(21, 41)])
    est = loc.latest
    assert est.gnss_mode is GnssFixType.FLOAT
    assert est.pose.x < 0.15
    assert est.x[8] > 0.25


def test_gnss_without_fix_leaves_position_unchanged() -> None:
    """A fix of type NONE only advances time."""
    loc = make_localizer(delay=0.0)
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
        t = round(k * 0.02, 9)
        loc.process(WheelOdometry("wheel", t, 1.0, 0.0, 0.02, 0.01, 0.02))
        loc.process(Gyro("imu", t, 0.02, 0.005, 0.02))
    assert loc.filtered.x[BG] == pytest.approx(0.02, abs=0.002)
    assert loc.filtered.x[W] == pytest.approx(0.0, abs=0.002)
    assert loc.latest.x[W] == pytest.approx(0.0, abs=0.002)  # the gyro, bias-corrected


def test_turn_rate_ramp_is_followed_without_lag() -> None:
    """Readings that describe their sample period: a turn-in at 2 rad/s² leaves no heading lag."""
    loc = make_localizer()
    stream: list[Measurement] = []
    for k in range(1, 151):
        t = round(k * 0.02, 9)
        rate = min(0.5, 2.0 * t)
        stream += [WheelOdometry("wheel", t, 1.0, rate, 0.02, 0.02, 0.02), Gyro("imu", t, rate, 0.005, 0.02)]
    feed(loc, stream)
    true_yaw = sum(min(0.5, 2.0 * round(k * 0.02, 9)) * 0.02 for k in range(1, 151))
    assert loc.latest.pose.yaw == pytest.approx(true_yaw, abs=0.003)
    assert abs(loc.filtered.x[DW]) < 0.5


def test_estimate_at_predicts_forward_without_changing_state() -> None:
    """estimate_at extrapolates the current estimate and leaves the localizer untouched."""
    loc = make_localizer()
    feed(loc, drive(50))
    ahead = loc.estimate_at(1.5)
    assert ahead.pose.x == pytest.approx(loc.latest.pose.x + 0.5, abs=0.01)
    assert np.trace(ahead.p) > np.trace(loc.latest.p)
    assert loc.latest.stamp == pytest.approx(1.0)


def test_current_estimate_covariance_covers_the_dead_reckoning() -> None:
    """The current estimate's position variance is at least the fused one's; after flush they agree."""
    loc = make_localizer()
    feed(loc, [*drive(50), gnss(0.5, 0.5, 0.0)])
    assert loc.latest.p[0, 0] >= loc.filtered.p[0, 0]
    loc.flush()
    assert loc.latest is loc.filtered


def test_last_used_records_accepted_sources() -> None:
    """Each source's last accepted filter time is kept (the health's active sources)."""
    loc = make_localizer(delay=0.0)
    feed(loc, [*drive(10), gnss(0.2, 0.2, 0.0)])
    loc.flush()
    assert set(loc.last_used) == {"wheel", "imu", "accel", "gnss"}
    assert loc.last_used["gnss"] == pytest.approx(0.2)


def test_estimates_are_read_only() -> None:
    """The history cannot be corrupted by editing a returned estimate in place."""
    loc = make_localizer()
    feed(loc, drive(30))
    with pytest.raises(ValueError, match="read-only"):
        loc.latest.x[0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        loc.filtered.p[0, 0] = 5.0


def test_invalid_timing_is_refused() -> None:
    """The fusion delay must fit in the replay window and the fusion step must be positive."""
    with pytest.raises(ValueError, match="fusion_delay"):
        LocalizerConfig({}, max_lag=0.2, fusion_delay=0.3)
    with pytest.raises(ValueError, match="fusion_step"):
        LocalizerConfig({}, fusion_step=0.0)
