"""The localizer: time-aligned fusion with a state history and replay.

Each measurement is applied at its own time ``stamp + clock_offset`` (the sensor's configured
offset). The localizer keeps, for the last ``max_lag`` seconds, every applied measurement and the
state after it. A measurement older than the newest one is inserted at its time and the later ones
are replayed on top of it, so a late fix gives the same estimate as the same fix arriving on time.
Measurements older than ``max_lag`` are refused (``TOO_LATE``); a second measurement from the same
source with the same timestamp is refused (``DUPLICATE``). Gate states are part of the history, so a
replay re-runs the gating too.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from robots.localization.frames import Extrinsics, Pose2
from robots.localization.gating import TRUSTED, GateConfig, GateDecision, GateState, step
from robots.localization.measurements import FloorChange, Measurement, residual
from robots.localization.state import (
    STATE_DIM,
    YAW,
    Matrix,
    ProcessNoise,
    Vector,
    X,
    Y,
    correct,
    innovate,
    predict,
)


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
    """The sensors by source name, the process noise and the replay window (s)."""

    sensors: Mapping[str, SensorConfig]
    noise: ProcessNoise = field(default_factory=ProcessNoise)
    max_lag: float = 0.5

    def __post_init__(self) -> None:
        if not self.max_lag >= 0.0:
            raise ValueError(f"LocalizerConfig.max_lag must be >= 0, got {self.max_lag!r}")


class Outcome(enum.Enum):
    """How the localizer handled a measurement."""

    APPLIED = "applied"  # in time order
    REPLAYED = "replayed"  # late: inserted at its time, later measurements replayed
    TOO_LATE = "too_late"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Estimate:
    """The state at ``stamp``: mean ``x`` (see ``state``), covariance ``p`` and the floor id."""

    stamp: float
    x: Vector
    p: Matrix
    floor: str | None
    gates: Mapping[str, GateState] = field(default_factory=dict)
    decision: GateDecision | None = None  # of the measurement that produced this estimate
    nis: float | None = None

    def __post_init__(self) -> None:
        # The history shares these arrays between estimates: freeze them so no caller can edit the past.
        self.x.flags.writeable = False
        self.p.flags.writeable = False

    @property
    def pose(self) -> Pose2:
        """The robot base pose in campus ENU."""
        return Pose2(float(self.x[X]), float(self.x[Y]), float(self.x[YAW]))


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: float
    meas: Measurement | FloorChange
    after: Estimate


class Localizer:
    """Error-state EKF over the measurements of ``config.sensors`` with late-measurement replay."""

    def __init__(self, config: LocalizerConfig, initial: Estimate) -> None:
        """Start from ``initial`` (e.g. ``initial_estimate(...)``)."""
        self._config = config
        self._base = initial
        self._entries: list[_Entry] = []
        self._stamps: list[float] = []
        self._keys: set[tuple[str, float]] = set()

    @property
    def latest(self) -> Estimate:
        """The estimate after the newest applied measurement."""
        return self._entries[-1].after if self._entries else self._base

    def estimate_at(self, stamp: float) -> Estimate:
        """The newest estimate predicted forward to ``stamp`` (not before the newest measurement)."""
        last = self.latest
        x, p = predict(last.x, last.p, stamp - last.stamp, self._config.noise)
        return Estimate(stamp, x, p, last.floor, last.gates)

    def process(self, meas: Measurement | FloorChange) -> Outcome:
        """Fuse one measurement at its own (offset-corrected) time; see the module docstring."""
        sensor = self._sensor(meas.source)
        t = meas.stamp + sensor.clock_offset
        key = (meas.source, t)
        if t < self.latest.stamp - self._config.max_lag or t < self._base.stamp:
            return Outcome.TOO_LATE
        if key in self._keys:
            return Outcome.DUPLICATE
        i = bisect.bisect_right(self._stamps, t)
        before = self._entries[i - 1].after if i else self._base
        self._insert(i, t, meas, self._apply(before, t, meas))
        self._keys.add(key)
        for j in range(i + 1, len(self._entries)):
            e = self._entries[j]
            self._entries[j] = _Entry(
                e.stamp, e.meas, self._apply(self._entries[j - 1].after, e.stamp, e.meas)
            )
        outcome = Outcome.APPLIED if i == len(self._entries) - 1 else Outcome.REPLAYED
        self._prune()
        return outcome

    def _sensor(self, source: str) -> SensorConfig:
        try:
            return self._config.sensors[source]
        except KeyError:
            raise ValueError(f"unknown sensor source {source!r}: add it to LocalizerConfig.sensors") from None

    def _insert(self, i: int, t: float, meas: Measurement | FloorChange, after: Estimate) -> None:
        self._entries.insert(i, _Entry(t, meas, after))
        self._stamps.insert(i, t)

    def _prune(self) -> None:
        horizon = self.latest.stamp - self._config.max_lag
        n = bisect.bisect_left(self._stamps, horizon)
        if n == 0:
            return
        self._base = self._entries[n - 1].after
        for e in self._entries[:n]:
            self._keys.discard((e.meas.source, e.stamp))
        del self._entries[:n]
        del self._stamps[:n]

    def _apply(self, prior: Estimate, t: float, meas: Measurement | FloorChange) -> Estimate:
        x, p = predict(prior.x, prior.p, t - prior.stamp, self._config.noise)
        if isinstance(meas, FloorChange):
            return Estimate(t, x, p, meas.floor, prior.gates)
        z = meas.observation()
        if z is None:
            return Estimate(t, x, p, prior.floor, prior.gates)
        sensor = self._config.sensors[meas.source]
        h, jac = meas.model(x, sensor.extrinsics)
        y = residual(meas, z, h)
        r = meas.covariance()
        inn = innovate(y, jac, p, r)
        decision, gate = step(sensor.gate, prior.gates.get(meas.source, TRUSTED), inn.nis, len(y), y, r)
        gates = {**prior.gates, meas.source: gate}
        if decision is GateDecision.REJECT:
            return Estimate(t, x, p, prior.floor, gates, decision, inn.nis)
        if decision is GateDecision.RECOVER:
            p = _widen(y, jac, p)
            inn = innovate(y, jac, p, r)
        x, p = correct(x, p, inn)
        return Estimate(t, x, p, prior.floor, gates, decision, inn.nis)


def _widen(y: Vector, jac: Matrix, p: Matrix) -> Matrix:
    """Widen ``p`` along the least-squares state correction ``δ = H⁺ y`` (``P + δδᵀ``).

    Used on recovery: the filter, not the sensor, had drifted, so the filter's own covariance is what
    was too small. The widened innovation covariance makes the NIS ``a/(1+a) < 1``, and the update
    with the sensor's true noise then takes nearly the whole correction in one step.
    """
    delta = np.linalg.pinv(jac) @ y
    return p + np.outer(delta, delta)


def initial_estimate(
    stamp: float,
    pose: Pose2,
    pose_std: tuple[float, float, float] = (10.0, 10.0, 1.0),
    floor: str | None = None,
) -> Estimate:
    """An estimate at rest at ``pose`` with the given 1-σ (m, m, rad) and loose speed and bias priors."""
    x = np.zeros(STATE_DIM)
    x[X], x[Y], x[YAW] = pose.x, pose.y, pose.yaw
    p = np.diag([pose_std[0] ** 2, pose_std[1] ** 2, pose_std[2] ** 2, 1.0, 0.25, 0.01**2])
    return Estimate(stamp, x, p, floor)
