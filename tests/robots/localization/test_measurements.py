"""Measurement models: Jacobians by finite differences, GNSS fix types, floor-frame pose fixes."""

import math

import numpy as np
import pytest

from maps.model import FloorFrame, GeoOrigin
from robots.localization.frames import Extrinsics, Pose2, geodetic_to_enu
from robots.localization.measurements import (
    GnssFix,
    GnssFixType,
    Gyro,
    Measurement,
    PoseFix,
    UwbFix,
    WheelOdometry,
)

from .jacobians import numeric_jacobian

X0 = np.array([3.0, -4.0, 2.2, 0.8, -0.3, 0.02])
EXT = Extrinsics(lever_x=0.4, lever_y=-0.15, mount_yaw=0.25)
MEASUREMENTS: list[Measurement] = [
    WheelOdometry("wheel", 0.0, 1.0, 0.1),
    Gyro("imu", 0.0, 0.1),
    GnssFix("gnss", 0.0, 3.0, -4.0, GnssFixType.FIXED),
    UwbFix("uwb", 0.0, 3.0, -4.0),
    PoseFix("lidar", 0.0, Pose2(3.0, -4.0, 2.4)),
]


@pytest.mark.parametrize("meas", MEASUREMENTS, ids=lambda m: type(m).__name__)
def test_measurement_jacobian_matches_finite_differences(meas: Measurement) -> None:
    """H = ∂h/∂x of every measurement model (with lever arm and mounting yaw) equals finite differences."""
    _, jac = meas.model(X0, EXT)
    num = numeric_jacobian(lambda s: meas.model(s, EXT)[0], X0, angle_rows=meas.ANGLE_ROWS)
    np.testing.assert_allclose(jac, num, atol=1e-7)


def test_gnss_prediction_includes_antenna_lever_arm() -> None:
    """An antenna 1 m ahead of a robot facing north is predicted 1 m north of the base."""
    x = np.array([10.0, 5.0, math.pi / 2, 0.0, 0.0, 0.0])
    h, _ = GnssFix("gnss", 0.0, 0.0, 0.0, GnssFixType.FIXED).model(x, Extrinsics(lever_x=1.0))
    np.testing.assert_allclose(h, [10.0, 6.0], atol=1e-12)


@pytest.mark.parametrize(
    ("fix", "sigma"), [(GnssFixType.FIXED, 0.02), (GnssFixType.FLOAT, 0.3), (GnssFixType.SINGLE, 2.0)]
)
def test_gnss_fix_type_sets_covariance(fix: GnssFixType, sigma: float) -> None:
    """Fixed, float and single fixes get σ 2 cm, 30 cm and 2 m; a larger reported σ wins."""
    np.testing.assert_allclose(GnssFix("g", 0.0, 0.0, 0.0, fix).covariance(), np.eye(2) * sigma**2)
    wide = GnssFix("g", 0.0, 0.0, 0.0, fix, std=5.0).covariance()
    np.testing.assert_allclose(wide, np.eye(2) * 25.0)


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
    from robots.localization.measurements import residual

    fix = PoseFix("lidar", 0.0, Pose2(0.0, 0.0, math.pi - 0.01))
    x = np.array([0.0, 0.0, -math.pi + 0.01, 0.0, 0.0, 0.0])
    h, _ = fix.model(x, Extrinsics())
    y = residual(fix, fix.observation(), h)
    assert y[2] == pytest.approx(-0.02)


def test_invalid_noise_is_refused() -> None:
    """Non-positive σ and a non-positive-definite pose covariance are configuration errors."""
    with pytest.raises(ValueError, match="speed_std"):
        WheelOdometry("w", 0.0, 1.0, 0.0, speed_std=0.0)
    with pytest.raises(ValueError, match="positive definite"):
        PoseFix("l", 0.0, Pose2(0, 0, 0), cov=((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)))
