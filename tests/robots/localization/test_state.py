"""The process model, its Jacobian and the EKF predict/update steps."""

import numpy as np
import pytest

from robots.localization.state import YAW, ProcessNoise, predict, propagate, update

from .jacobians import numeric_jacobian

STATES = [
    np.array([1.0, 2.0, 0.3, 1.2, 0.4, 0.01]),
    np.array([-5.0, 7.0, 3.0, -0.5, -1.1, -0.02]),
    np.array([0.0, 0.0, -2.0, 0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize("x", STATES)
@pytest.mark.parametrize("dt", [0.01, 0.2])
def test_process_jacobian_matches_finite_differences(x: np.ndarray, dt: float) -> None:
    """F = ∂f/∂x of the unicycle model equals central finite differences."""
    _, f = propagate(x, dt)
    num = numeric_jacobian(lambda s: propagate(s, dt)[0], x, angle_rows=(YAW,))
    np.testing.assert_allclose(f, num, atol=1e-7)


def test_propagate_drives_straight_and_turns() -> None:
    """At 1 m/s heading north for 2 s the robot moves 2 m north; the yaw advances by w·dt."""
    x = np.array([0.0, 0.0, np.pi / 2, 1.0, 0.0, 0.0])
    out, _ = propagate(x, 2.0)
    np.testing.assert_allclose(out[:3], [0.0, 2.0, np.pi / 2], atol=1e-12)


def test_predict_grows_covariance_and_rejects_negative_dt() -> None:
    """Prediction adds process noise (trace grows, stays symmetric); a negative step is refused."""
    p = np.eye(6) * 0.01
    _, pn = predict(STATES[0], p, 0.1, ProcessNoise())
    assert np.trace(pn) > np.trace(p)
    np.testing.assert_allclose(pn, pn.T)
    with pytest.raises(ValueError, match="dt >= 0"):
        predict(STATES[0], p, -0.1, ProcessNoise())


def test_update_shrinks_covariance_and_moves_toward_measurement() -> None:
    """A position update moves the mean toward the measurement and shrinks its variance."""
    x = np.zeros(6)
    p = np.eye(6)
    h = np.zeros((2, 6))
    h[0, 0] = h[1, 1] = 1.0
    xn, pn = update(x, p, np.array([1.0, -1.0]), h, np.eye(2))
    np.testing.assert_allclose(xn[:2], [0.5, -0.5])
    assert pn[0, 0] == pytest.approx(0.5)
    assert np.all(np.linalg.eigvalsh(pn) > 0)


def test_process_noise_rejects_negative_density() -> None:
    """A negative spectral density is a configuration error."""
    with pytest.raises(ValueError, match="slip_psd"):
        ProcessNoise(slip_psd=-1.0)
