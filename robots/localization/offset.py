"""The map→odom offset: a continuous odometry-frame pose for control, corrections blended in smoothly.

Control uses the odometry-frame pose, which only integrates wheel odometry and so never jumps. The map
pose published is ``offset ∘ odom``. When the filter's estimate moves (a fix arrives), the offset is not
set to the new value at once: the published map pose of the robot moves toward the estimate by at most
``max_step_m + max_rate_mps·dt`` metres and ``max_yaw_step + max_yaw_rate·dt`` radians per update, beyond
the robot's own odometric motion. Blending is done at the robot (not at the odom origin), so a heading
correction does not swing the published pose around a far-away odom origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robots.localization.frames import Pose2, wrap_angle


@dataclass(frozen=True, slots=True)
class BlendConfig:
    """Per-update limits on how fast a correction enters the published map pose."""

    max_rate_mps: float = 0.5
    max_step_m: float = 0.0
    max_yaw_rate: float = 0.2
    max_yaw_step: float = 0.0

    def __post_init__(self) -> None:
        for name in ("max_rate_mps", "max_step_m", "max_yaw_rate", "max_yaw_step"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"BlendConfig.{name} must be >= 0, got {getattr(self, name)!r}")


def integrate_odometry(pose: Pose2, speed: float, yaw_rate: float, dt: float) -> Pose2:
    """Dead-reckon the odometry-frame pose over ``dt`` with the midpoint heading."""
    phi = pose.yaw + 0.5 * yaw_rate * dt
    return Pose2(
        pose.x + speed * math.cos(phi) * dt,
        pose.y + speed * math.sin(phi) * dt,
        wrap_angle(pose.yaw + yaw_rate * dt),
    )


class MapOdomOffset:
    """Holds the map→odom offset and moves it toward the filter's estimate at a limited rate."""

    def __init__(self, config: BlendConfig, offset: Pose2 | None = None) -> None:
        """Start from ``offset`` (identity by default); the first ``reset`` usually sets it."""
        self._config = config
        self._offset = offset or Pose2(0.0, 0.0, 0.0)

    @property
    def offset(self) -> Pose2:
        """The current map→odom transform."""
        return self._offset

    def reset(self, odom: Pose2, estimate: Pose2) -> None:
        """Jump the offset so the published pose equals ``estimate`` (at start-up only)."""
        self._offset = estimate.compose(odom.inverse())

    def map_pose(self, odom: Pose2) -> Pose2:
        """The published map pose for an odometry-frame pose."""
        return self._offset.compose(odom)

    def update(self, odom: Pose2, estimate: Pose2, dt: float) -> Pose2:
        """Blend toward ``estimate`` (map pose of the robot now, odometry pose ``odom``) over ``dt`` s.

        Returns the published map pose, which differs from ``map_pose(odom)`` before the update by at
        most the configured step in position and heading.
        """
        if dt < 0.0:
            raise ValueError(f"MapOdomOffset.update needs dt >= 0, got {dt}")
        cfg = self._config
        now = self.map_pose(odom)
        dx, dy = estimate.x - now.x, estimate.y - now.y
        dist = math.hypot(dx, dy)
        lim = cfg.max_step_m + cfg.max_rate_mps * dt
        scale = 1.0 if dist <= lim else lim / dist
        dyaw = wrap_angle(estimate.yaw - now.yaw)
        ylim = cfg.max_yaw_step + cfg.max_yaw_rate * dt
        dyaw = max(-ylim, min(ylim, dyaw))
        published = Pose2(now.x + dx * scale, now.y + dy * scale, wrap_angle(now.yaw + dyaw))
        self._offset = published.compose(odom.inverse())
        return published
