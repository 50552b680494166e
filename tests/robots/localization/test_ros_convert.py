"""The ROS node's message conversions: NavSatFix fix types, IMU fields, floor-frame indoor fixes, times."""

import math

import numpy as np
import pytest
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, NavSatFix, NavSatStatus

from maps.model import FloorFrame, GeoOrigin
from robots.localization.frames import enu_to_geodetic
from robots.localization.measurements import Accel, GnssFixType, Gyro, PoseFix, UwbFix
from robots.localization.ros_node import (
    SourceNames,
    fix_type,
    gnss_fix,
    imu_readings,
    indoor_fix,
    pose_covariance,
    seconds,
    to_time,
    wheel_reading,
)
from robots.rosutil import yaw_to_quaternion

ORIGIN = GeoOrigin(31.2304, 121.4737, 12.0)


def navsat(status: int, sigma: float | None, east: float = 10.0, north: float = -4.0) -> NavSatFix:
    """A NavSatFix at ENU (east, north) with a status and (optionally) a diagonal covariance."""
    msg = NavSatFix()
    msg.header.stamp = to_time(12.5)
    msg.latitude, msg.longitude, msg.altitude = enu_to_geodetic(ORIGIN, east, north, 0.0)
    msg.status.status = status
    if sigma is not None:
        msg.position_covariance = [sigma**2, 0.0, 0.0, 0.0, sigma**2, 0.0, 0.0, 0.0, sigma**2]
        msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
    return msg


@pytest.mark.parametrize(
    ("status", "sigma", "expected"),
    [
        (NavSatStatus.STATUS_NO_FIX, 1.0, GnssFixType.NONE),
        (NavSatStatus.STATUS_FIX, 2.0, GnssFixType.SINGLE),
        (NavSatStatus.STATUS_SBAS_FIX, 1.0, GnssFixType.SINGLE),
        (NavSatStatus.STATUS_GBAS_FIX, 0.02, GnssFixType.FIXED),
        (NavSatStatus.STATUS_GBAS_FIX, 0.3, GnssFixType.FLOAT),
        (NavSatStatus.STATUS_GBAS_FIX, None, GnssFixType.FLOAT),
    ],
)
def test_navsat_status_and_sigma_give_the_fix_type(
    status: int, sigma: float | None, expected: GnssFixType
) -> None:
    """No fix → none, plain or SBAS → single, GBAS (RTK) → fixed at centimetres, else float."""
    kind, std = fix_type(navsat(status, sigma), rtk_fixed_std=0.05)
    assert kind is expected
    assert std == (pytest.approx(sigma) if sigma is not None else None)


def test_navsat_is_projected_into_campus_enu() -> None:
    """The fix's latitude and longitude land at their campus ENU point, with its stamp and σ."""
    fix = gnss_fix(navsat(NavSatStatus.STATUS_GBAS_FIX, 0.02), ORIGIN, "gnss", 0.05)
    assert (fix.east, fix.north) == (pytest.approx(10.0, abs=1e-6), pytest.approx(-4.0, abs=1e-6))
    assert (fix.stamp, fix.std, fix.fix) == (12.5, pytest.approx(0.02), GnssFixType.FIXED)
    nan = navsat(NavSatStatus.STATUS_FIX, 1.0)
    nan.latitude = math.nan
    assert gnss_fix(nan, ORIGIN, "gnss", 0.05).observation() is None


def test_wheel_odometry_and_imu_readings() -> None:
    """Odometry twist → speed and yaw rate with σ from the covariance; IMU z rate and x acceleration,
    a field marked unknown (-1) is skipped."""
    odo = Odometry()
    odo.header.stamp = to_time(3.25)
    odo.twist.twist.linear.x, odo.twist.twist.angular.z = 1.2, 0.1
    cov = [0.0] * 36
    cov[0], cov[35] = 0.0004, 0.0009
    odo.twist.covariance = cov
    reading = wheel_reading(odo, "wheel", 0.02)
    assert (reading.stamp, reading.speed, reading.yaw_rate, reading.period) == (3.25, 1.2, 0.1, 0.02)
    assert (reading.speed_std, reading.yaw_rate_std) == (pytest.approx(0.02), pytest.approx(0.03))
    imu = Imu()
    imu.header.stamp = to_time(3.25)
    imu.angular_velocity.z, imu.linear_acceleration.x = 0.2, -0.5
    imu.angular_velocity_covariance[8] = 0.0001
    readings = imu_readings(imu, "imu", "accel", 0.01)
    assert [type(r) for r in readings] == [Gyro, Accel]
    assert readings[0].std == pytest.approx(0.01) and readings[1].forward == -0.5
    imu.linear_acceleration_covariance[0] = -1.0
    assert [type(r) for r in imu_readings(imu, "imu", "accel", 0.01)] == [Gyro]


def test_indoor_fix_in_a_floor_frame_is_expressed_in_enu() -> None:
    """A scan match at (2, 0) in a floor frame turned 90° at (100, 50) is at (100, 52) in ENU; with an
    unknown yaw (huge variance) the same message is a position-only (UWB) fix."""
    msg = PoseWithCovarianceStamped()
    msg.header.stamp = to_time(7.0)
    msg.pose.pose.position.x = 2.0
    msg.pose.pose.orientation = yaw_to_quaternion(0.1)
    cov = [0.0] * 36
    cov[0], cov[7], cov[35] = 0.0009, 0.0004, 0.0001
    msg.pose.covariance = cov
    frame = FloorFrame(100.0, 50.0, math.pi / 2)
    fix = indoor_fix(msg, frame, SourceNames(), 1.0)
    assert isinstance(fix, PoseFix)
    assert (fix.pose.x, fix.pose.y, fix.pose.yaw) == pytest.approx((100.0, 52.0, math.pi / 2 + 0.1))
    np.testing.assert_allclose(np.diag(fix.covariance()), [0.0004, 0.0009, 0.0001], atol=1e-12)
    cov[35] = 1e6
    msg.pose.covariance = cov
    uwb = indoor_fix(msg, frame, SourceNames(), 1.0)
    assert isinstance(uwb, UwbFix)
    assert (uwb.east, uwb.north, uwb.source) == (pytest.approx(100.0), pytest.approx(52.0), "uwb")


def test_times_and_covariance_layout() -> None:
    """Float seconds ⇄ ROS time round-trip; the pose covariance fills x, y and yaw of the 6×6 layout."""
    assert seconds(to_time(1712345678.123456789)) == pytest.approx(1712345678.123456789, abs=1e-6)
    p = np.arange(121, dtype=float).reshape(11, 11)
    cov = pose_covariance(p)
    assert (cov[0], cov[1], cov[5], cov[7], cov[35], cov[30]) == (0.0, 1.0, 2.0, 12.0, 24.0, 22.0)
