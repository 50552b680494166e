"""Measurement models: Jacobians by finite differences, GNSS error models, floor-frame pose fixes,
aggregation of readings."""

import math

import numpy as np
import pytest

from maps.model import FloorFrame, GeoOrigin
from robots.localization.frames import Extrinsics, Pose2, geodetic_to_enu
from robots.localization.measurements import (
    GNSS_ERROR,
    Accel,
    GnssFix,
    GnssFixType,
    Gyro,
    Measurement,
    PoseFix,
    UwbFix,
    WheelOdometry,
    aggregate,
    residual,
)
from robots.localization.state import STATE_DIM

from .jacobians import numeric_jacobian

X0 = np.array([3.0, -4.0, 2.2, 0.8, -0.3, 0.02, 0.4, 0.05, 0.3, -0.1, 0.7])
EXT = Extrinsics(lever_x=0.4, lever_y=-0.15, mount_yaw=0.25)
MEASUREMENTS: list[Measurement] = [
    WheelOdometry("wheel", 0.0, 1.0, 0.1, period=0.02),
    Gyro("imu", 0.0, 0.1, period=0.02),
    Accel("accel", 0.0, 0.3),
    GnssFix("gnss", 0.0, 3.0, -4.0, GnssFixType.FLOAT),
    UwbFix("uwb", 0.0, 3.0, -4.0),
    PoseFix("lidar", 0.0, Pose2(3.0, -4.0, 2.4)),
]


@pytest.mark.parametrize("meas", MEASUREMENTS, ids=lambda m: type(m).__name__)
def test_measurement_jacobian_matches_finite_differences(meas: Measurement) -> None:
    """H = ∂h/∂x of every measurement model (lever arm, mounting yaw, sample period, GNSS error states)
    equals central finite differences."""
    _, jac = meas.model(X0, EXT)
    assert jac.shape[1] == STATE_DIM
    num = numeric_jacobian(lambda s: meas.model(s, EXT)[0], X0, angle_rows=meas.ANGLE_ROWS)
    np.testing.assert_allclose(jac, num, atol=1e-7)


def test_reading_over_a_period_is_the_mean_of_an_accelerating_state() -> None:
    """Wheel speed averaged over 0.1 s while accelerating at 2 m/s² reads v − a·T/2."""
    x = np.zeros(STATE_DIM)
    x[3], x[6] = 1.0, 2.0
    h, _ = WheelOdometry("w", 0.0, 0.0, 0.0, period=0.1).model(x, Extrinsics())
    assert h[0] == pytest.approx(0.9)


def test_gnss_prediction_includes_antenna_lever_arm_and_receiver_error() -> None:
    """An antenna 1 m ahead of a robot facing north is predicted 1 m north of the base, plus the
    receiver's slowly varying error (the GNSS error states)."""
    x = np.zeros(STATE_DIM)
    x[0], x[1], x[2], x[8], x[9] = 10.0, 5.0, math.pi / 2, 0.3, -0.2
    h, _ = GnssFix("gnss", 0.0, 0.0, 0.0, GnssFixType.FIXED).model(x, Extrinsics(lever_x=1.0))
    np.testing.assert_allclose(h, [10.3, 5.8], atol=1e-12)


@pytest.mark.parametrize(
    ("fix", "white", "total"),
    [(GnssFixType.FIXED, 0.02, 0.0206), (GnssFixType.FLOAT, 0.05, 0.304), (GnssFixType.SINGLE, 0.3, 2.02)],
)
def test_gnss_fix_type_sets_white_noise_and_total_error(fix: GnssFixType, white: float, total: float) -> None:
    """Each fix type has a white part (the update's R) and a total error (white and wandering parts)."""
    meas = GnssFix("g", 0.0, 0.0, 0.0, fix)
    np.testing.assert_allclose(meas.covariance(), np.eye(2) * white**2)
    assert math.sqrt(meas.total_covariance()[0, 0]) == pytest.approx(total, rel=0.01)
    assert GNSS_ERROR[fix].total_std == pytest.approx(total, rel=0.01)


def test_reported_sigma_larger_than_the_model_widens_the_white_part() -> None:
    """A receiver reporting 5 m on a float fix: the white part grows so the total is 5 m."""
    meas = GnssFix("g", 0.0, 0.0, 0.0, GnssFixType.FLOAT, std=5.0)
    wander = GNSS_ERROR[GnssFixType.FLOAT].wander.std
    assert meas.covariance()[0, 0] + wander**2 == pytest.approx(25.0)
    assert meas.total_covariance()[0, 0] == pytest.approx(25.0)
    small = GnssFix("g", 0.0, 0.0, 0.0, GnssFixType.FLOAT, std=0.01)
    np.testing.assert_allclose(small.covariance(), np.eye(2) * 0.05**2)


