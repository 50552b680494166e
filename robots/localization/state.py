"""The filter state, its process model and the error-state EKF steps (predict, update, inject).

Nominal state ``x`` (10 floats; indices below):

====  =======  ==================================================================
 i    name     meaning
====  =======  ==================================================================
 0    X        east of the robot base in campus ENU (m)
 1    Y        north of the robot base in campus ENU (m)
 2    YAW      heading, counter-clockwise from east (rad, wrapped to [-π, π))
 3    V        forward speed (m/s)
 4    W        yaw rate (rad/s)
 5    BG       gyro bias (rad/s): the gyro reads ``W + BG``
 6    A        forward acceleration (m/s²)
 7    BA       accelerometer bias (m/s²): the forward accelerometer reads ``A + BA``
 8    GE       GNSS error east (m): the slowly varying part of the receiver's error
 9    GN       GNSS error north (m)
10    DW       yaw acceleration (rad/s²)
====  =======  ==================================================================

The error state ``δx`` has the same components; it is injected with ``x ⊕ δx`` (plain addition, the
heading wrapped), so in 2D the error-state EKF and an EKF with wrapped heading residuals coincide.
The discrete floor id and the GNSS error mode (the fix type the GNSS error states describe) are
carried next to the state by the localizer, not inside ``x``.

**Odometry as input.** When a fusion step has wheel odometry, the pose is moved by the measured
mean speed and yaw rate instead (``propagate_motion``), with the readings' noise as process noise:
the distance and turn over the step are what the encoders and the gyro measured, whatever the speed
and rate states think. The speed, rate and acceleration states then follow the readings as
measurements (they are what control reads) without steering the pose; the gyro bias is learnt from
heading fixes and, at a standstill (where the wheels turn the heading), from the gyro.

Process model (constant forward and yaw acceleration over a step; mean speed and rate over the step,
midpoint heading)::

    v̄ = v + a·dt/2;  w̄ = w + dw·dt/2;  φ = yaw + w̄·dt/2
    x += v̄·cos φ·dt;  y += v̄·sin φ·dt;  yaw += w̄·dt;  v += a·dt;  w += dw·dt
    a, dw, bg, ba constant;  (ge, gn) *= ρ  with  ρ = exp(-dt/τ)   (first-order Gauss–Markov)

The acceleration states matter because wheel encoders and IMUs report *means over their sample
period*, not instantaneous values (see ``measurements``): without them a speed or turn-rate ramp
would leave the prediction one sample behind, a systematic error of ``a·T/2`` in speed and ``ω·T``
in heading per ramp.

Noise model (continuous white noise; the kinematic chains discretised exactly, see
``process_covariance``, the rest to first order): ``slip_psd``
(m/√s) is a position diffusion at any speed and ``slip_rel`` (m/√s per m/s) one proportional to the
speed (wheel slip, lateral motion the unicycle model does not explain); ``accel_psd`` and
``yaw_accel_psd`` drive v and w directly (what the acceleration states do not explain), ``jerk_psd``
drives a, ``yaw_jerk_psd`` drives dw, ``gyro_bias_psd`` and ``accel_bias_psd`` are the bias random
walks. The GNSS error states are Gauss–Markov with the standard deviation ``σ`` and time
constant ``τ`` of the current fix type: ``Q = σ²(1 − ρ²)``. When the fix type changes, the GNSS error
is a new process: ``reset_gnss_error`` forgets the old one (mean 0, variance ``σ²`` of the new type,
no correlation with the rest), which is itself a linear transition (``F = 0``, ``Q = σ²``) that the
smoother's backward pass reproduces.

Functions work on plain numpy arrays and avoid per-call allocations where they can: a step runs at
the odometry rate, and numpy's per-call overhead dominates the arithmetic of a 10×10 filter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]
Matrix = NDArray[np.float64]

X, Y, YAW, V, W, BG, A, BA, GE, GN, DW = range(11)
STATE_DIM = 11
POSE = slice(0, 3)
GNSS_STATES = slice(GE, GN + 1)
_IDENTITY = np.eye(STATE_DIM)
_IDENTITY.flags.writeable = False


def wrap(a: float) -> float:
    """Wrap an angle into [-π, π)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True, slots=True)
