"""Chi-square innovation gating per source, with hysteresis and recovery after a rejection streak.

A pure state machine: ``step(config, state, nis, dof, residual)`` returns a ``GateDecision`` and the
next ``GateState`` (immutable, so the localizer can keep it in its history and replay it)::

    TRUSTED --NIS > accept_q-------------------> SUSPECT (streak = 1)
    TRUSTED --NIS <= accept_q------------------> TRUSTED            ACCEPT
    SUSPECT --NIS <= rejoin_q (stricter)-------> TRUSTED            ACCEPT
    SUSPECT --otherwise, streak < recover_after> SUSPECT (streak+1) REJECT
    SUSPECT --streak >= recover_after and the
              streak's residuals agree---------> TRUSTED            RECOVER

Hysteresis: once a source is suspect it must pass the stricter ``rejoin_q`` gate to be trusted again.
Recovery: after ``recover_after`` consecutive rejections whose residuals agree with each other (their
spread is within the sensor's noise, so the sensor is steady and the *filter* is what drifted, e.g.
GNSS returning after a long indoor stretch), the decision is ``RECOVER``: the localizer widens its own
covariance along the correction and accepts the measurement, so good GNSS is never locked out.
Scattered residuals (multipath) keep being rejected.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from robots.localization.state import Matrix, Vector


class GateDecision(enum.Enum):
    """What to do with a measurement."""

    ACCEPT = "accept"
    REJECT = "reject"
    RECOVER = "recover"  # accept after widening the filter covariance: the filter had drifted


class GateMode(enum.Enum):
    """Trust in a source."""

    TRUSTED = "trusted"
    SUSPECT = "suspect"


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Gate probabilities (chi-square quantiles) and the recovery streak length."""

    accept_q: float = 0.999
    rejoin_q: float = 0.99
    recover_after: int = 10
    enabled: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.rejoin_q <= self.accept_q < 1.0:
            raise ValueError(f"need 0 < rejoin_q <= accept_q < 1, got {self.rejoin_q}, {self.accept_q}")
        if self.recover_after < 1:
            raise ValueError(f"GateConfig.recover_after must be >= 1, got {self.recover_after}")

    def threshold(self, q: float, dof: int) -> float:
        """The chi-square quantile ``q`` for ``dof`` degrees of freedom."""
        return chi2_quantile(q, dof)


@functools.lru_cache(maxsize=256)
def chi2_quantile(q: float, dof: int) -> float:
    """The chi-square quantile ``q`` for ``dof`` degrees of freedom (memoised: scipy is slow)."""
    return float(chi2.ppf(q, dof))


@dataclass(frozen=True, slots=True)
class GateState:
    """A source's gate: its mode, rejection streak and the residuals rejected in the streak."""

    mode: GateMode = GateMode.TRUSTED
    streak: int = 0
    rejected: tuple[tuple[float, ...], ...] = ()


TRUSTED = GateState()


def residuals_agree(rejected: tuple[tuple[float, ...], ...], r: Matrix, q: float) -> bool:
    """True when the rejected residuals scatter no more than the sensor noise ``r`` explains."""
    ys = np.asarray(rejected, dtype=float)
    dev = ys - ys.mean(axis=0)
    stat = float(np.einsum("ij,jk,ik->", dev, np.linalg.inv(r), dev))
    return stat <= chi2_quantile(q, (len(ys) - 1) * ys.shape[1])


def step(
    config: GateConfig, state: GateState, nis: float, dof: int, residual: Vector, r: Matrix
) -> tuple[GateDecision, GateState]:
    """Advance the gate with one measurement's NIS; see the module docstring for the transitions."""
    if not config.enabled:
        return GateDecision.ACCEPT, TRUSTED
    if state.mode is GateMode.TRUSTED:
        if nis <= config.threshold(config.accept_q, dof):
            return GateDecision.ACCEPT, TRUSTED
        return GateDecision.REJECT, GateState(GateMode.SUSPECT, 1, (tuple(residual),))
    if nis <= config.threshold(config.rejoin_q, dof):
        return GateDecision.ACCEPT, TRUSTED
    rejected = (*state.rejected, tuple(residual))[-config.recover_after :]
    if state.streak >= config.recover_after and residuals_agree(rejected, r, config.accept_q):
        return GateDecision.RECOVER, TRUSTED
    return GateDecision.REJECT, GateState(GateMode.SUSPECT, state.streak + 1, rejected)