def test_gnss_without_fix_carries_no_observation() -> None:
    """A fix type NONE gives no observation and asking for its covariance is an error."""
    fix = GnssFix("g", 0.0, 0.0, 0.0, GnssFixType.NONE)
    assert fix.observation() is None
    with pytest.raises(ValueError, match="without a fix"):
        fix.covariance()


def test_gnss_from_geodetic_projects_into_campus_enu() -> None:
    """A geodetic fix lands where geodetic_to_enu puts it."""
    origin = GeoOrigin(31.0, 121.0, 5.0)
    fix = GnssFix.from_geodetic(origin, "g", 1.0, 31.0005, 121.0004, 6.0, GnssFixType.FLOAT)
    e, n, _ = geodetic_to_enu(origin, 31.0005, 121.0004, 6.0)
    assert (fix.east, fix.north) == pytest.approx((e, n))


def test_pose_fix_from_floor_rotates_pose_and_covariance() -> None:
    """A floor-frame scan match is expressed in ENU; its covariance is rotated by the floor's yaw."""
    frame = FloorFrame(100.0, 50.0, math.pi / 2)
    cov = np.diag([0.04, 0.01, 0.001])
    fix = PoseFix.from_floor(frame, "lidar", 0.0, Pose2(2.0, 0.0, 0.0), cov)
    assert (fix.pose.x, fix.pose.y, fix.pose.yaw) == pytest.approx((100.0, 52.0, math.pi / 2))
    np.testing.assert_allclose(fix.covariance(), np.diag([0.01, 0.04, 0.001]), atol=1e-12)


def test_pose_fix_heading_residual_wraps() -> None:
    """Observed and predicted headings on either side of ±π give a small residual, not ~2π."""
    fix = PoseFix("lidar", 0.0, Pose2(0.0, 0.0, math.pi - 0.01))
    x = np.zeros(STATE_DIM)
    x[2] = -math.pi + 0.01
    h, _ = fix.model(x, Extrinsics())
    z = fix.observation()
    assert residual(fix, z, h)[2] == pytest.approx(-0.02)


def test_aggregate_is_the_period_weighted_mean() -> None:
    """Readings over 0.02 + 0.03 s aggregate to their time-weighted mean, the sum of the periods and
    the standard deviation of the mean of independent errors."""
    a = WheelOdometry("w", 1.02, 1.0, 0.1, 0.02, 0.01, period=0.02)
    b = WheelOdometry("w", 1.05, 2.0, 0.2, 0.04, 0.01, period=0.03)
    agg = aggregate([a, b])
    assert isinstance(agg, WheelOdometry)
    assert (agg.stamp, agg.period) == (1.05, pytest.approx(0.05))
    assert agg.speed == pytest.approx((1.0 * 0.02 + 2.0 * 0.03) / 0.05)
    assert agg.yaw_rate == pytest.approx((0.1 * 0.02 + 0.2 * 0.03) / 0.05)
    assert agg.speed_std == pytest.approx(math.hypot(0.02 * 0.02, 0.04 * 0.03) / 0.05)
    gyro = aggregate([Gyro("g", 0.1, 0.5, 0.01, 0.1), Gyro("g", 0.2, 0.7, 0.01, 0.1)])
    assert isinstance(gyro, Gyro) and gyro.yaw_rate == pytest.approx(0.6)


def test_aggregate_refuses_mixed_readings() -> None:
    """Readings of two types or two sources, or without a period, cannot be aggregated."""
    with pytest.raises(ValueError, match="one type"):
        aggregate([Gyro("g", 0.1, 0.5, period=0.1), Accel("g", 0.1, 0.5, period=0.1)])
    with pytest.raises(ValueError, match="one type"):
        aggregate([Gyro("g", 0.1, 0.5, period=0.1), Gyro("h", 0.2, 0.5, period=0.1)])
    with pytest.raises(ValueError, match="period > 0"):
        aggregate([Gyro("g", 0.1, 0.5), Gyro("g", 0.2, 0.5)])


def test_invalid_noise_is_refused() -> None:
    """Non-positive σ, a negative period and a non-positive-definite pose covariance are errors."""
    with pytest.raises(ValueError, match="speed_std"):
        WheelOdometry("w", 0.0, 1.0, 0.0, speed_std=0.0)
    with pytest.raises(ValueError, match="period"):
        Gyro("g", 0.0, 0.0, period=-0.01)
    with pytest.raises(ValueError, match="positive definite"):
        PoseFix("l", 0.0, Pose2(0, 0, 0), cov=((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)))
