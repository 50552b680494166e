"""The map→odom offset: corrections enter the published pose smoothly, within a per-update bound."""

import math

import pytest

from robots.localization.frames import Pose2, wrap_angle
from robots.localization.offset import BlendConfig, MapOdomOffset, integrate_odometry

DT = 0.02
CFG = BlendConfig(max_rate_mps=0.5, max_step_m=0.0, max_yaw_rate=0.2, max_yaw_step=0.0)


def run(correction: Pose2, steps: int = 400) -> tuple[list[float], list[float], Pose2, Pose2]:
    """Drive a curve; after 1 s the estimate jumps by ``correction`` (applied in the map frame).

    Returns the per-step jumps (position, heading) of the published pose beyond the odometric motion,
    the last published pose and the last estimate.
    """
    blender = MapOdomOffset(CFG)
    odom = Pose2(0.0, 0.0, 0.0)
    truth_offset = Pose2(100.0, 50.0, 0.3)
    blender.reset(odom, truth_offset.compose(odom))
    jumps, yaw_jumps = [], []
    published = blender.map_pose(odom)
    estimate = published
    for k in range(steps):
        odom = integrate_odometry(odom, 1.0, 0.1, DT)
        offset = truth_offset if k < 50 else correction.compose(truth_offset)
        estimate = offset.compose(odom)
        odometric = blender.map_pose(odom)  # where the robot would be with the old offset
        published = blender.update(odom, estimate, DT)
        jumps.append(math.hypot(published.x - odometric.x, published.y - odometric.y))
        yaw_jumps.append(abs(wrap_angle(published.yaw - odometric.yaw)))
    return jumps, yaw_jumps, published, estimate


def test_position_correction_never_jumps_the_published_pose() -> None:
    """A 3 m correction moves the published pose at most max_rate·dt per update, and is fully absorbed."""
    jumps, _, published, estimate = run(Pose2(3.0, -1.0, 0.0))
    assert max(jumps) <= CFG.max_rate_mps * DT + 1e-9
    assert (published.x, published.y) == pytest.approx((estimate.x, estimate.y), abs=1e-6)


def test_heading_correction_far_from_odom_origin_is_bounded() -> None:
    """A heading correction is blended at the robot: neither position nor heading jumps beyond the bound."""
    jumps, yaw_jumps, published, estimate = run(Pose2(0.0, 0.0, 0.5))
    assert max(yaw_jumps) <= CFG.max_yaw_rate * DT + 1e-9
    assert max(jumps) <= CFG.max_rate_mps * DT + 1e-9
    assert published.yaw == pytest.approx(estimate.yaw, abs=1e-6)


def test_reset_makes_published_pose_equal_estimate() -> None:
    """At start-up, reset sets the offset so the published pose is the estimate exactly."""
    blender = MapOdomOffset(CFG)
    odom, estimate = Pose2(2.0, 1.0, 0.4), Pose2(-30.0, 12.0, -2.0)
    blender.reset(odom, estimate)
    got = blender.map_pose(odom)
    assert (got.x, got.y, got.yaw) == pytest.approx((estimate.x, estimate.y, estimate.yaw))


def test_invalid_blend_parameters_are_refused() -> None:
    """Negative rates and a negative time step are errors."""
    with pytest.raises(ValueError, match="max_rate_mps"):
        BlendConfig(max_rate_mps=-1.0)
    with pytest.raises(ValueError, match="dt >= 0"):
        MapOdomOffset(CFG).update(Pose2(0, 0, 0), Pose2(0, 0, 0), -0.1)