class GaussMarkov:
    """A first-order Gauss–Markov error: standard deviation ``std`` and time constant ``tau`` (s)."""

    std: float
    tau: float

    def __post_init__(self) -> None:
        if not (self.std > 0.0 and self.tau > 0.0 and math.isfinite(self.std) and math.isfinite(self.tau)):
            raise ValueError(f"GaussMarkov needs std > 0 and tau > 0, got {self.std!r}, {self.tau!r}")


DEFAULT_GNSS_ERROR = GaussMarkov(0.005, 30.0)
"""The GNSS error process before any fix, and of RTK fixed solutions: millimetres, slowly varying."""


@dataclass(frozen=True, slots=True)
class ProcessNoise:
    """Spectral densities of the process noise (see the module docstring)."""

    accel_psd: float = 0.05
    yaw_accel_psd: float = 0.01
    jerk_psd: float = 0.3
    yaw_jerk_psd: float = 0.3
    gyro_bias_psd: float = 1e-4
    accel_bias_psd: float = 1e-3
    slip_psd: float = 0.0
    slip_rel: float = 0.001

    def __post_init__(self) -> None:
        for name in (
            "accel_psd",
            "yaw_accel_psd",
            "jerk_psd",
            "yaw_jerk_psd",
            "gyro_bias_psd",
            "accel_bias_psd",
            "slip_psd",
            "slip_rel",
        ):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"ProcessNoise.{name} must be >= 0, got {getattr(self, name)!r}")


def propagate(x: Vector, dt: float, rho: float = 1.0) -> tuple[Vector, Matrix]:
    """Return the state after ``dt`` seconds and the Jacobian ``F = ∂f/∂x`` at ``x``.

    ``rho`` is the GNSS error's decay ``exp(-dt/τ)`` over the step.
    """
    yaw, v, w, a, dw = float(x[YAW]), float(x[V]), float(x[W]), float(x[A]), float(x[DW])
    half = 0.5 * dt
    vm = v + a * half
    wm = w + dw * half
    phi = yaw + wm * half
    c, s = math.cos(phi), math.sin(phi)
    out = x.copy()
    out[X] += vm * c * dt
    out[Y] += vm * s * dt
    out[YAW] = wrap(yaw + wm * dt)
    out[V] = v + a * dt
    out[W] = w + dw * dt
    out[GE] *= rho
    out[GN] *= rho
    f = _IDENTITY.copy()
    # ∂φ/∂yaw = 1, ∂φ/∂w = dt/2, ∂φ/∂dw = dt²/4; ∂v̄/∂v = 1, ∂v̄/∂a = dt/2
    vs, vc = vm * s * dt, vm * c * dt
    f[X, YAW] = -vs
    f[X, V] = c * dt
    f[X, A] = c * dt * half
    f[X, W] = -vs * half
    f[X, DW] = -vs * half * half
    f[Y, YAW] = vc
    f[Y, V] = s * dt
    f[Y, A] = s * dt * half
    f[Y, W] = vc * half
    f[Y, DW] = vc * half * half
    f[YAW, W] = dt
    f[YAW, DW] = dt * half
    f[V, A] = dt
    f[W, DW] = dt
    f[GE, GE] = f[GN, GN] = rho
    return out, f


def process_noise_diagonal(
    noise: ProcessNoise, dt: float, speed: float, gnss: GaussMarkov = DEFAULT_GNSS_ERROR
) -> Vector:
    """The noise of the states outside the kinematic chains, as a diagonal (zeros on the chains'
    states: ``X``, ``Y``, ``YAW``, ``V``, ``W``, ``A``, ``DW``), for a step of ``dt`` seconds at ``speed``."""
    pos = (noise.slip_psd**2 + (noise.slip_rel * speed) ** 2) * dt
    g = gnss.std**2 * -math.expm1(-2.0 * dt / gnss.tau)
    q = np.zeros(STATE_DIM)
    q[X] = q[Y] = pos
    q[BG] = noise.gyro_bias_psd**2 * dt
    q[BA] = noise.accel_bias_psd**2 * dt
    q[GE] = q[GN] = g
    return q


def _chain(psd2: float, dt: float, depths: tuple[int, ...]) -> list[list[float]]:
    """Covariance of a chain of integrators driven by white noise of spectral density ``psd2``: the
    states sit ``depths`` integrations above the noise; ``Q_ij = q·T^(dᵢ+dⱼ+1) / (dᵢ! dⱼ! (dᵢ+dⱼ+1))``."""
    fact = (1.0, 1.0, 2.0, 6.0)
    return [
        [psd2 * dt ** (di + dj + 1) / (fact[di] * fact[dj] * (di + dj + 1)) for dj in depths] for di in depths
    ]


