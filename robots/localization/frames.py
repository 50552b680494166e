"""Frames of the campus: geodetic ↔ campus ENU, floor frame ↔ ENU, SE(2) poses and sensor extrinsics.

The outdoor frame is the campus ENU frame whose origin is the site's ``GeoOrigin`` (pymap3d, WGS84).
A floor's map frame is registered to ENU by its ``FloorFrame`` (origin and yaw in ENU). Poses are
``Pose2`` (x, y, yaw) with yaw counter-clockwise from east (ENU) or from the floor's x axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pymap3d

from maps.model import FloorFrame, GeoOrigin


def wrap_angle(a: float) -> float:
    """Return ``a`` wrapped into [-π, π)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True, slots=True)
class Pose2:
    """A planar pose: position (m) and heading (rad, counter-clockwise from the frame's x axis)."""

    x: float
    y: float
    yaw: float

    def compose(self, other: Pose2) -> Pose2:
        """Return ``self ∘ other``: ``other`` expressed in the frame that ``self`` is the pose of."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return Pose2(
            self.x + c * other.x - s * other.y,
            self.y + s * other.x + c * other.y,
            wrap_angle(self.yaw + other.yaw),
        )

    def inverse(self) -> Pose2:
        """Return the inverse transform, so that ``p.compose(p.inverse())`` is the identity."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return Pose2(-c * self.x - s * self.y, s * self.x - c * self.y, wrap_angle(-self.yaw))


def geodetic_to_enu(origin: GeoOrigin, lat: float, lon: float, alt: float) -> tuple[float, float, float]:
    """Convert WGS84 degrees / ellipsoidal metres to campus ENU metres (east, north, up)."""
    e, n, u = pymap3d.geodetic2enu(lat, lon, alt, origin.lat, origin.lon, origin.alt)
    return float(e), float(n), float(u)


def enu_to_geodetic(origin: GeoOrigin, east: float, north: float, up: float) -> tuple[float, float, float]:
    """Convert campus ENU metres to WGS84 (lat°, lon°, alt m)."""
    lat, lon, alt = pymap3d.enu2geodetic(east, north, up, origin.lat, origin.lon, origin.alt)
    return float(lat), float(lon), float(alt)


def floor_pose_to_enu(frame: FloorFrame, pose: Pose2) -> Pose2:
    """Express a pose given in a floor's map frame in campus ENU."""
    return Pose2(frame.x, frame.y, frame.yaw).compose(pose)


def enu_pose_to_floor(frame: FloorFrame, pose: Pose2) -> Pose2:
    """Express a campus ENU pose in a floor's map frame."""
    return Pose2(frame.x, frame.y, frame.yaw).inverse().compose(pose)


@dataclass(frozen=True, slots=True)
class Extrinsics:
    """Where a sensor sits on the robot: lever arm (m, robot base frame: x forward, y left) and
    mounting yaw (rad) of the sensor's x axis relative to the robot's."""

    lever_x: float = 0.0
    lever_y: float = 0.0
    mount_yaw: float = 0.0

    def sensor_pose(self, base: Pose2) -> Pose2:
        """Return the sensor's pose given the robot base pose (both in the same frame)."""
        return base.compose(Pose2(self.lever_x, self.lever_y, self.mount_yaw))

    def base_pose(self, sensor: Pose2) -> Pose2:
        """Return the robot base pose given the sensor's pose (inverse of ``sensor_pose``)."""
        return sensor.compose(Pose2(self.lever_x, self.lever_y, self.mount_yaw).inverse())
