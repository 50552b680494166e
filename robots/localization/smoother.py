"""Offline Rauch–Tung–Striebel smoother over a recorded measurement stream.

Forward pass: the measurements are sorted by filter time (stamp + the sensor's clock offset; arrival
order does not matter, so late data sits at its own time) and fused in the same steps as online
(``fusion.fuse_pending``: the same EKF step, state, process noise, measurement models, gating and
reading aggregation). The estimate after each step is kept; the backward pass recomputes the
prediction to the next step (``x⁻``, ``P⁻`` and the transition Jacobian ``F``, including the GNSS
error reset when the fix type changed).

Backward pass (RTS), for k = n-2 … 0::

    C_k  = P_k Fᵀ (P⁻_{k+1})⁻¹
    x̂_k  = x_k ⊕ C_k (x̂_{k+1} ⊖ x⁻_{k+1})      (heading difference wrapped)
    P̂_k  = P_k + C_k (P̂_{k+1} − P⁻_{k+1}) C_kᵀ

The result holds the smoothed states at the end of every fusion step; ``SmootherResult.poses_at``
gives the pose at any time in between by dead reckoning from the step before over the step's readings.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from robots.localization.fusion import (
    AnyMeasurement,
    Estimate,
    LocalizerConfig,
    Step,
    Timed,
    aggregatable,
    dead_reckon,
    fuse_pending,
    gnss_wander,
)
from robots.localization.state import (
    GNSS_STATES,
    STATE_DIM,
    YAW,
    Matrix,
    Vector,
    inject,
    motion_covariance,
    process_covariance,
    propagate,
    propagate_motion,
    wrap,
)


@dataclass(frozen=True, slots=True)
class Track:
    """States at ``stamps`` (n,): means ``x`` (n, STATE_DIM), covariances ``p`` (n, STATE_DIM, STATE_DIM)
    and floors."""

    stamps: NDArray[np.float64]
    x: NDArray[np.float64]
    p: NDArray[np.float64]
    floors: tuple[str | None, ...]

    def positions(self) -> NDArray[np.float64]:
        """(east, north) of every state: shape (n, 2)."""
        return self.x[:, :2]


@dataclass(frozen=True, slots=True)
class SmootherResult:
    """The forward filter's track and the smoothed track at the end of each fusion step, the steps
    themselves (raw measurements) and the forward pass's innovations: ``(source, dof, NIS)``."""

    config: LocalizerConfig
    filtered: Track
    smoothed: Track
    steps: tuple[Step, ...]
    innovations: tuple[tuple[str, int, float], ...]

    def poses_at(self, stamps: Iterable[float]) -> NDArray[np.float64]:
        """Smoothed (x, y, yaw) at ``stamps`` (within the recording): shape (n, 3).

        Each is dead-reckoned from the smoothed state of the step before over the raw readings of the
        step that holds the stamp.
        """
        ends = self.smoothed.stamps.tolist()
        out = []
        for t in stamps:
            k = bisect.bisect_left(ends, t)  # the step holding t ends at or after it
            if (k < len(ends) and ends[k] == t) or k == 0:
                k = min(k, len(ends) - 1)
                out.append(self.smoothed.x[k, :3])
                continue
            start = Estimate(ends[k - 1], self.smoothed.x[k - 1].copy(), self.smoothed.p[k - 1].copy(), None)
            raws = self.steps[k].raws if k < len(self.steps) else ()
            e = dead_reckon(self.config, start, raws, t)
            out.append(e.x[:3])
        return np.array(out)


def _filter_time(config: LocalizerConfig, meas: AnyMeasurement) -> float:
    sensor = config.sensors.get(meas.source)
    if sensor is None:
        raise ValueError(f"unknown sensor source {meas.source!r}: add it to LocalizerConfig.sensors")
    return meas.stamp + sensor.clock_offset


