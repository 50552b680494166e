"""Measurement models: each measurement carries its own timestamp and noise, and predicts itself.

Every continuous measurement has ``source`` (the sensor's configured name), ``stamp`` (seconds, the
sensor's clock; the localizer adds the sensor's configured clock offset) and ``model(x, ext)``
returning the predicted observation ``h(x)`` and its Jacobian ``H = ∂h/∂x`` for the robot state ``x``
(see ``state``) and the sensor's ``Extrinsics``. ``ANGLE_ROWS`` lists the rows holding headings, whose
residuals are wrapped.

=================  ===============================  ==========================================
measurement        observation z                    h(x)
=================  ===============================  ==========================================
WheelOdometry      forward speed, yaw rate          (v, w)
Gyro               yaw rate                         w + bg
GnssFix            antenna east, north (ENU)        p + R(yaw)·lever
UwbFix             tag east, north (ENU)            p + R(yaw)·lever
PoseFix            sensor x, y, yaw (ENU)           (p + R(yaw)·lever, yaw + mount_yaw)
=================  ===============================  ==========================================

``FloorChange`` is discrete: it sets the floor id carried with the estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Protocol

import numpy as np

from maps.model import FloorFrame, GeoOrigin
from robots.localization.frames import Extrinsics, Pose2, floor_pose_to_enu, geodetic_to_enu
from robots.localization.state import BG, STATE_DIM, YAW, Matrix, V, Vector, W, X, Y, wrap


class GnssFixType(IntEnum):
    """Receiver fix quality (NMEA GGA quality 0/1/5/4 mapped to none/single/float/fixed)."""

    NONE = 0
    SINGLE = 1
    FLOAT = 2
    FIXED = 3


#: Horizontal 1-σ (m) assumed per fix type; a larger receiver-reported σ wins.
GNSS_FIX_STD: dict[GnssFixType, float] = {
    GnssFixType.SINGLE: 2.0,
    GnssFixType.FLOAT: 0.3,
    GnssFixType.FIXED: 0.02,
}


class Measurement(Protocol):
    """What the localizer needs of a continuous measurement (read-only, so frozen dataclasses match)."""

    @property
    def source(self) -> str:
        """The sensor's configured name."""
        ...

    @property
    def stamp(self) -> float:
        """Seconds, on the sensor's clock."""
        ...

    ANGLE_ROWS: ClassVar[tuple[int, ...]]

    def observation(self) -> Vector | None:
        """The observed vector ``z``, or ``None`` when the measurement carries no information."""
        ...

    def covariance(self) -> Matrix:
        """The measurement noise ``R``."""
        ...

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """Predicted observation ``h(x)`` and Jacobian ``H``."""
        ...


def residual(meas: Measurement, z: Vector, h: Vector) -> Vector:
    """Return ``z - h`` with the heading rows of ``meas`` wrapped into [-π, π)."""
    y = z - h
    for i in meas.ANGLE_ROWS:
        y[i] = wrap(float(y[i]))
    return y


