"""Localization health for VDA 5050 (``localizationScore``, ``positionInitialized``) and diagnostics.

``localization_health(estimate, last_used, config)`` is pure: it reads the estimate's covariance and
when each source was last accepted.

**Active sources**: the sources with a measurement accepted by the filter in the last
``active_window`` seconds (of filter time), sorted by name.

**Score** (VDA 5050 ``localizationScore``, 0 = position unknown, 1 = position known). It is computed
from the filter's own covariance, which the benchmark checks for consistency (NEES), so the score
means what it says::

    σ_p = √λmax(P_xy)   (the 1-σ of the position error along its worst direction)
    σ_ψ = √P_yaw
    s(σ; good, lost) = 1 if σ ≤ good, 0 if σ ≥ lost, else log(lost/σ) / log(lost/good)
    score = min(s(σ_p; good_std, lost_std), s(σ_ψ; good_yaw_std, lost_yaw_std))

With the defaults a robot on RTK fixed or a lidar scan match (σ ≈ 1–3 cm) scores 1, one on float or
UWB (≈ 0.15–0.3 m) about 0.5–0.7, one dead-reckoning for a minute or on single GNSS (≈ 1–2 m) near 0.
The logarithm makes the score fall evenly per factor of growth of the uncertainty.

**Localized** (VDA 5050 ``positionInitialized``): ``σ_p ≤ localized_std`` and ``σ_ψ ≤ localized_yaw_std``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from robots.localization.localizer import Estimate
from robots.localization.state import YAW, X, Y


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """Thresholds of the health figures (metres, radians, seconds; see the module docstring)."""

    active_window: float = 1.0
    good_std: float = 0.05
    lost_std: float = 2.0
    good_yaw_std: float = 0.02
    lost_yaw_std: float = 0.5
    localized_std: float = 0.5
    localized_yaw_std: float = 0.2

    def __post_init__(self) -> None:
        if not self.active_window > 0.0:
            raise ValueError(f"HealthConfig.active_window must be > 0, got {self.active_window!r}")
        if not 0.0 < self.good_std < self.lost_std:
            raise ValueError(
                f"HealthConfig needs 0 < good_std < lost_std, got {self.good_std}, {self.lost_std}"
            )
        if not 0.0 < self.good_yaw_std < self.lost_yaw_std:
            raise ValueError(
                "HealthConfig needs 0 < good_yaw_std < lost_yaw_std, "
                f"got {self.good_yaw_std}, {self.lost_yaw_std}"
            )
        if not (self.localized_std > 0.0 and self.localized_yaw_std > 0.0):
            raise ValueError("HealthConfig.localized_std and localized_yaw_std must be > 0")


@dataclass(frozen=True, slots=True)
class Health:
    """What the robot reports about its localization (see the module docstring)."""

    stamp: float
    active_sources: tuple[str, ...]
    localization_score: float
    localized: bool
    position_std_m: float
    yaw_std_rad: float
    floor: str | None


def position_std(estimate: Estimate) -> float:
    """``√λmax`` of the 2×2 position covariance: the position 1-σ along its worst direction."""
    a, b, d = float(estimate.p[X, X]), float(estimate.p[X, Y]), float(estimate.p[Y, Y])
    lam = 0.5 * (a + d) + math.sqrt(0.25 * (a - d) ** 2 + b * b)
    return math.sqrt(max(lam, 0.0))


def score(std: float, good: float, lost: float) -> float:
    """1 at or below ``good``, 0 at or above ``lost``, logarithmic in between (module docstring)."""
    if std <= good:
        return 1.0
    if std >= lost:
        return 0.0
    return math.log(lost / std) / math.log(lost / good)


def localization_health(
    estimate: Estimate, last_used: Mapping[str, float], config: HealthConfig | None = None
) -> Health:
    """The health of ``estimate``; ``last_used`` maps each source to the filter time it was last accepted."""
    cfg = config or HealthConfig()
    sigma_p = position_std(estimate)
    sigma_yaw = math.sqrt(max(float(estimate.p[YAW, YAW]), 0.0))
    since = estimate.stamp - cfg.active_window
    active = tuple(sorted(source for source, t in last_used.items() if t >= since))
    value = min(
        score(sigma_p, cfg.good_std, cfg.lost_std), score(sigma_yaw, cfg.good_yaw_std, cfg.lost_yaw_std)
    )
    localized = sigma_p <= cfg.localized_std and sigma_yaw <= cfg.localized_yaw_std
    return Health(estimate.stamp, active, value, localized, sigma_p, sigma_yaw, estimate.floor)
