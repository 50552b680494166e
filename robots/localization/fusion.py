"""The EKF step and the fusion schedule, shared by the online ``Localizer`` and the offline smoother.

**The step** (``fuse``): predict the prior to the measurement's filter time, reset the GNSS error
states when the fix type changes (see ``state``), linearise, gate (``gating``), correct.

**Odometry as input.** A step with wheel odometry moves the pose by the aggregated readings (mean
speed; yaw rate from the gyro while driving, from the wheels at a standstill; ``state.propagate_motion``),
then fuses the readings as measurements of the speed, rate and acceleration states. The distance and
turn of the step are then exactly what was measured, with the readings' noise, independent of how fast
the motion states may change. A gyro that turned the heading is not fused again; instead its
disagreement with the wheels' yaw rate measures its bias (``_gyro_bias_update``).

**The schedule** (``fuse_pending``). Wheel odometry and IMU readings arrive at 50–200 Hz; fusing each
one costs a full EKF step, and numpy's per-call overhead makes that the whole CPU budget. As in PX4's
EKF2 (which accumulates delta angles and velocities over its filter period), readings with a
``period`` are aggregated over a *fusion step* of ``fusion_step`` seconds: the filter fuses, per
source, one reading of the mean over the step (``measurements.aggregate``), which carries the same
distance travelled and heading change. Time is cut into cells ``((k-1)·Δ, k·Δ]``; a step takes the
readings of one cell up to the first measurement that cannot be aggregated (a fix, a floor change, a
reading without a period), which closes the step and is fused after the readings. The cut depends
only on the measurements' times, never on when they arrived, so replaying a late measurement
rebuilds exactly the steps an on-time arrival would have built. A step is fused once the horizon has
passed its end.

**Dead reckoning** (``DeadReckoner``, ``dead_reckon``): an estimate carried forward over readings not
fused yet, the pose integrated from the wheel speeds and the gyro (bias-corrected), the covariance
carried through the integration's Jacobian plus the readings' noise.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from robots.localization.frames import Extrinsics, Pose2
from robots.localization.gating import TRUSTED, GateConfig, GateDecision, GateState, step
from robots.localization.measurements import (
    GNSS_ERROR,
    Accel,
    FloorChange,
    GnssFix,
    GnssFixType,
    Gyro,
    Measurement,
    Reading,
    WheelOdometry,
    aggregate,
    residual,
)
from robots.localization.state import (
    BG,
    DEFAULT_GNSS_ERROR,
    POSE,
    STATE_DIM,
    YAW,
    GaussMarkov,
    Matrix,
    Motion,
    ProcessNoise,
    V,
    Vector,
    W,
    X,
    Y,
    correct,
    innovate,
    predict,
    predict_motion,
    process_noise_diagonal,
    reset_gnss_error,
    wrap,
)

AnyMeasurement = Measurement | FloorChange
Timed = tuple[float, AnyMeasurement]
"""A measurement with its filter time (stamp + the sensor's clock offset)."""

_EPS = 1e-9
"""Seconds of slack when comparing stamps with cell boundaries (binary fractions of 0.1 s)."""


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """One sensor: where it sits, how its clock relates to the filter's, and how it is gated.

    ``clock_offset`` (s) is added to the sensor's stamps to get filter time.
    """

    extrinsics: Extrinsics = field(default_factory=Extrinsics)
    clock_offset: float = 0.0
    gate: GateConfig = field(default_factory=GateConfig)


@dataclass(frozen=True, slots=True)
class LocalizerConfig:
    """The sensors by source name, the process noise and the timing (seconds).

    ``fusion_step``: the cell over which readings are aggregated; ``fusion_delay``: how far the fusion
    horizon trails the newest measurement; ``max_lag``: the oldest measurement still taken (replayed).
    """

    sensors: Mapping[str, SensorConfig]
    noise: ProcessNoise = field(default_factory=ProcessNoise)
    max_lag: float = 0.5
    fusion_delay: float = 0.25
    fusion_step: float = 0.1

    def __post_init__(self) -> None:
        if not self.max_lag >= 0.0:
            raise ValueError(f"LocalizerConfig.max_lag must be >= 0, got {self.max_lag!r}")
        if not 0.0 <= self.fusion_delay <= self.max_lag:
            raise ValueError(
                f"LocalizerConfig.fusion_delay must be within 0..max_lag, got {self.fusion_delay!r}"
            )
        if not self.fusion_step > 0.0:
            raise ValueError(f"LocalizerConfig.fusion_step must be > 0, got {self.fusion_step!r}")


@dataclass(frozen=True, slots=True)
class Estimate:
    """The state at ``stamp``: mean ``x`` (see ``state``), covariance ``p``, floor and GNSS error mode.

    ``gnss_mode`` is the fix type whose error the GNSS error states describe (None before any fix);
    ``decision`` and ``nis`` are those of the measurement fused last.
    """

    stamp: float
    x: Vector
    p: Matrix
    floor: str | None
    gnss_mode: GnssFixType | None = None
    gates: Mapping[str, GateState] = field(default_factory=dict)
    decision: GateDecision | None = None
    nis: float | None = None

    def __post_init__(self) -> None:
        # The history shares these arrays between estimates: freeze them so no caller can edit the past.
        self.x.flags.writeable = False
        self.p.flags.writeable = False

    @property
    def pose(self) -> Pose2:
        """The robot base pose in campus ENU."""
        return Pose2(float(self.x[X]), float(self.x[Y]), float(self.x[YAW]))


def gnss_wander(mode: GnssFixType | None) -> GaussMarkov:
    """The Gauss–Markov model the GNSS error states follow in ``mode``."""
    return DEFAULT_GNSS_ERROR if mode is None or mode is GnssFixType.NONE else GNSS_ERROR[mode].wander


def fuse(config: LocalizerConfig, prior: Estimate, t: float, meas: AnyMeasurement) -> Estimate:
    """One EKF step: predict ``prior`` to filter time ``t`` and apply ``meas`` (gated).

    A GNSS fix of another type than the current GNSS error mode first resets the GNSS error states
    to the new type's model (see ``state``).
    """
    x, p = predict(prior.x, prior.p, t - prior.stamp, config.noise, gnss_wander(prior.gnss_mode))
    if isinstance(meas, FloorChange):
        return Estimate(t, x, p, meas.floor, prior.gnss_mode, prior.gates)
    z = meas.observation()
    if z is None:
        return Estimate(t, x, p, prior.floor, prior.gnss_mode, prior.gates)
    mode = prior.gnss_mode
    if isinstance(meas, GnssFix) and meas.fix is not mode:
        mode = meas.fix
        x, p = reset_gnss_error(x, p, gnss_wander(mode))
    sensor = config.sensors[meas.source]
    h, jac = meas.model(x, sensor.extrinsics)
    y = residual(meas, z, h)
    r = meas.covariance()
    inn = innovate(y, jac, p, r)
    before = prior.gates.get(meas.source, TRUSTED)
    decision, gate = step(sensor.gate, before, inn.nis, len(y), y, r)
    gates = prior.gates if gate is before else {**prior.gates, meas.source: gate}
    if decision is GateDecision.REJECT:
        return Estimate(t, x, p, prior.floor, mode, gates, decision, inn.nis)
    if decision is GateDecision.RECOVER:
        p = _widen(inn.y, inn.pht, jac, p)
        inn = innovate(y, jac, p, r)
    x, p = correct(x, p, inn)
    return Estimate(t, x, p, prior.floor, mode, gates, decision, inn.nis)


def _widen(y: Vector, pht: Matrix, jac: Matrix, p: Matrix) -> Matrix:
    """Widen ``p`` along the most likely pose error explaining ``y``: ``P + δδᵀ``.

    Used on recovery: the filter, not the sensor, had drifted, so the filter's own covariance is what
    was too small. ``δ`` is the smallest pose correction in the metric of the pose covariance that
    explains the residual (``δ = P_pp H_pᵀ (H_p P_pp H_pᵀ)⁻¹ y`` over x, y, yaw), so the widening goes
    into the direction the pose was least sure of, and not into velocities or the GNSS error states.
    (A measurement that does not see the pose is widened in the metric of the whole state.) The widened
    innovation covariance makes the NIS ``a/(1+a) < 1``, and the update with the sensor's true noise
    then takes nearly the whole correction.
    """
    hp = jac[:, POSE]
    ppp = p[POSE, POSE]
    s0 = hp @ ppp @ hp.T
    delta = np.zeros(STATE_DIM)
    if np.linalg.matrix_rank(s0) == len(y):
        delta[POSE] = ppp @ hp.T @ np.linalg.solve(s0, y)
    else:
        delta = pht @ np.linalg.lstsq(jac @ pht, y, rcond=None)[0]
    return p + np.outer(delta, delta)


def aggregatable(meas: AnyMeasurement) -> bool:
    """Whether ``meas`` is a reading with a period, which a fusion step may aggregate."""
    return isinstance(meas, WheelOdometry | Gyro | Accel) and meas.period > 0.0


def step_length(
    stamps: Sequence[float], closes: Sequence[bool], start: int, fusion_step: float
) -> tuple[int, float]:
    """The next fusion step of the pending entries from index ``start`` (``stamps`` in time order,
    ``closes[i]``: entry ``i`` cannot be aggregated): how many entries it takes, and the horizon it
    needs (its end: the cell's end, or the stamp of the entry that closes it)."""
    t0 = stamps[start]
    cell_end = math.ceil(t0 / fusion_step - _EPS) * fusion_step
    stop = bisect.bisect_right(stamps, cell_end + _EPS, lo=start)
    try:
        close = closes.index(True, start, stop)  # type: ignore[attr-defined]
    except ValueError:
        return stop - start, cell_end
    return close - start + 1, stamps[close]


@dataclass(frozen=True, slots=True)
class Step:
    """A fused step: its raw measurements (filter time, measurement), the estimate after it, the
    innovations ``(source, dof, NIS)`` of the measurements fused (aggregated readings count once), the
    ``(source, filter time)`` of those the gates accepted, and the odometry ``motion`` that moved the
    pose up to ``motion_stamp`` (None: the process model did)."""

    stamp: float
    raws: tuple[Timed, ...]
    after: Estimate
    innovations: tuple[tuple[str, int, float], ...]
    accepted: tuple[tuple[str, float], ...]
    motion: Motion | None = None
    motion_stamp: float = 0.0


def _motion(readings: Sequence[Timed]) -> tuple[Motion | None, float]:
    """The odometry inputs of a step and their time: the first wheel reading's mean speed, and the mean
    yaw rate of whichever of the first gyro and the wheels reads it more precisely (the gyro while
    driving; the wheels at a standstill, where their encoders do not tick)."""
    wheel = next(((t, m) for t, m in readings if isinstance(m, WheelOdometry)), None)
    if wheel is None:
        return None, 0.0
    t, odo = wheel
    gyro = next((m for _, m in readings if isinstance(m, Gyro)), None)
    if gyro is None or odo.yaw_rate_std <= gyro.std:
        return Motion(odo.speed, odo.speed_std**2, odo.yaw_rate, odo.yaw_rate_std**2, False), t
    return Motion(odo.speed, odo.speed_std**2, gyro.yaw_rate, gyro.std**2, True), t


def fuse_step(config: LocalizerConfig, prior: Estimate, raws: Sequence[Timed]) -> Step:
    """Fuse one step: move the pose by the step's odometry (if any), fuse the readings aggregated per
    source (as measurements of the speed, rate and acceleration states), then the measurement that
    closed the step (if any)."""
    groups: dict[str, list[Reading]] = {}
    last: dict[str, float] = {}
    closing: list[Timed] = []
    for t, meas in raws:
        if aggregatable(meas) and not closing:
            groups.setdefault(meas.source, []).append(meas)  # type: ignore[arg-type]
            last[meas.source] = t
        else:
            closing.append((t, meas))
    readings: list[Timed] = sorted(((last[s], aggregate(r)) for s, r in groups.items()), key=lambda tm: tm[0])
    est = prior
    innovations: list[tuple[str, int, float]] = []
    accepted: list[tuple[str, float]] = []
    motion, motion_stamp = _motion(readings)
    if motion is not None:
        gm = gnss_wander(prior.gnss_mode)
        x, p = predict_motion(prior.x, prior.p, motion_stamp - prior.stamp, config.noise, motion, gm)
        if motion.gyro:
            x, p, nis = _gyro_bias_update(x, p, motion, readings)
            innovations.append(("gyro_bias", 1, nis))
        est = Estimate(motion_stamp, x, p, prior.floor, prior.gnss_mode, prior.gates)
        accepted += [(m.source, motion_stamp) for _, m in readings if isinstance(m, WheelOdometry | Gyro)]
        # The readings describe the same step. A gyro that turned the heading is not fused again (its
        # noise is already in the heading, and fusing it would make the bias look better known).
        readings = [(motion_stamp, m) for _, m in readings if not (motion.gyro and isinstance(m, Gyro))]
    for t, meas in (*readings, *closing):
        est = fuse(config, est, max(t, est.stamp), meas)
        if est.decision is None or isinstance(meas, FloorChange):
            continue
        if est.nis is not None:
            innovations.append((meas.source, _rows(meas), est.nis))
        if est.decision is not GateDecision.REJECT:
            accepted.append((meas.source, t))
    return Step(est.stamp, tuple(raws), est, tuple(innovations), tuple(accepted), motion, motion_stamp)


def _gyro_bias_update(
    x: Vector, p: Matrix, motion: Motion, readings: Sequence[Timed]
) -> tuple[Vector, Matrix, float]:
    """While the gyro turns the heading, the wheels' yaw rate still tells its bias: ``gyro − wheels =
    bg + noise``, with the noise of both (the wheels' dominates, so the correlation with the heading's
    gyro noise is small and neglected). Returns the updated state and the NIS."""
    wheel = next(m for _, m in readings if isinstance(m, WheelOdometry))
    jac = np.zeros((1, STATE_DIM))
    jac[0, BG] = 1.0
    y = np.array([motion.rate - wheel.yaw_rate - float(x[BG])])
    inn = innovate(y, jac, p, np.array([[motion.rate_var + wheel.yaw_rate_std**2]]))
    xn, pn = correct(x, p, inn)
    return xn, pn, inn.nis


def _rows(meas: Measurement) -> int:
    """The dimension of a measurement (that has an observation)."""
    z = meas.observation()
    return 0 if z is None else len(z)


def fuse_pending(
    config: LocalizerConfig,
    prior: Estimate,
    pending: Sequence[Timed],
    stamps: Sequence[float],
    closes: Sequence[bool],
    horizon: float,
) -> tuple[list[Step], int]:
    """Fuse the steps of ``pending`` (time order; ``stamps[i]``, ``closes[i]``: the filter time of
    entry ``i`` and whether it cannot be aggregated) whose end the ``horizon`` has passed.

    Returns the steps and how many entries they consumed.
    """
    steps: list[Step] = []
    used = 0
    if not pending or stamps[0] > horizon + _EPS:
        return steps, used
    while used < len(pending):
        n, end = step_length(stamps, closes, used, config.fusion_step)
        if end > horizon + _EPS:
            break
        step_ = fuse_step(config, prior, pending[used : used + n])
        steps.append(step_)
        prior = step_.after
        used += n
    return steps, used


class DeadReckoner:
    """Carries an estimate forward over readings not fused yet (see the module docstring).

    ``add`` the readings in time order (each describes the interval ending at its stamp; readings with
    the same stamp are taken together), then ``estimate``. Adding more readings later continues from
    where it stopped, so the localizer extends it as readings arrive instead of starting over.
    """

    def __init__(self, config: LocalizerConfig, base: Estimate) -> None:
        """Start at ``base``."""
        self.config, self.base = config, base
        self.count = 0
        self._x, self._y, self._yaw = float(base.x[X]), float(base.x[Y]), float(base.x[YAW])
        self._v, self._w, self._bg = float(base.x[V]), float(base.x[W]), float(base.x[BG])
        self._v_var, self._w_var = float(base.p[V, V]), float(base.p[W, W])
        self._floor = base.floor
        self._gyro = self._odometry = False
        self._last = base.stamp  # integrated up to here
        self._open: float | None = None  # the stamp of the readings taken but not integrated yet
        self._var_s = self._var_yaw = 0.0

    def add(self, t: float, meas: AnyMeasurement) -> None:
        """Take one measurement (only wheel odometry, gyro and floor changes matter)."""
        if self._open is not None and t != self._open:
            self._x, self._y, self._yaw, self._var_s, self._var_yaw = self._integrated()
            self._last = self._open
        self._open = t
        self.count += 1
        kind = type(meas)
        if kind is WheelOdometry:
            wheel: WheelOdometry = meas  # type: ignore[assignment]
            self._v, self._v_var, self._odometry = wheel.speed, wheel.speed_std**2, True
            if not self._gyro:
                self._w, self._w_var = wheel.yaw_rate, wheel.yaw_rate_std**2
        elif kind is Gyro:
            gyro: Gyro = meas  # type: ignore[assignment]
            self._w, self._w_var = gyro.yaw_rate - self._bg, gyro.std**2
            self._gyro = self._odometry = True
        elif kind is FloorChange:
            self._floor = meas.floor  # type: ignore[union-attr]

    def _integrated(self) -> tuple[float, float, float, float, float]:
        """Pose and noise after integrating the open interval (not committed)."""
        dt = (self._open if self._open is not None else self._last) - self._last
        if dt <= 0.0:
            return self._x, self._y, self._yaw, self._var_s, self._var_yaw
        phi = self._yaw + 0.5 * self._w * dt
        return (
            self._x + self._v * math.cos(phi) * dt,
            self._y + self._v * math.sin(phi) * dt,
            self._yaw + self._w * dt,
            self._var_s + self._v_var * dt * dt,
            self._var_yaw + self._w_var * dt * dt,
        )

    def estimate(self, until: float) -> Estimate:
        """The estimate at ``until`` (not before the last reading added)."""
        e, cfg = self.base, self.config
        span = until - e.stamp
        gm = gnss_wander(e.gnss_mode)
        if not self._odometry:
            x, p = predict(e.x, e.p, span, cfg.noise, gm)
            return Estimate(until, x, p, self._floor, e.gnss_mode, e.gates, e.decision, e.nis)
        px, py, yaw, var_s, var_yaw = self._integrated()
        x = e.x.copy()
        x[X], x[Y], x[YAW], x[V], x[W] = px, py, wrap(yaw), self._v, self._w
        dx, dy = px - float(e.x[X]), py - float(e.x[Y])
        bias_time = span if self._gyro else 0.0
        p = _dead_reckoning_covariance(e.p, dx, dy, float(e.x[YAW]), bias_time, var_s, var_yaw)
        p.flat[:: STATE_DIM + 1] += _diffusion(cfg.noise, span, abs(self._v), gm)
        return Estimate(until, x, p, self._floor, e.gnss_mode, e.gates, e.decision, e.nis)


def dead_reckon(config: LocalizerConfig, e: Estimate, raws: Sequence[Timed], until: float) -> Estimate:
    """``e`` carried to ``until`` over the entries of ``raws`` up to ``until`` (time order, after ``e``).

    Without wheel odometry or gyro readings it is the model's prediction.
    """
    dr = DeadReckoner(config, e)
    for t, meas in raws:
        if t > until:
            break
        dr.add(t, meas)
    return dr.estimate(until)


def _dead_reckoning_covariance(
    p: Matrix, dx: float, dy: float, yaw0: float, bias_time: float, var_s: float, var_yaw: float
) -> Matrix:
    """Covariance after dead reckoning ``(dx, dy)`` from a fused state of covariance ``p``.

    ``bias_time``: how long the heading was integrated with the fused gyro bias; ``var_s``, ``var_yaw``:
    the readings' own noise integrated into the travelled distance and the heading.
    """
    jac = np.eye(STATE_DIM)
    jac[X, YAW], jac[Y, YAW] = -dy, dx
    jac[YAW, BG] = -bias_time
    jac[X, BG], jac[Y, BG] = 0.5 * bias_time * dy, -0.5 * bias_time * dx
    out = jac @ p @ jac.T
    dist = math.hypot(dx, dy)
    c, s = (dx / dist, dy / dist) if dist > 1e-9 else (math.cos(yaw0), math.sin(yaw0))
    out[X, X] += var_s * c * c
    out[X, Y] += var_s * c * s
    out[Y, X] += var_s * c * s
    out[Y, Y] += var_s * s * s
    out[YAW, YAW] += var_yaw
    return out


def _diffusion(noise: ProcessNoise, dt: float, speed: float, gm: GaussMarkov) -> Vector:
    """The process noise of the states the dead reckoning does not replace (position slip, biases, ...)."""
    q = process_noise_diagonal(noise, dt, speed, gm)
    q[YAW] = q[V] = q[W] = 0.0
    return q
