"""Frame conversions: geodetic ↔ campus ENU against pymap3d, floor frames, SE(2) poses, extrinsics."""

import math

import numpy as np
import pymap3d
import pytest

from maps.model import FloorFrame, GeoOrigin
from robots.localization.frames import (
    Extrinsics,
    Pose2,
    enu_pose_to_floor,
    enu_to_geodetic,
    floor_pose_to_enu,
    geodetic_to_enu,
    wrap_angle,
)

ORIGIN = GeoOrigin(lat=31.2304, lon=121.4737, alt=12.0)


def test_geodetic_to_enu_matches_pymap3d() -> None:
    """A WGS84 point maps to the same ENU coordinates pymap3d gives for the site origin."""
    lat, lon, alt = 31.2312, 121.4751, 15.5
    expected = pymap3d.geodetic2enu(lat, lon, alt, ORIGIN.lat, ORIGIN.lon, ORIGIN.alt)
    assert geodetic_to_enu(ORIGIN, lat, lon, alt) == pytest.approx(expected, abs=1e-9)


def test_enu_geodetic_round_trip() -> None:
    """ENU → geodetic → ENU returns the point to within a millimetre, and the origin is (0, 0, 0)."""
    lat, lon, alt = enu_to_geodetic(ORIGIN, 250.0, -120.0, 3.0)
    assert geodetic_to_enu(ORIGIN, lat, lon, alt) == pytest.approx((250.0, -120.0, 3.0), abs=1e-3)
    assert geodetic_to_enu(ORIGIN, ORIGIN.lat, ORIGIN.lon, ORIGIN.alt) == pytest.approx((0, 0, 0), abs=1e-9)


def test_floor_pose_to_enu_agrees_with_floor_frame() -> None:
    """A floor pose's position in ENU is FloorFrame.to_enu, its heading is turned by the frame yaw."""
    frame = FloorFrame(x=40.0, y=-12.0, yaw=0.7)
    pose = Pose2(3.0, 4.0, 0.2)
    enu = floor_pose_to_enu(frame, pose)
    assert (enu.x, enu.y) == pytest.approx(frame.to_enu(3.0, 4.0))
    assert enu.yaw == pytest.approx(0.9)
    back = enu_pose_to_floor(frame, enu)
    assert (back.x, back.y, back.yaw) == pytest.approx((3.0, 4.0, 0.2))


def test_pose_compose_inverse_is_identity() -> None:
    """p ∘ p⁻¹ is the identity pose."""
    p = Pose2(1.5, -2.0, 2.9)
    ident = p.compose(p.inverse())
    assert (ident.x, ident.y, ident.yaw) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)


def test_extrinsics_sensor_and_base_pose_are_inverse() -> None:
    """A sensor 0.5 m ahead on a robot facing north sits 0.5 m north; base_pose undoes sensor_pose."""
    ext = Extrinsics(lever_x=0.5, lever_y=0.0, mount_yaw=0.1)
    base = Pose2(10.0, 20.0, math.pi / 2)
    sensor = ext.sensor_pose(base)
    assert (sensor.x, sensor.y, sensor.yaw) == pytest.approx((10.0, 20.5, math.pi / 2 + 0.1))
    back = ext.base_pose(sensor)
    assert (back.x, back.y, back.yaw) == pytest.approx((10.0, 20.0, math.pi / 2))


def test_wrap_angle_range() -> None:
    """Angles are wrapped into [-π, π)."""
    for a in np.linspace(-10, 10, 41):
        w = wrap_angle(float(a))
        assert -math.pi <= w < math.pi
        assert math.cos(w) == pytest.approx(math.cos(a))
