"""Measurement models: each measurement carries its own timestamp and noise, and predicts itself.

Every continuous measurement has ``source`` (the sensor's configured name), ``stamp`` (seconds, the
sensor's clock; the localizer adds the sensor's configured clock offset) and ``model(x, ext)``
returning the predicted observation ``h(x)`` and its Jacobian ``H = ∂h/∂x`` for the robot state ``x``
(see ``state``) and the sensor's ``Extrinsics``. ``ANGLE_ROWS`` lists the rows holding headings, whose
residuals are wrapped.

=================  ===============================  ==========================================
measurement        observation z                    h(x)
=================  ===============================  ==========================================
WheelOdometry      mean forward speed, yaw rate     (v − a·T/2, w − dw·T/2)
Gyro               mean yaw rate                    w − dw·T/2 + bg
Accel              forward specific force           a + ba
GnssFix            antenna east, north (ENU)        p + R(yaw)·lever + (ge, gn)
UwbFix             tag east, north (ENU)            p + R(yaw)·lever
PoseFix            sensor x, y, yaw (ENU)           (p + R(yaw)·lever, yaw + mount_yaw)
=================  ===============================  ==========================================

``FloorChange`` is discrete: it sets the floor id carried with the estimate.

``Reading`` (wheel odometry, gyro, accelerometer) are the high-rate proprioceptive readings; with a
``period`` > 0 they can be aggregated (``aggregate``): readings tiling consecutive periods are
replaced by one reading of their mean over the whole span, which is what the filter fuses (see
``fusion``).

**Sample periods.** Wheel encoders count ticks over a period and IMUs average over theirs, so a
reading stamped ``t`` with ``period`` ``T`` is the mean over ``(t − T, t]``; with constant acceleration
that is the state at ``t`` minus half the period's change (``T = 0``: an instantaneous reading).

**GNSS errors.** A receiver's error is not white: float and single solutions wander slowly (tens of
seconds), and treating them as white lets a run of fixes drag the estimate by their common error.
Each fix type has a ``GnssErrorModel``: a white part (``R`` of the update) and a Gauss–Markov part
carried in the state (``ge``, ``gn``; see ``state``). A receiver-reported σ larger than the model's
total widens the white part. The defaults follow the usual receiver figures: RTK fixed 2 cm white,
float 30 cm wandering over ~10 s, single 2 m wandering over ~1 min.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Protocol

import numpy as np

from maps.model import FloorFrame, GeoOrigin
from robots.localization.frames import Extrinsics, Pose2, floor_pose_to_enu, geodetic_to_enu
from robots.localization.state import (
    BA,
    BG,
    DEFAULT_GNSS_ERROR,
    DW,
    GE,
    GN,
    STATE_DIM,
    YAW,
    A,
    GaussMarkov,
    Matrix,
    V,
    Vector,
    W,
    X,
    Y,
    wrap,
)


def _positive(name: str, value: float) -> None:
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


class GnssFixType(IntEnum):
    """Receiver fix quality (NMEA GGA quality 0/1/5/4 mapped to none/single/float/fixed)."""

    NONE = 0
    SINGLE = 1
    FLOAT = 2
    FIXED = 3


@dataclass(frozen=True, slots=True)
class GnssErrorModel:
    """A fix type's horizontal error: white 1-σ (m) plus a Gauss–Markov part (see the module doc)."""

    white_std: float
    wander: GaussMarkov

    def __post_init__(self) -> None:
        _positive("GnssErrorModel.white_std", self.white_std)

    @property
    def total_std(self) -> float:
        """The 1-σ of one fix's error, both parts together."""
        return math.hypot(self.white_std, self.wander.std)


#: Error model per fix type; a larger receiver-reported σ widens the white part.
GNSS_ERROR: dict[GnssFixType, GnssErrorModel] = {
    GnssFixType.FIXED: GnssErrorModel(0.02, DEFAULT_GNSS_ERROR),
    GnssFixType.FLOAT: GnssErrorModel(0.05, GaussMarkov(0.3, 10.0)),
    GnssFixType.SINGLE: GnssErrorModel(0.3, GaussMarkov(2.0, 60.0)),
}


def _constant(rows: int, ones: tuple[tuple[int, int], ...]) -> Matrix:
    """A read-only Jacobian of a linear model: ``rows`` × STATE_DIM with ones at ``ones``."""
    jac = np.zeros((rows, STATE_DIM))
    for r, c in ones:
        jac[r, c] = 1.0
    jac.flags.writeable = False
    return jac


_H_ACCEL = _constant(1, ((0, A), (0, BA)))


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


