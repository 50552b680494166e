"""Localization health: active sources, the VDA 5050 localization score, the localized flag."""

import math

import numpy as np
import pytest

from robots.localization.frames import Pose2
from robots.localization.health import HealthConfig, localization_health, position_std, score
from robots.localization.localizer import Estimate, initial_estimate


def estimate(pos_std: float, yaw_std: float = 0.001, stamp: float = 10.0) -> Estimate:
    """An estimate with the given position and heading 1-σ."""
    return initial_estimate(stamp, Pose2(0.0, 0.0, 0.0), (pos_std, pos_std, yaw_std), floor="6")


def test_score_is_one_when_good_zero_when_lost_and_logarithmic_between() -> None:
    """σ ≤ 5 cm scores 1, σ ≥ 2 m scores 0, and the geometric mean of the two scores one half."""
    assert score(0.02, 0.05, 2.0) == 1.0
    assert score(3.0, 0.05, 2.0) == 0.0
    assert score(math.sqrt(0.05 * 2.0), 0.05, 2.0) == pytest.approx(0.5)
    values = [score(s, 0.05, 2.0) for s in np.geomspace(0.05, 2.0, 20)]
    assert values == sorted(values, reverse=True)


def test_health_of_a_well_localized_robot() -> None:
    """A 2 cm / 1 mrad estimate: score 1, localized, its floor and its recently used sources only."""
    used = {"wheel": 9.98, "lidar": 9.5, "gnss": 3.0}
    h = localization_health(estimate(0.02), used)
    assert h.localization_score == 1.0
    assert h.localized
    assert h.active_sources == ("lidar", "wheel")
    assert h.floor == "6"
    assert h.position_std_m == pytest.approx(0.02)


def test_score_follows_the_worse_of_position_and_heading() -> None:
    """Good position but a 0.3 rad heading: the score comes from the heading; lost heading: not localized."""
    h = localization_health(estimate(0.02, yaw_std=0.3), {})
    assert 0.0 < h.localization_score < 0.3
    assert not h.localized
    assert localization_health(estimate(1.0), {}).localization_score == pytest.approx(
        math.log(2.0) / math.log(40.0)
    )


def test_lost_robot_scores_zero_and_is_not_localized() -> None:
    """A 10 m uncertain estimate (no fix yet) scores 0 and is not localized."""
    h = localization_health(estimate(10.0), {"wheel": 10.0})
    assert (h.localization_score, h.localized, h.active_sources) == (0.0, False, ("wheel",))


def test_position_std_is_the_worst_direction() -> None:
    """An elongated covariance (1 m along one diagonal, 1 cm across) reports about 1 m."""
    e = estimate(0.01)
    p = e.p.copy()
    rot = np.array([[1.0, -1.0], [1.0, 1.0]]) / math.sqrt(2.0)
    p[:2, :2] = rot @ np.diag([1.0, 1e-4]) @ rot.T
    e2 = Estimate(e.stamp, e.x.copy(), p, e.floor)
    assert position_std(e2) == pytest.approx(1.0, rel=1e-6)


def test_invalid_health_config_is_refused() -> None:
    """Thresholds in the wrong order or a non-positive window are configuration errors."""
    with pytest.raises(ValueError, match="good_std < lost_std"):
        HealthConfig(good_std=3.0)
    with pytest.raises(ValueError, match="active_window"):
        HealthConfig(active_window=0.0)
