"""The naive baseline: GNSS + wheel odometry, late data fused as current, no gating.

What a default robot_localization-style setup does, for the benchmark to compare against. It uses the
same state, process noise and measurement models as the ``Localizer`` but:

- only ``WheelOdometry`` and ``GnssFix`` are fused; gyro, indoor fixes and floor changes are ignored;
- the filter time is the newest wheel odometry stamp; a GNSS fix is applied at that time, whatever its
  own stamp (late data fused as if current, no history, no replay);
- every fix with a position is accepted (no chi-square gate, no recovery logic). GNSS noise is the
  fix's whole error as a white covariance (``GnssFix.total_covariance``: no GNSS error states, as a
  receiver's reported covariance is used by such setups), so the baseline is not handicapped beyond
  the three points above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from robots.localization.frames import Extrinsics
from robots.localization.localizer import Estimate
from robots.localization.measurements import FloorChange, GnssFix, Measurement, WheelOdometry, residual
from robots.localization.state import GNSS_STATES, ProcessNoise, predict, update


@dataclass(frozen=True, slots=True)
class NaiveConfig:
    """Process noise and the sensors' extrinsics by source name (missing sources: identity)."""

    noise: ProcessNoise = field(default_factory=ProcessNoise)
    extrinsics: Mapping[str, Extrinsics] = field(default_factory=dict)


class NaiveFilter:
    """EKF over wheel odometry and GNSS in arrival order; see the module docstring."""

    def __init__(self, config: NaiveConfig, initial: Estimate) -> None:
        """Start from ``initial``."""
        self._config = config
        self._latest = initial

    @property
    def latest(self) -> Estimate:
        """The current estimate."""
        return self._latest

    def process(self, meas: Measurement | FloorChange) -> bool:
        """Fuse ``meas`` if it is wheel odometry or a GNSS fix; return whether it was used."""
        prior = self._latest
        if isinstance(meas, WheelOdometry):
            t = max(prior.stamp, meas.stamp)
            x, p = predict(prior.x, prior.p, t - prior.stamp, self._config.noise)
        elif isinstance(meas, GnssFix) and meas.observation() is not None:
            t, x, p = prior.stamp, prior.x, prior.p
        else:
            return False
        z = meas.observation()
        if z is None:  # unreachable for the two accepted types; keeps the types exact
            return False
        h, jac = meas.model(x, self._config.extrinsics.get(meas.source, Extrinsics()))
        r = meas.covariance()
        if isinstance(meas, GnssFix):  # no GNSS error states: the whole error is white noise
            h, jac = h - x[GNSS_STATES], jac.copy()
            jac[:, GNSS_STATES] = 0.0
            r = meas.total_covariance()
        x, p = update(x, p, residual(meas, z, h), jac, r)
        self._latest = Estimate(t, x, p, prior.floor)
        return True