def process_covariance(
    x: Vector, noise: ProcessNoise, dt: float, gnss: GaussMarkov = DEFAULT_GNSS_ERROR
) -> Matrix:
    """The discrete process noise ``Q`` for a step of ``dt`` seconds from ``x``.

    The kinematic chains are discretised exactly for white noise (so a measurement of the mean speed
    over the step also tells the displacement): along the heading, distance ← v ← a driven by
    ``jerk_psd`` (and v by ``accel_psd``); across it, offset ← heading ← w ← dw driven by
    ``yaw_jerk_psd`` (and w by ``yaw_accel_psd``), the offset being ``speed × ∫heading``.
    """
    speed = float(x[V])
    q = np.diag(process_noise_diagonal(noise, dt, abs(speed), gnss))
    along = np.add(
        _chain(noise.jerk_psd**2, dt, (2, 1, 0)),
        np.pad(_chain(noise.accel_psd**2, dt, (1, 0)), ((0, 1), (0, 1))),
    )  # over (distance, v, a)
    across = np.add(
        _chain(noise.yaw_jerk_psd**2, dt, (3, 2, 1, 0)),
        np.pad(_chain(noise.yaw_accel_psd**2, dt, (2, 1, 0)), ((0, 1), (0, 1))),
    )  # over (∫heading, heading, w, dw)
    across[0, :] *= speed
    across[:, 0] *= speed
    phi = float(x[YAW]) + 0.5 * float(x[W]) * dt
    u = np.array([math.cos(phi), math.sin(phi)])
    n = np.array([-u[1], u[0]])
    # Embed: rows/columns of the chains in the state, the distance and offset along u and n.
    emb_along = np.zeros((3, STATE_DIM))
    emb_along[0, X], emb_along[0, Y], emb_along[1, V], emb_along[2, A] = u[0], u[1], 1.0, 1.0
    emb_across = np.zeros((4, STATE_DIM))
    emb_across[0, X], emb_across[0, Y] = n[0], n[1]
    emb_across[1, YAW], emb_across[2, W], emb_across[3, DW] = 1.0, 1.0, 1.0
    return q + emb_along.T @ along @ emb_along + emb_across.T @ across @ emb_across


def predict(
    x: Vector, p: Matrix, dt: float, noise: ProcessNoise, gnss: GaussMarkov = DEFAULT_GNSS_ERROR
) -> tuple[Vector, Matrix]:
    """EKF predict over ``dt >= 0`` seconds: returns the propagated state and covariance (new arrays)."""
    if dt < 0.0:
        raise ValueError(f"predict needs dt >= 0, got {dt}")
    if dt == 0.0:
        return x, p
    xn, f = propagate(x, dt, math.exp(-dt / gnss.tau))
    return xn, f @ p @ f.T + process_covariance(x, noise, dt, gnss)


@dataclass(frozen=True, slots=True)
class Motion:
    """Dead-reckoning inputs over a step: the mean speed (m/s) and yaw rate (rad/s) read by the wheels
    and the gyro over it, with their variances. ``gyro``: the rate is a gyro's, which reads ``w + bg``,
    so the bias state is subtracted."""

    speed: float
    speed_var: float
    rate: float
    rate_var: float
    gyro: bool


def propagate_motion(x: Vector, dt: float, motion: Motion, rho: float = 1.0) -> tuple[Vector, Matrix]:
    """Like ``propagate``, but the pose moves by the measured motion (odometry as input), not by the
    speed and rate states: ``φ = yaw + ψ̇·dt/2``, ``x += v·cos φ·dt``, ``y += v·sin φ·dt``, ``yaw += ψ̇·dt``
    with ``ψ̇ = rate − bg`` (gyro) or ``rate`` (wheels). The other states follow the process model."""
    yaw, bg = float(x[YAW]), float(x[BG])
    v = motion.speed
    rate = motion.rate - bg if motion.gyro else motion.rate
    half = 0.5 * dt
    phi = yaw + rate * half
    c, s = math.cos(phi), math.sin(phi)
    out = x.copy()
    out[X] += v * c * dt
    out[Y] += v * s * dt
    out[YAW] = wrap(yaw + rate * dt)
    out[V] += float(x[A]) * dt
    out[W] += float(x[DW]) * dt
    out[GE] *= rho
    out[GN] *= rho
    f = _IDENTITY.copy()
    f[X, YAW] = -v * s * dt
    f[Y, YAW] = v * c * dt
    if motion.gyro:
        f[X, BG] = v * s * dt * half
        f[Y, BG] = -v * c * dt * half
        f[YAW, BG] = -dt
    f[V, A] = dt
    f[W, DW] = dt
    f[GE, GE] = f[GN, GN] = rho
    return out, f


