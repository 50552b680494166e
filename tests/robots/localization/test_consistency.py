"""Consistency figures: pose errors, NEES and the two-sided chi-square bounds."""

import math

import numpy as np
import pytest

from robots.localization.consistency import chi2_interval, fraction_inside, nees, pose_error
from robots.localization.frames import Pose2


def test_pose_error_wraps_the_heading() -> None:
    """The heading error across ±π is small, not ~2π."""
    e = pose_error(Pose2(1.0, 2.0, math.pi - 0.01), Pose2(0.5, 2.5, -math.pi + 0.01))
    np.testing.assert_allclose(e, [0.5, -0.5, -0.02], atol=1e-12)


def test_nees_is_the_mahalanobis_square() -> None:
    """eᵀP⁻¹e: 1 σ along each of two independent axes gives 2; correlation is taken into account."""
    assert nees(np.array([0.1, 0.2]), np.diag([0.01, 0.04])) == pytest.approx(2.0)
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    assert nees(np.array([1.0, 1.0]), cov) == pytest.approx(2.0 / 1.9)


def test_chi2_interval_for_three_dof() -> None:
    """The two-sided 95 % interval of χ²(3) is [0.216, 9.348]; bad arguments are refused."""
    lo, hi = chi2_interval(3)
    assert (lo, hi) == (pytest.approx(0.2158, abs=1e-3), pytest.approx(9.3484, abs=1e-3))
    with pytest.raises(ValueError, match="coverage"):
        chi2_interval(3, 1.5)


def test_consistent_errors_are_inside_bounds_95_percent_of_the_time() -> None:
    """Errors drawn from the covariance itself: about 95 % of their NEES inside; errors twice as large
    (an overconfident filter) and half as large (a pessimistic one) fall well short."""
    rng = np.random.default_rng(7)
    cov = np.array([[0.04, 0.01, 0.0], [0.01, 0.09, 0.0], [0.0, 0.0, 0.001]])
    draws = rng.multivariate_normal(np.zeros(3), cov, 4000)
    inside = fraction_inside((nees(e, cov) for e in draws), 3)
    assert inside == pytest.approx(0.95, abs=0.015)
    assert fraction_inside((nees(2 * e, cov) for e in draws), 3) < 0.75
    assert fraction_inside((nees(0.4 * e, cov) for e in draws), 3) < 0.85
    with pytest.raises(ValueError, match="at least one"):
        fraction_inside([], 3)