def _period(name: str, value: float) -> None:
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class WheelOdometry:
    """Wheel odometry: mean forward speed (m/s) and yaw rate (rad/s) over ``period`` s, with 1-σ."""

    source: str
    stamp: float
    speed: float
    yaw_rate: float
    speed_std: float = 0.05
    yaw_rate_std: float = 0.05
    period: float = 0.0
    ANGLE_ROWS: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        _positive("WheelOdometry.speed_std", self.speed_std)
        _positive("WheelOdometry.yaw_rate_std", self.yaw_rate_std)
        _period("WheelOdometry.period", self.period)

    def observation(self) -> Vector:
        """``(speed, yaw_rate)``."""
        return np.array([self.speed, self.yaw_rate])

    def covariance(self) -> Matrix:
        """Diagonal noise from the two σ."""
        return np.diag([self.speed_std**2, self.yaw_rate_std**2])

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = (v − a·T/2, w − dw·T/2)``."""
        half = 0.5 * self.period
        jac = np.zeros((2, STATE_DIM))
        jac[0, V] = jac[1, W] = 1.0
        jac[0, A] = jac[1, DW] = -half
        return np.array([x[V] - half * x[A], x[W] - half * x[DW]]), jac


@dataclass(frozen=True, slots=True)
class Gyro:
    """A z-axis gyro reading (rad/s), the mean over ``period`` s, biased: it reads ``w + bg``."""

    source: str
    stamp: float
    yaw_rate: float
    std: float = 0.005
    period: float = 0.0
    ANGLE_ROWS: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        _positive("Gyro.std", self.std)
        _period("Gyro.period", self.period)

    def observation(self) -> Vector:
        """``(yaw_rate,)``."""
        return np.array([self.yaw_rate])

    def covariance(self) -> Matrix:
        """``σ²``."""
        return np.array([[self.std**2]])

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = w − dw·T/2 + bg`` (a z gyro does not see the mounting yaw)."""
        half = 0.5 * self.period
        jac = np.zeros((1, STATE_DIM))
        jac[0, W] = jac[0, BG] = 1.0
        jac[0, DW] = -half
        return np.array([x[W] - half * x[DW] + x[BG]]), jac


@dataclass(frozen=True, slots=True)
class Accel:
    """A forward accelerometer reading (m/s²), the mean over ``period`` s, biased: it reads ``a + ba``.

    Planar: the robot is assumed level (gravity does not leak into the forward axis) and the
    accelerometer at the base (the centripetal term of a lever arm is neglected); the lateral axis
    is not used. With constant acceleration over a step the mean is ``a`` itself.
    """

    source: str
    stamp: float
    forward: float
    std: float = 0.05
    period: float = 0.0
    ANGLE_ROWS: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        _positive("Accel.std", self.std)
        _period("Accel.period", self.period)

    def observation(self) -> Vector:
        """``(forward,)``."""
        return np.array([self.forward])

    def covariance(self) -> Matrix:
        """``σ²``."""
        return np.array([[self.std**2]])

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = a + ba``."""
        return np.array([x[A] + x[BA]]), _H_ACCEL


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

    def error_model(self) -> GnssErrorModel:
        """The error model of this fix's type."""
        if self.fix is GnssFixType.NONE:
            raise ValueError("a GNSS measurement without a fix has no error model")
        return GNSS_ERROR[self.fix]

    def covariance(self) -> Matrix:
        """The white part of the error (isotropic), widened when the receiver reports a larger σ."""
        model = self.error_model()
        white2 = model.white_std**2
        if self.std is not None and self.std > model.total_std:
            white2 = self.std**2 - model.wander.std**2
        return np.eye(2) * white2

    def total_covariance(self) -> Matrix:
        """The whole error of one fix (white and wandering parts), for filters without GNSS error states."""
        sigma = max(self.error_model().total_std, self.std or 0.0)
        return np.eye(2) * sigma**2

    def model(self, x: Vector, ext: Extrinsics) -> tuple[Vector, Matrix]:
        """``h = p + R(yaw)·lever + (ge, gn)``."""
        h, jac = _lever_point(x, ext)
        h[0] += x[GE]
        h[1] += x[GN]
        jac[0, GE] = jac[1, GN] = 1.0
        return h, jac


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


Reading = WheelOdometry | Gyro | Accel
"""A high-rate proprioceptive reading (a mean over its ``period``)."""


def aggregate(readings: Sequence[Reading]) -> Reading:
    """One reading of the mean over the readings' periods (same type and source; time order).

    The mean of each channel is weighted by period; its variance is ``Σ σᵢ² Tᵢ² / (Σ Tᵢ)²`` (the
    readings' errors are independent). Stamp: the last reading's; period: the sum of the periods.
    """
    first = readings[0]
    if any(type(r) is not type(first) or r.source != first.source for r in readings):
        raise ValueError("aggregate needs readings of one type and one source")
    if len(readings) == 1:
        return first
    total = sum(r.period for r in readings)
    if not total > 0.0:
        raise ValueError("aggregate needs readings with a period > 0")

    def mean(values: Sequence[float]) -> float:
        return sum(v * r.period for v, r in zip(values, readings, strict=True)) / total

    def std(stds: Sequence[float]) -> float:
        return math.sqrt(sum((s * r.period) ** 2 for s, r in zip(stds, readings, strict=True))) / total

    last = readings[-1].stamp
    if isinstance(first, WheelOdometry):
        wheel = [r for r in readings if isinstance(r, WheelOdometry)]
        return WheelOdometry(
            first.source,
            last,
            mean([r.speed for r in wheel]),
            mean([r.yaw_rate for r in wheel]),
            std([r.speed_std for r in wheel]),
            std([r.yaw_rate_std for r in wheel]),
            total,
        )
    if isinstance(first, Gyro):
        gyro = [r for r in readings if isinstance(r, Gyro)]
        return Gyro(first.source, last, mean([r.yaw_rate for r in gyro]), std([r.std for r in gyro]), total)
    accel = [r for r in readings if isinstance(r, Accel)]
    return Accel(first.source, last, mean([r.forward for r in accel]), std([r.std for r in accel]), total)


@dataclass(frozen=True, slots=True)
class FloorChange:
    """A discrete floor observation (a lift exit tells the floor); ``floor`` ``None`` means outdoors."""

    source: str
    stamp: float
    floor: str | None