def motion_covariance(
    x: Vector, noise: ProcessNoise, dt: float, motion: Motion, gnss: GaussMarkov = DEFAULT_GNSS_ERROR
) -> Matrix:
    """The process noise of a ``propagate_motion`` step: the readings' noise carried into the pose
    (``G·diag(σv², σψ²)·Gᵀ``, ``G = ∂pose/∂(speed, rate)``), slip, and the process model's noise of the
    speed, rate, acceleration, bias and GNSS error states."""
    q = np.diag(process_noise_diagonal(noise, dt, abs(motion.speed), gnss))
    rate = motion.rate - float(x[BG]) if motion.gyro else motion.rate
    phi = float(x[YAW]) + 0.5 * rate * dt
    c, s = math.cos(phi), math.sin(phi)
    v = motion.speed
    g = np.zeros((3, 2))
    g[0, 0], g[1, 0] = c * dt, s * dt
    g[0, 1], g[1, 1], g[2, 1] = -v * s * dt * dt * 0.5, v * c * dt * dt * 0.5, dt
    q[:3, :3] += g @ np.diag([motion.speed_var, motion.rate_var]) @ g.T
    for rows, jerk, accel in (
        (((V, A)), noise.jerk_psd, noise.accel_psd),
        ((W, DW), noise.yaw_jerk_psd, noise.yaw_accel_psd),
    ):
        chain = _chain(jerk**2, dt, (1, 0))
        chain[0][0] += accel**2 * dt
        for i, ri in enumerate(rows):
            for j, rj in enumerate(rows):
                q[ri, rj] += chain[i][j]
    return q


def predict_motion(
    x: Vector,
    p: Matrix,
    dt: float,
    noise: ProcessNoise,
    motion: Motion,
    gnss: GaussMarkov = DEFAULT_GNSS_ERROR,
) -> tuple[Vector, Matrix]:
    """EKF predict over ``dt >= 0`` seconds with the pose driven by ``motion`` (new arrays)."""
    if dt < 0.0:
        raise ValueError(f"predict_motion needs dt >= 0, got {dt}")
    xn, f = propagate_motion(x, dt, motion, math.exp(-dt / gnss.tau))
    return xn, f @ p @ f.T + motion_covariance(x, noise, dt, motion, gnss)


def reset_gnss_error(x: Vector, p: Matrix, gnss: GaussMarkov) -> tuple[Vector, Matrix]:
    """Forget the GNSS error states: mean 0, variance ``gnss.std²``, uncorrelated (new arrays)."""
    xn = x.copy()
    xn[GNSS_STATES] = 0.0
    pn = p.copy()
    pn[GNSS_STATES, :] = 0.0
    pn[:, GNSS_STATES] = 0.0
    pn[GE, GE] = pn[GN, GN] = gnss.std**2
    return xn, pn


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
        a, b, c, d = float(s[0, 0]), float(s[0, 1]), float(s[1, 0]), float(s[1, 1])
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
    """EKF correction: ``K = P Hᵀ S⁻¹``, ``x ⊕ K y``, ``P − K H P`` (new arrays, symmetrised)."""
    k = inn.pht @ inn.s_inv
    pn = p - k @ inn.pht.T
    return inject(x, k @ inn.y), 0.5 * (pn + pn.T)


def update(x: Vector, p: Matrix, residual: Vector, h: Matrix, r: Matrix) -> tuple[Vector, Matrix]:
    """EKF update with innovation ``residual`` (already angle-wrapped), Jacobian ``h`` and noise ``r``."""
    return correct(x, p, innovate(residual, h, p, r))


def symmetrize(p: Matrix) -> Matrix:
    """``(P + Pᵀ)/2``: removes the rounding asymmetry that repeated updates accumulate."""
    return 0.5 * (p + p.T)
