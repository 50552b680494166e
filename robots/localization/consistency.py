"""Filter consistency: pose errors, NEES and chi-square bounds.

A consistent filter's normalised estimation error squared ``NEES = eᵀ P⁻¹ e`` (``e`` the true error,
``P`` the filter's covariance of it) is chi-square distributed with ``dim(e)`` degrees of freedom, so it
falls inside the two-sided 95 % interval ``[χ²(0.025), χ²(0.975)]`` 95 % of the time (Bar-Shalom, Li
and Kirubarajan, *Estimation with Applications to Tracking and Navigation*, §5.4). Too often above:
the filter is overconfident; too often below: it is needlessly pessimistic. The same test applies to
the normalised innovation squared (NIS) of each update, with the measurement's dimension.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from robots.localization.frames import Pose2, wrap_angle
from robots.localization.gating import chi2_quantile
from robots.localization.state import Matrix, Vector


def pose_error(estimate: Pose2, truth: Pose2) -> Vector:
    """``(Δx, Δy, Δyaw)`` of an estimate against the truth, the heading difference wrapped."""
    return np.array([estimate.x - truth.x, estimate.y - truth.y, wrap_angle(estimate.yaw - truth.yaw)])


def nees(error: Vector, cov: Matrix) -> float:
    """``eᵀ P⁻¹ e`` for an error ``e`` and its covariance ``P`` (symmetric positive definite)."""
    return float(error @ np.linalg.solve(cov, error))


def chi2_interval(dof: int, coverage: float = 0.95) -> tuple[float, float]:
    """The two-sided chi-square interval holding ``coverage`` of the probability for ``dof``."""
    if not 0.0 < coverage < 1.0 or dof < 1:
        raise ValueError(f"chi2_interval needs 0 < coverage < 1 and dof >= 1, got {coverage}, {dof}")
    tail = 0.5 * (1.0 - coverage)
    return chi2_quantile(tail, dof), chi2_quantile(1.0 - tail, dof)


def fraction_inside(values: Iterable[float], dof: int, coverage: float = 0.95) -> float:
    """The fraction of ``values`` (NEES or NIS with ``dof``) inside the two-sided ``coverage`` interval."""
    v = np.fromiter(values, dtype=float)
    if v.size == 0:
        raise ValueError("fraction_inside needs at least one value")
    lo, hi = chi2_interval(dof, coverage)
    return float(np.mean((v >= lo) & (v <= hi)))
