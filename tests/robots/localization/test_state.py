"""The process model, its Jacobian, the exact noise discretisation and the EKF predict/update steps."""

import math

import numpy as np
import pytest

from robots.localization.state import (
    DEFAULT_GNSS_ERROR,
    GE,
    GN,
    STATE_DIM,
    YAW,
    A,
    GaussMarkov,
    ProcessNoise,
    V,
    W,
    X,
    Y,
    predict,
    process_covariance,
    propagate,
    reset_gnss_error,
    update,
)

from .jacobians import numeric_jacobian

STATES = [
    np.array([1.0, 2.0, 0.3, 1.2, 0.4, 0.01, 0.5, 0.02, 0.3, -0.2, 0.8]),
    np.array([-5.0, 7.0, 3.0, -0.5, -1.1, -0.02, -1.0, 0.0, 0.0, 0.0, -2.0]),
    np.zeros(STATE_DIM),
]


@pytest.mark.parametrize("x", STATES)
@pytest.mark.parametrize("dt", [0.01, 0.2])
def test_process_jacobian_matches_finite_differences(x: np.ndarray, dt: float) -> None:
    """F = ∂f/∂x of the motion model (accelerations, GNSS error decay) equals central differences."""
    rho = math.exp(-dt / 10.0)
    _, f = propagate(x, dt, rho)
    num = numeric_jacobian(lambda s: propagate(s, dt, rho)[0], x, angle_rows=(YAW,))
    np.testing.assert_allclose(f, num, atol=1e-7)


def test_propagate_drives_straight_turns_and_accelerates() -> None:
    """North at 1 m/s for 2 s: 2 m north; accelerating at 0.5 m/s² adds a·t²/2 and v grows by a·t."""
    x = np.zeros(STATE_DIM)
    x[YAW], x[V] = math.pi / 2, 1.0
    out, _ = propagate(x, 2.0)
    np.testing.assert_allclose(out[[X, Y, YAW]], [0.0, 2.0, math.pi / 2], atol=1e-12)
    x[A] = 0.5
    out, _ = propagate(x, 2.0)
    assert out[Y] == pytest.approx(2.0 + 0.5 * 0.5 * 4.0)
    assert out[V] == pytest.approx(2.0)


def test_gnss_error_states_decay_with_rho() -> None:
    """The Gauss–Markov GNSS error states are multiplied by ρ = exp(-dt/τ)."""
    x = np.zeros(STATE_DIM)
    x[GE], x[GN] = 1.0, -2.0
    out, _ = propagate(x, 0.1, 0.5)
    np.testing.assert_allclose(out[[GE, GN]], [0.5, -1.0])


def test_kinematic_noise_is_discretised_exactly() -> None:
    """Q of one 0.1 s step equals the covariance built from 2000 tiny steps: the kinematic chains and the
    Gauss–Markov GNSS error are discretised exactly."""
    noise = ProcessNoise(accel_psd=0.2, yaw_accel_psd=0.1, jerk_psd=1.0, yaw_jerk_psd=2.0)
    x = np.zeros(STATE_DIM)
    x[V], x[YAW] = 1.5, 0.4
    n, dt = 2000, 0.1
    p = np.zeros((STATE_DIM, STATE_DIM))
    for _ in range(n):
        xs = x.copy()
        xs[[A, W]] = 0.0  # the chains' noise only: keep the heading fixed over the step
        _, f = propagate(xs, dt / n, math.exp(-dt / n / DEFAULT_GNSS_ERROR.tau))
        p = f @ p @ f.T + process_covariance(xs, noise, dt / n)
    np.testing.assert_allclose(process_covariance(x, noise, dt), p, rtol=2e-3, atol=1e-12)


def test_predict_grows_covariance_and_rejects_negative_dt() -> None:
    """Prediction adds process noise (trace grows, stays symmetric); a negative step is refused."""
    p = np.eye(STATE_DIM) * 0.01
    _, pn = predict(STATES[0], p, 0.1, ProcessNoise())
    assert np.trace(pn) > np.trace(p)
    np.testing.assert_allclose(pn, pn.T, atol=1e-15)
    with pytest.raises(ValueError, match="dt >= 0"):
        predict(STATES[0], p, -0.1, ProcessNoise())


def test_reset_forgets_the_gnss_error() -> None:
    """A reset sets the GNSS error to 0 with the new variance and no correlation with the rest."""
    p = np.full((STATE_DIM, STATE_DIM), 0.01) + np.eye(STATE_DIM)
    x = np.ones(STATE_DIM)
    xn, pn = reset_gnss_error(x, p, GaussMarkov(0.3, 10.0))
    assert xn[GE] == xn[GN] == 0.0
    assert pn[GE, GE] == pytest.approx(0.09)
    assert pn[GE, GN] == 0.0
    assert np.all(pn[GE, :GE] == 0.0) and np.all(pn[:GE, GN] == 0.0)
    np.testing.assert_array_equal(pn[:GE, :GE], p[:GE, :GE])


def test_update_shrinks_covariance_and_moves_toward_measurement() -> None:
    """A position update moves the mean toward the measurement and shrinks its variance."""
    x = np.zeros(STATE_DIM)
    p = np.eye(STATE_DIM)
    h = np.zeros((2, STATE_DIM))
    h[0, X] = h[1, Y] = 1.0
    xn, pn = update(x, p, np.array([1.0, -1.0]), h, np.eye(2))
    np.testing.assert_allclose(xn[:2], [0.5, -0.5])
    assert pn[0, 0] == pytest.approx(0.5)
    assert np.all(np.linalg.eigvalsh(pn) > 0)


def test_invalid_noise_parameters_are_refused() -> None:
    """A negative spectral density or a non-positive Gauss–Markov σ or τ is a configuration error."""
    with pytest.raises(ValueError, match="slip_psd"):
        ProcessNoise(slip_psd=-1.0)
    with pytest.raises(ValueError, match="GaussMarkov"):
        GaussMarkov(0.0, 1.0)
    assert DEFAULT_GNSS_ERROR.std > 0.0
