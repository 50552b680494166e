"""The localizer: time-aligned fusion on a delayed horizon, with a state history and replay.

**Time.** Each measurement is applied at its own time ``stamp + clock_offset`` (the sensor's configured
offset), never at its arrival time. Fusion runs on a *delayed horizon* (as in PX4's EKF2):
measurements wait in a time-ordered buffer until the newest time seen has moved ``fusion_delay``
seconds past them, and are then fused in time order, in the steps of ``fusion`` (readings aggregated
over ``fusion_step``). A GNSS fix 200 ms late (with a delay of 250 ms) therefore lands in the buffer in
its place and costs nothing extra. A measurement behind the horizon (later than ``fusion_delay`` but
within ``max_lag``) is put back with the raw measurements of the steps from its time on, and those
steps are fused again (replay); as the steps are cut by the measurements' times alone, this rebuilds
what an on-time arrival would have built. Either way a late fix gives the same estimate as the same fix
arriving on time. Older than ``max_lag`` (or not after the oldest kept state): refused
(``TOO_LATE``); the same source and timestamp twice: refused (``DUPLICATE``). Gate states are part of
the history, so a replay re-runs the gating too.

**The current estimate** (``latest``, what control and the map→odom offset read) is the fused
estimate at the horizon carried to the newest time by dead reckoning over the buffered wheel odometry
and gyro (``fusion.DeadReckoner``, extended as readings arrive and restarted when the horizon moves).
The buffered fixes enter it when the horizon reaches them, at most ``fusion_delay + fusion_step`` later.

**Cost.** Each raw measurement costs a list insertion; the filter runs one EKF update per source and
fusion step (plus one per fix), and reading ``latest`` extends the dead reckoning by the readings that
arrived since the last read (it starts over from the fused estimate after each fused step).
"""

from __future__ import annotations

import bisect
import enum
import math
from collections.abc import Mapping

import numpy as np

from robots.localization.frames import Pose2
from robots.localization.fusion import (
    AnyMeasurement,
    DeadReckoner,
    Estimate,
    LocalizerConfig,
    SensorConfig,
    Step,
    Timed,
    aggregatable,
    fuse,
    fuse_pending,
    gnss_wander,
)
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
    V,
    W,
    X,
    Y,
    predict,
)

__all__ = [
    "Estimate",
    "Localizer",
    "LocalizerConfig",
    "Outcome",
    "SensorConfig",
    "fuse",
    "gnss_wander",
    "initial_estimate",
]


class Outcome(enum.Enum):
    """How the localizer handled a measurement."""

    APPLIED = "applied"  # in time order (fused when the horizon reaches it)
    REPLAYED = "replayed"  # behind the horizon: inserted at its time, the steps from there fused again
    TOO_LATE = "too_late"
    DUPLICATE = "duplicate"


