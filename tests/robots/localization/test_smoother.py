"""The RTS smoother: more accurate than the filter, independent of arrival order, same steps as online."""

import numpy as np
import pytest

from robots.localization.frames import Pose2
from robots.localization.gating import GateConfig
from robots.localization.localizer import Estimate, Localizer, LocalizerConfig, SensorConfig, initial_estimate
from robots.localization.measurements import FloorChange, GnssFix, GnssFixType, Measurement, WheelOdometry
from robots.localization.smoother import smooth


def config() -> LocalizerConfig:
    """Wheel (ungated), GNSS and floor sensors at the base."""
    ungated = SensorConfig(gate=GateConfig(enabled=False))
    return LocalizerConfig({"wheel": ungated, "gnss": SensorConfig(), "floor": SensorConfig()})


def initial() -> Estimate:
    """At the origin facing east, 1 m / 0.05 rad uncertain."""
    return initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (1.0, 1.0, 0.05))


def stream(seed: int) -> list[Measurement | FloorChange]:
    """A robot driving east at 1 m/s for 20 s: noisy wheel odometry at 50 Hz (20 ms means), GNSS with
    30 cm white noise (as the receiver reports) at 10 Hz, 1 ms after the odometry. The true position at
    ``t`` is ``(t, 0)``."""
    rng = np.random.default_rng(seed)
    out: list[Measurement | FloorChange] = []
    for k in range(1, 1001):
        t = round(k * 0.02, 9)
        out.append(
            WheelOdometry("wheel", t, 1.0 + rng.normal(0, 0.05), rng.normal(0, 0.01), 0.05, 0.01, 0.02)
        )
        if k % 5 == 0:
            e, n = rng.normal(0, 0.3, 2)
            out.append(GnssFix("gnss", t + 0.001, t + e, n, GnssFixType.FIXED, 0.3))
    return out


def rmse(positions: np.ndarray, stamps: np.ndarray) -> float:
    """Position RMSE against the truth ``(t, 0)``."""
    return float(np.sqrt(np.mean((positions[:, 0] - stamps) ** 2 + positions[:, 1] ** 2)))


def test_smoother_beats_filter_on_straight_drive() -> None:
    """With noisy GNSS the smoothed RMSE is well below the filter's; its covariance is never larger."""
    res = smooth(config(), initial(), stream(1))
    t = res.smoothed.stamps
    assert rmse(res.smoothed.positions(), t) < 0.8 * rmse(res.filtered.positions(), t)
    traces = np.trace(res.smoothed.p, axis1=1, axis2=2), np.trace(res.filtered.p, axis1=1, axis2=2)
    assert np.all(traces[0] <= traces[1] + 1e-9)


def test_forward_pass_is_the_online_filter() -> None:
    """The smoother's forward pass fuses the same steps as the online localizer (flushed)."""
    meas = stream(2)
    res = smooth(config(), initial(), meas)
    loc = Localizer(config(), initial())
    for m in meas:
        loc.process(m)
    loc.flush()
    np.testing.assert_allclose(res.filtered.x[-1], loc.filtered.x, atol=1e-12)
    assert res.filtered.stamps[-1] == loc.filtered.stamp


def test_last_smoothed_state_is_the_filtered_one_and_steps_aggregate() -> None:
    """The backward pass starts from the last filtered state; 50 Hz odometry is fused in 0.1 s steps,
    each fix in a step of its own (it falls just after a cell's end)."""
    res = smooth(config(), initial(), stream(2))
    np.testing.assert_array_equal(res.smoothed.x[-1], res.filtered.x[-1])
    assert len(res.steps) == 400
    assert {len(s.raws) for s in res.steps} == {1, 5}


def test_late_arrival_order_gives_same_result() -> None:
    """Fixes arriving 200 ms late (or shuffled) are smoothed at their own time: same track as in order."""
    meas = stream(3)
    in_order = smooth(config(), initial(), meas)
    late = sorted(meas, key=lambda m: m.stamp + (0.2 if isinstance(m, GnssFix) else 0.0))
    shuffled = [meas[int(i)] for i in np.random.default_rng(0).permutation(len(meas))]
    for other in (smooth(config(), initial(), late), smooth(config(), initial(), shuffled)):
        np.testing.assert_array_equal(other.smoothed.stamps, in_order.smoothed.stamps)
        np.testing.assert_allclose(other.smoothed.x, in_order.smoothed.x, atol=1e-12)


def test_poses_between_steps_are_dead_reckoned() -> None:
    """poses_at gives the smoothed pose at any stamp; between step ends it follows the odometry."""
    res = smooth(config(), initial(), stream(4))
    stamps = np.array([1.02, 1.04, 1.06, 5.5])
    poses = res.poses_at(stamps)
    assert poses.shape == (4, 3)
    np.testing.assert_allclose(poses[:, 0], stamps, atol=0.15)
    assert np.all(np.diff(poses[:3, 0]) > 0.01)


def test_duplicates_dropped_and_floor_carried() -> None:
    """A duplicate measurement is dropped; a floor change is carried in the track."""
    meas = stream(4)
    res = smooth(config(), initial(), [*meas[:50], meas[10], FloorChange("floor", 0.5005, "6"), *meas[50:]])
    raws = sum(len(s.raws) for s in res.steps)
    assert raws == len(meas) + 1
    assert res.smoothed.floors[0] is None
    assert res.smoothed.floors[-1] == "6"


def test_empty_stream_and_unknown_source_are_refused() -> None:
    """No measurement, or a source missing from the config, is a ValueError."""
    with pytest.raises(ValueError, match="at least one"):
        smooth(config(), initial(), [])
    with pytest.raises(ValueError, match="unknown sensor source 'uwb'"):
        smooth(config(), initial(), [WheelOdometry("uwb", 0.1, 0.0, 0.0)])