def forward(config: LocalizerConfig, initial: Estimate, measurements: Iterable[AnyMeasurement]) -> list[Step]:
    """Run the filter over the measurements in filter-time order, in the online fusion steps.

    Duplicates (same source and time) are dropped, as online.
    """
    timed: list[Timed] = sorted(((_filter_time(config, m), m) for m in measurements), key=lambda tm: tm[0])
    seen: set[tuple[str, float]] = set()
    unique: list[Timed] = []
    for t, meas in timed:
        if (meas.source, t) not in seen:
            seen.add((meas.source, t))
            unique.append((t, meas))
    stamps = [t for t, _ in unique]
    closes = [not aggregatable(m) for _, m in unique]
    steps, _ = fuse_pending(config, initial, unique, stamps, closes, math.inf)
    return steps


def _transition(config: LocalizerConfig, before: Estimate, step: Step) -> tuple[Vector, Matrix, Matrix]:
    """The prediction ``x⁻``, Jacobian ``F`` and ``P⁻`` from ``before`` to the end of ``step``: its
    odometry motion (if any), the process model to the step's end, the GNSS error reset (if the fix
    type changed). Updates inside a step are not redone: ``x⁻`` is linearised at the prediction."""
    gm = gnss_wander(before.gnss_mode)
    x, p, f, t = before.x, before.p, np.eye(STATE_DIM), before.stamp
    if step.motion is not None:
        dt = step.motion_stamp - t
        x_new, f1 = propagate_motion(x, dt, step.motion, math.exp(-dt / gm.tau))
        p = f1 @ p @ f1.T + motion_covariance(x, config.noise, dt, step.motion, gm)
        x, f, t = x_new, f1, step.motion_stamp
    dt = step.stamp - t
    if dt > 0.0:
        x_new, f2 = propagate(x, dt, math.exp(-dt / gm.tau))
        p = f2 @ p @ f2.T + process_covariance(x, config.noise, dt, gm)
        x, f = x_new, f2 @ f
    after = step.after
    if after.gnss_mode is not before.gnss_mode:  # the GNSS error was reset: F = 0, Q = σ² for it
        f[GNSS_STATES, :] = 0.0
        x = x.copy()
        x[GNSS_STATES] = 0.0
        p = p.copy()
        p[GNSS_STATES, :] = 0.0
        p[:, GNSS_STATES] = 0.0
        std = gnss_wander(after.gnss_mode).std
        p[GNSS_STATES, GNSS_STATES] = np.eye(2) * std**2
    return x, f, p


def _backward(config: LocalizerConfig, steps: list[Step]) -> tuple[list[Vector], list[Matrix]]:
    est = [s.after for s in steps]
    n = len(est)
    xs: list[Vector] = [est[-1].x.copy()] * n
    ps: list[Matrix] = [est[-1].p.copy()] * n
    for k in range(n - 2, -1, -1):
        xk, pk = est[k].x, est[k].p
        x_pred, f, p_pred = _transition(config, est[k], steps[k + 1])
        # C = P Fᵀ P⁻⁻¹, solved rather than inverted: P⁻ C ᵀ = F P (both symmetric).
        c = np.linalg.solve(p_pred, f @ pk).T
        diff = xs[k + 1] - x_pred
        diff[YAW] = wrap(float(diff[YAW]))
        xs[k] = inject(xk, c @ diff)
        pn = pk + c @ (ps[k + 1] - p_pred) @ c.T
        ps[k] = 0.5 * (pn + pn.T)
    return xs, ps


def _track(est: list[Estimate], xs: list[Vector], ps: list[Matrix]) -> Track:
    return Track(np.array([e.stamp for e in est]), np.array(xs), np.array(ps), tuple(e.floor for e in est))


def smooth(
    config: LocalizerConfig, initial: Estimate, measurements: Iterable[AnyMeasurement]
) -> SmootherResult:
    """Forward filter then RTS backward pass over ``measurements`` (any arrival order)."""
    steps = forward(config, initial, measurements)
    if not steps:
        raise ValueError("smooth needs at least one measurement")
    est = [s.after for s in steps]
    filtered = _track(est, [e.x for e in est], [e.p for e in est])
    xs, ps = _backward(config, steps)
    innovations = tuple(i for s in steps for i in s.innovations)
    return SmootherResult(config, filtered, _track(est, xs, ps), tuple(steps), innovations)