class Localizer:
    """Error-state EKF over the measurements of ``config.sensors``: see the module docstring."""

    def __init__(self, config: LocalizerConfig, initial: Estimate) -> None:
        """Start from ``initial`` (e.g. ``initial_estimate(...)``)."""
        self._config = config
        self._base = initial
        self._steps: list[Step] = []
        self._stamps: list[float] = []
        self._pending: list[Timed] = []
        self._pending_stamps: list[float] = []
        self._pending_closes: list[bool] = []
        self._keys: set[tuple[str, float]] = set()
        self._newest = initial.stamp
        self._current: Estimate | None = initial
        self._reckoner: DeadReckoner | None = None
        self._last_used: dict[str, float] = {}

    @property
    def config(self) -> LocalizerConfig:
        """The configuration."""
        return self._config

    @property
    def newest(self) -> float:
        """The newest filter time seen (the time of ``latest``)."""
        return self._newest

    @property
    def filtered(self) -> Estimate:
        """The fused estimate at the horizon (after the newest fused step)."""
        return self._steps[-1].after if self._steps else self._base

    @property
    def latest(self) -> Estimate:
        """The current estimate at ``newest``: the fused one dead-reckoned over the buffer (module doc)."""
        if self._current is None:
            self._current = self._dead_reckon()
        return self._current

    @property
    def last_used(self) -> Mapping[str, float]:
        """Filter time of the newest accepted measurement of each source."""
        return self._last_used

    def estimate_at(self, stamp: float) -> Estimate:
        """The current estimate predicted forward to ``stamp`` (not before ``newest``)."""
        last = self.latest
        x, p = predict(last.x, last.p, stamp - last.stamp, self._config.noise, gnss_wander(last.gnss_mode))
        return Estimate(stamp, x, p, last.floor, last.gnss_mode, last.gates)

    def process(self, meas: AnyMeasurement) -> Outcome:
        """Take one measurement at its own (offset-corrected) time; see the module docstring."""
        sensor = self._sensor(meas.source)
        t = meas.stamp + sensor.clock_offset
        fused_until = self.filtered.stamp
        if t < self._newest - self._config.max_lag or t <= self._base.stamp:
            return Outcome.TOO_LATE
        key = (meas.source, t)
        if key in self._keys:
            return Outcome.DUPLICATE
        self._keys.add(key)
        self._current = None
        if t <= fused_until:
            self._reopen(t)
            outcome = Outcome.REPLAYED
        else:
            outcome = Outcome.APPLIED
        i = bisect.bisect_right(self._pending_stamps, t)
        self._pending.insert(i, (t, meas))
        self._pending_stamps.insert(i, t)
        self._pending_closes.insert(i, not aggregatable(meas))
        if self._reckoner is not None and i < self._reckoner.count:
            self._reckoner = None  # inserted before readings it has integrated: start over
        self._newest = max(self._newest, t)
        self._advance(self._newest - self._config.fusion_delay)
        self._prune()
        return outcome

    def flush(self) -> None:
        """Fuse every buffered measurement now (end of a recording: the horizon jumps to ``newest``)."""
        self._advance(math.inf)
        self._current = None

    def _sensor(self, source: str) -> SensorConfig:
        try:
            return self._config.sensors[source]
        except KeyError:
            raise ValueError(f"unknown sensor source {source!r}: add it to LocalizerConfig.sensors") from None

    def _reopen(self, t: float) -> None:
        """Undo the steps from the one holding time ``t`` on: their raw measurements go back to the buffer."""
        i = bisect.bisect_left(self._stamps, t)
        raws = [raw for s in self._steps[i:] for raw in s.raws]
        del self._steps[i:]
        del self._stamps[i:]
        self._pending[:0] = raws
        self._pending_stamps[:0] = [r[0] for r in raws]
        self._pending_closes[:0] = [not aggregatable(m) for _, m in raws]
        self._reckoner = None

    def _advance(self, horizon: float) -> None:
        """Fuse the buffered steps that end at or before ``horizon``."""
        steps, used = fuse_pending(
            self._config, self.filtered, self._pending, self._pending_stamps, self._pending_closes, horizon
        )
        if not used:
            return
        for s in steps:
            self._steps.append(s)
            self._stamps.append(s.stamp)
            self._note_used(s)
        del self._pending[:used]
        del self._pending_stamps[:used]
        del self._pending_closes[:used]
        self._reckoner = None

    def _dead_reckon(self) -> Estimate:
        """The fused estimate carried over the buffer, extending the dead reckoning of the last call."""
        if not self._pending:
            return self.filtered
        dr = self._reckoner
        if dr is None:
            dr = self._reckoner = DeadReckoner(self._config, self.filtered)
        for t, meas in self._pending[dr.count :]:
            dr.add(t, meas)
        return dr.estimate(self._newest)

    def _note_used(self, s: Step) -> None:
        """Remember when each source of ``s`` was last accepted (for the health's active sources)."""
        for source, t in s.accepted:
            if t > self._last_used.get(source, -math.inf):
                self._last_used[source] = t

    def _prune(self) -> None:
        horizon = self._newest - self._config.max_lag
        n = bisect.bisect_left(self._stamps, horizon)
        if n == 0:
            return
        self._base = self._steps[n - 1].after
        for s in self._steps[:n]:
            for t, meas in s.raws:
                self._keys.discard((meas.source, t))
        del self._steps[:n]
        del self._stamps[:n]


def initial_estimate(
    stamp: float,
    pose: Pose2,
    pose_std: tuple[float, float, float] = (10.0, 10.0, 1.0),
    floor: str | None = None,
) -> Estimate:
    """An estimate at rest at ``pose`` with the given 1-σ (m, m, rad) and loose speed and bias priors."""
    x = np.zeros(STATE_DIM)
    x[X], x[Y], x[YAW] = pose.x, pose.y, pose.yaw
    var = np.zeros(STATE_DIM)
    var[X], var[Y], var[YAW] = pose_std[0] ** 2, pose_std[1] ** 2, pose_std[2] ** 2
    var[V], var[W], var[BG], var[A], var[BA], var[DW] = 1.0, 0.25, 0.01**2, 1.0, 0.1**2, 1.0
    var[GE] = var[GN] = DEFAULT_GNSS_ERROR.std**2
    return Estimate(stamp, x, np.diag(var), floor)
