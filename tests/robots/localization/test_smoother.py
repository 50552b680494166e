"""The RTS smoother: at least as accurate as the filter, independent of arrival order."""

import numpy as np
import pytest

from robots.localization.frames import Pose2
from robots.localization.localizer import LocalizerConfig, SensorConfig, initial_estimate
from robots.localization.measurements import FloorChange, GnssFix, GnssFixType, Measurement, WheelOdometry
from robots.localization.smoother import smooth


def config() -> LocalizerConfig:
    """Wheel, GNSS and floor sensors at the base."""
    return LocalizerConfig({"wheel": SensorConfig(), "gnss": SensorConfig(), "floor": SensorConfig()})


def stream(seed: int) -> tuple[list[Measurement | FloorChange], dict[float, float]]:
    """A robot driving east at 1 m/s for 20 s: noisy odometry at 50 Hz, float GNSS (30 cm) at 10 Hz.

    Returns the measurements and the true east position by odometry stamp.
    """
    rng = np.random.default_rng(seed)
    out: list[Measurement | FloorChange] = []
    truth: dict[float, float] = {}
    for k in range(1, 1001):
        t = round(k * 0.02, 9)
        truth[t] = t
        out.append(WheelOdometry("wheel", t, 1.0 + rng.normal(0, 0.05), rng.normal(0, 0.05)))
        if k % 5 == 0:
            e, n = rng.normal(0, 0.3, 2)
            out.append(GnssFix("gnss", t + 0.001, t + e, n, GnssFixType.FLOAT))
    return out, truth


def errors(track_stamps: np.ndarray, positions: np.ndarray, truth: dict[float, float]) -> np.ndarray:
    """Position errors at the odometry stamps."""
    rows = [i for i, t in enumerate(track_stamps) if round(float(t), 9) in truth]
    true = np.array([[truth[round(float(track_stamps[i]), 9)], 0.0] for i in rows])
    return np.linalg.norm(positions[rows] - true, axis=1)


def test_smoother_beats_filter_on_straight_drive() -> None:
    """With noisy float GNSS the smoothed RMSE is well below the filter's; its covariance is never larger."""
    meas, truth = stream(1)
    res = smooth(config(), initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (1.0, 1.0, 0.05)), meas)
    f = errors(res.filtered.stamps, res.filtered.positions(), truth)
    s = errors(res.smoothed.stamps, res.smoothed.positions(), truth)
    assert np.sqrt(np.mean(s**2)) < 0.8 * np.sqrt(np.mean(f**2))
    assert np.all(
        np.trace(res.smoothed.p, axis1=1, axis2=2) <= np.trace(res.filtered.p, axis1=1, axis2=2) + 1e-9
    )


def test_last_smoothed_state_is_the_filtered_one() -> None:
    """The backward pass starts from the last filtered state."""
    meas, _ = stream(2)
    res = smooth(config(), initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (1.0, 1.0, 0.05)), meas)
    np.testing.assert_array_equal(res.smoothed.x[-1], res.filtered.x[-1])
    assert len(res.smoothed.stamps) == len(meas)


def test_late_arrival_order_gives_same_result() -> None:
    """Fixes arriving 200 ms late (or shuffled) are smoothed at their own time: same track as in order."""
    meas, _ = stream(3)
    init = initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (1.0, 1.0, 0.05))
    in_order = smooth(config(), init, meas)
    late = sorted(meas, key=lambda m: m.stamp + (0.2 if isinstance(m, GnssFix) else 0.0))
    shuffled = [meas[int(i)] for i in np.random.default_rng(0).permutation(len(meas))]
    for other in (smooth(config(), init, late), smooth(config(), init, shuffled)):
        np.testing.assert_array_equal(other.smoothed.stamps, in_order.smoothed.stamps)
        np.testing.assert_allclose(other.smoothed.x, in_order.smoothed.x, atol=1e-12)


def test_duplicates_dropped_and_floor_carried() -> None:
    """A duplicate measurement is dropped; a floor change is carried in the track."""
    meas, _ = stream(4)
    init = initial_estimate(0.0, Pose2(0.0, 0.0, 0.0), (1.0, 1.0, 0.05))
    res = smooth(config(), init, [*meas[:50], meas[10], FloorChange("floor", 0.5005, "6"), *meas[50:]])
    assert len(res.smoothed.stamps) == len(meas) + 1
    assert res.smoothed.floors[0] is None
    assert res.smoothed.floors[-1] == "6"


def test_empty_stream_and_unknown_source_are_refused() -> None:
    """No measurement, or a source missing from the config, is a ValueError."""
    init = initial_estimate(0.0, Pose2(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="at least one"):
        smooth(config(), init, [])
    with pytest.raises(ValueError, match="unknown sensor source 'uwb'"):
        smooth(config(), init, [WheelOdometry("uwb", 0.1, 0.0, 0.0)])
