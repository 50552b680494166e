"""The filter state, its process model and the error-state EKF steps (predict, update, inject).

Nominal state ``x`` (6 floats; indices below):

====  =======  ==================================================================
 i    name     meaning
====  =======  ==================================================================
 0    X        east of the robot base in campus ENU (m)
 1    Y        north of the robot base in campus ENU (m)
 2    YAW      heading, counter-clockwise from east (rad, wrapped to [-π, π))
 3    V        forward speed (m/s)
 4    W        yaw rate (rad/s)
 5    BG       gyro bias (rad/s): the gyro reads ``W + BG``
====  =======  ==================================================================

The error state ``δx`` has the same 6 components; it is injected with ``x ⊕ δx`` (plain addition,
the heading wrapped), so in 2D the error-state EKF and an EKF with wrapped heading residuals coincide.
The discrete floor id is carried next to the state by the localizer, not inside ``x``.

Process model (constant speed and turn rate, midpoint heading)::

    φ = yaw + w·dt/2;  x += v·cos φ·dt;  y += v·sin φ·dt;  yaw += w·dt;  v, w, bg constant

Noise model (continuous white noise, first-order discretisation ``Q = G·Qc·Gᵀ·dt``): forward
acceleration ``accel_psd`` (m/s²/√Hz) drives v, yaw acceleration ``yaw_accel_psd`` (rad/s²/√Hz)
drives w, ``gyro_bias_psd`` (rad/s/√s) is the gyro bias random walk, and ``slip_psd`` (m/√s) is a
position diffusion for wheel slip and lateral motion the unicycle model does not explain.
An accelerometer bias state is not modelled yet (no accelerometer measurement is fused).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]
Matrix = NDArray[np.float64]

X, Y, YAW, V, W, BG = range(6)
STATE_DIM = 6
_IDENTITY = np.eye(STATE_DIM)
_IDENTITY.flags.writeable = False


def wrap(a: float) -> float:
    """Wrap an angle into [-π, π)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True, slots=True)
class ProcessNoise:
    """Spectral densities of the process noise (see the module docstring)."""

    accel_psd: float = 0.5
    yaw_accel_psd: float = 0.5
    gyro_bias_psd: float = 1e-4
    slip_psd: float = 0.02

    def __post_init__(self) -> None:
        for name in ("accel_psd", "yaw_accel_psd", "gyro_bias_psd", "slip_psd"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"ProcessNoise.{name} must be >= 0, got {getattr(self, name)!r}")


def propagate(x: Vector, dt: float) -> tuple[Vector, Matrix]:
    """Return the state after ``dt`` seconds and the Jacobian ``F = ∂f/∂x`` at ``x``."""
    yaw, v, w = x[YAW], x[V], x[W]
    phi = yaw + 0.5 * w * dt
    c, s = math.cos(phi), math.sin(phi)
    out = x.copy()
    out[X] += v * c * dt
    out[Y] += v * s * dt
    out[YAW] = wrap(yaw + w * dt)
    f = _IDENTITY.copy()
    f[X, YAW] = -v * s * dt
    f[X, V] = c * dt
    f[X, W] = -v * s * dt * dt * 0.5
    f[Y, YAW] = v * c * dt
    f[Y, V] = s * dt
    f[Y, W] = v * c * dt * dt * 0.5
    f[YAW, W] = dt
    return out, f


def process_covariance(noise: ProcessNoise, dt: float) -> Matrix:
    """Return the discrete process noise ``Q`` for a step of ``dt`` seconds."""
    q = np.zeros((STATE_DIM, STATE_DIM))
    q[X, X] = q[Y, Y] = noise.slip_psd**2 * dt
    q[V, V] = noise.accel_psd**2 * dt
    q[W, W] = noise.yaw_accel_psd**2 * dt
    q[BG, BG] = noise.gyro_bias_psd**2 * dt
    return q


def predict(x: Vector, p: Matrix, dt: float, noise: ProcessNoise) -> tuple[Vector, Matrix]:
    """EKF predict over ``dt >= 0`` seconds: returns the propagated state and covariance."""
    if dt < 0.0:
        raise ValueError(f"predict needs dt >= 0, got {dt}")
    if dt == 0.0:
        return x, p
    xn, f = propagate(x, dt)
    return xn, f @ p @ f.T + process_covariance(noise, dt)


def inject(x: Vector, dx: Vector) -> Vector:
    """Return ``x ⊕ δx``: the error state added to the nominal state, heading wrapped."""
    out = x + dx
    out[YAW] = wrap(float(out[YAW]))
    return out


@dataclass(frozen=True, slots=True)
class Innovation:
    """A linearised measurement against a prior: residual ``y``, ``P·Hᵀ``, ``S⁻¹`` and the NIS."""

    y: Vector
    pht: Matrix
    s_inv: Matrix
    nis: float


def _inverse(s: Matrix) -> Matrix:
    """Inverse of a small SPD matrix; 1×1 and 2×2 in closed form (numpy's overhead dominates)."""
    n = s.shape[0]
    if n == 1:
        return np.array([[1.0 / s[0, 0]]])
    if n == 2:
        a, b, c, d = s[0, 0], s[0, 1], s[1, 0], s[1, 1]
        det = a * d - b * c
        return np.array([[d / det, -b / det], [-c / det, a / det]])
    inv: Matrix = np.linalg.inv(s).astype(np.float64, copy=False)
    return inv


def innovate(residual: Vector, h: Matrix, p: Matrix, r: Matrix) -> Innovation:
    """Linearise: ``S = H P Hᵀ + R`` and the normalised innovation squared ``yᵀ S⁻¹ y``."""
    pht = p @ h.T
    s_inv = _inverse(h @ pht + r)
    return Innovation(residual, pht, s_inv, float(residual @ s_inv @ residual))


def correct(x: Vector, p: Matrix, inn: Innovation) -> tuple[Vector, Matrix]:
    """EKF correction: ``K = P Hᵀ S⁻¹``, ``x ⊕ K y``, ``P − K H P`` (symmetrised)."""
    k = inn.pht @ inn.s_inv
    pn = p - k @ inn.pht.T
    return inject(x, k @ inn.y), 0.5 * (pn + pn.T)


def update(x: Vector, p: Matrix, residual: Vector, h: Matrix, r: Matrix) -> tuple[Vector, Matrix]:
    """EKF update with innovation ``residual`` (already angle-wrapped), Jacobian ``h`` and noise ``r``."""
    return correct(x, p, innovate(residual, h, p, r))