def _lever_point(x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
    """Position of a point at the lever arm in ENU, and its 2×6 Jacobian."""
    c, s = math.cos(x[YAW]), math.sin(x[YAW])
    lx, ly = ext.lever_x, ext.lever_y
    h = np.array([x[X] + c * lx - s * ly, x[Y] + s * lx + c * ly])
    jac = np.zeros((2, STATE_DIM))
    jac[0, X] = jac[1, Y] = 1.0
    jac[0, YAW] = -s * lx - c * ly
    jac[1, YAW] = c * lx - s * ly
    return h, jac


def _positive(name: str, value: float) -> None:
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class WheelOdometry:
    """Wheel odometry: forward speed (m/s) and yaw rate (rad/s) with their 1-σ."""

    source: str
    stamp: float
    speed: float
    yaw_rate: float
    speed_std: float = 0.05
    yaw_rate_std: float = 0.05
    ANGLE_ROWS: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        _positive("WheelOdometry.speed_std", self.speed_std)
        _positive("WheelOdometry.yaw_rate_std", self.yaw_rate_std)

    def observation(self) -> Vector:
        """``(speed, yaw_rate)``."""
        return np.array([self.speed, self.yaw_rate])

    def covariance(self) -> Matrix:
        """Diagonal noise from the two σ."""
        return np.diag([self.speed_std**2, self.yaw_rate_std**2])

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = (v, w)``."""
        jac = np.zeros((2, STATE_DIM))
        jac[0, V] = jac[1, W] = 1.0
        return np.array([x[V], x[W]]), jac


@dataclass(frozen=True, slots=True)
class Gyro:
    """A z-axis gyro reading (rad/s), biased: it reads ``w + bg``."""

    source: str
    stamp: float
    yaw_rate: float
    std: float = 0.005
    ANGLE_ROWS: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        _positive("Gyro.std", self.std)

    def observation(self) -> Vector:
        """``(yaw_rate,)``."""
        return np.array([self.yaw_rate])

    def covariance(self) -> Matrix:
        """``σ²``."""
        return np.array([[self.std**2]])

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = w + bg`` (a z gyro does not see the mounting yaw)."""
        jac = np.zeros((1, STATE_DIM))
        jac[0, W] = jac[0, BG] = 1.0
        return np.array([x[W] + x[BG]]), jac


@dataclass(frozen=True, slots=True)
class GnssFix:
    """A GNSS antenna position in campus ENU (m) with its fix type and optional reported 1-σ (m)."""

    source: str
    stamp: float
    east: float
    north: float
    fix: GnssFixType
    std: float | None = None
    ANGLE_ROWS: ClassVar[tuple[int, ...]] = ()

    @classmethod
    def from_geodetic(
        cls,
        origin: GeoOrigin,
        source: str,
        stamp: float,
        lat: float,
        lon: float,
        alt: float,
        fix: GnssFixType,
        std: float | None = None,
    ) -> GnssFix:
        """Build a fix from WGS84 coordinates, projected into the campus ENU frame of ``origin``."""
        e, n, _ = geodetic_to_enu(origin, lat, lon, alt)
        return cls(source, stamp, e, n, fix, std)

    def observation(self) -> Vector | None:
        """``(east, north)``, or ``None`` without a fix."""
        if self.fix is GnssFixType.NONE:
            return None
        return np.array([self.east, self.north])

    def covariance(self) -> Matrix:
        """Isotropic: the larger of the fix type's σ and the reported σ."""
        if self.fix is GnssFixType.NONE:
            raise ValueError("a GNSS measurement without a fix has no covariance")
        sigma = max(GNSS_FIX_STD[self.fix], self.std or 0.0)
        return np.eye(2) * sigma**2

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = p + R(yaw)·lever``."""
        return _lever_point(x, ext)


@dataclass(frozen=True, slots=True)
class UwbFix:
    """A UWB tag position in campus ENU (m), 1-σ per axis."""

    source: str
    stamp: float
    east: float
    north: float
    std: float = 0.15
    ANGLE_ROWS: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        _positive("UwbFix.std", self.std)

    def observation(self) -> Vector:
        """``(east, north)``."""
        return np.array([self.east, self.north])

    def covariance(self) -> Matrix:
        """``σ²·I``."""
        return np.eye(2) * self.std**2

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = p + R(yaw)·lever``."""
        return _lever_point(x, ext)


@dataclass(frozen=True, slots=True)
class PoseFix:
    """A sensor pose (scan match against the floor map) in campus ENU, with its 3×3 covariance."""

    source: str
    stamp: float
    pose: Pose2
    cov: tuple[tuple[float, ...], ...] = field(
        default=((0.03**2, 0.0, 0.0), (0.0, 0.03**2, 0.0), (0.0, 0.0, 0.01**2))
    )
    ANGLE_ROWS: ClassVar[tuple[int, ...]] = (2,)

    def __post_init__(self) -> None:
        c = np.asarray(self.cov, dtype=float)
        if c.shape != (3, 3) or not np.allclose(c, c.T) or np.any(np.linalg.eigvalsh(c) <= 0.0):
            raise ValueError("PoseFix.cov must be a symmetric positive definite 3×3 matrix")

    @classmethod
    def from_floor(cls, frame: FloorFrame, source: str, stamp: float, pose: Pose2, cov: Matrix) -> PoseFix:
        """Build a fix from a pose and covariance in a floor's map frame (rotated into ENU)."""
        c, s = math.cos(frame.yaw), math.sin(frame.yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        enu_cov = rot @ np.asarray(cov, dtype=float) @ rot.T
        as_tuple = tuple(tuple(float(v) for v in row) for row in enu_cov)
        return cls(source, stamp, floor_pose_to_enu(frame, pose), as_tuple)

    def observation(self) -> Vector:
        """``(x, y, yaw)`` of the sensor."""
        return np.array([self.pose.x, self.pose.y, self.pose.yaw])

    def covariance(self) -> Matrix:
        """The 3×3 covariance."""
        return np.asarray(self.cov, dtype=float)

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = (p + R(yaw)·lever, yaw + mount_yaw)``."""
        p, jp = _lever_point(x, ext)
        jac = np.zeros((3, STATE_DIM))
        jac[:2] = jp
        jac[2, YAW] = 1.0
        return np.array([p[0], p[1], wrap(float(x[YAW]) + ext.mount_yaw)]), jac


@dataclass(frozen=True, slots=True)
class FloorChange:
    """A discrete floor observation (a lift exit tells the floor); ``floor`` ``None`` means outdoors."""

    source: str
    stamp: float
    floor: str | None
