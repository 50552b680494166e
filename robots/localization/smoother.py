"""Offline Rauch–Tung–Striebel smoother over a recorded measurement stream.

Forward pass: the measurements are sorted by filter time (stamp + the sensor's clock offset; arrival
order does not matter, so late data sits at its own time) and fused by a ``Localizer`` (same state,
process noise, measurement models and gating as online). For each step the filtered estimate is kept
and the prediction to the next step (``x⁻``, ``P⁻`` and the transition Jacobian ``F``) is stored.

Backward pass (RTS), for k = n-2 … 0::

    C_k  = P_k Fᵀ (P⁻_{k+1})⁻¹
    x̂_k  = x_k ⊕ C_k (x̂_{k+1} ⊖ x⁻_{k+1})      (heading difference wrapped)
    P̂_k  = P_k + C_k (P̂_{k+1} − P⁻_{k+1}) C_kᵀ

The result holds the smoothed states at every fused measurement time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from robots.localization.localizer import Estimate, Localizer, LocalizerConfig, Outcome
from robots.localization.measurements import FloorChange, Measurement
from robots.localization.state import YAW, Matrix, Vector, inject, process_covariance, propagate, wrap


@dataclass(frozen=True, slots=True)
class Track:
    """States at ``stamps`` (n,): means ``x`` (n, 6), covariances ``p`` (n, 6, 6), floors and sources."""

    stamps: NDArray[np.float64]
    x: NDArray[np.float64]
    p: NDArray[np.float64]
    floors: tuple[str | None, ...]
    sources: tuple[str, ...]

    def positions(self) -> NDArray[np.float64]:
        """(east, north) of every state: shape (n, 2)."""
        return self.x[:, :2]


@dataclass(frozen=True, slots=True)
class SmootherResult:
    """The forward filter's track and the smoothed track, at the same stamps."""

    filtered: Track
    smoothed: Track


def _filter_time(config: LocalizerConfig, meas: Measurement | FloorChange) -> float:
    sensor = config.sensors.get(meas.source)
    if sensor is None:
        raise ValueError(f"unknown sensor source {meas.source!r}: add it to LocalizerConfig.sensors")
    return meas.stamp + sensor.clock_offset


def forward(
    config: LocalizerConfig, initial: Estimate, measurements: Iterable[Measurement | FloorChange]
) -> tuple[list[Estimate], list[str]]:
    """Run the filter over the measurements in filter-time order; return each step's estimate and source.

    Duplicates (same source and time) are dropped, as online.
    """
    ordered = sorted(measurements, key=lambda m: _filter_time(config, m))
    loc = Localizer(config, initial)
    estimates: list[Estimate] = []
    sources: list[str] = []
    for meas in ordered:
        if loc.process(meas) is Outcome.DUPLICATE:
            continue
        estimates.append(loc.latest)
        sources.append(meas.source)
    return estimates, sources


def _backward(config: LocalizerConfig, est: list[Estimate]) -> tuple[list[Vector], list[Matrix]]:
    n = len(est)
    xs: list[Vector] = [est[-1].x.copy()] * n
    ps: list[Matrix] = [est[-1].p.copy()] * n
    for k in range(n - 2, -1, -1):
        xk, pk = est[k].x, est[k].p
        dt = est[k + 1].stamp - est[k].stamp
        x_pred, f = propagate(xk, dt)
        p_pred = f @ pk @ f.T + process_covariance(config.noise, dt) if dt > 0.0 else pk
        # C = P Fᵀ P⁻⁻¹, solved rather than inverted: P⁻ C ᵀ = F P (both symmetric).
        c = np.linalg.solve(p_pred, f @ pk).T
        diff = xs[k + 1] - x_pred
        diff[YAW] = wrap(float(diff[YAW]))
        xs[k] = inject(xk, c @ diff)
        pn = pk + c @ (ps[k + 1] - p_pred) @ c.T
        ps[k] = 0.5 * (pn + pn.T)
    return xs, ps


def _track(est: list[Estimate], xs: list[Vector], ps: list[Matrix], sources: list[str]) -> Track:
    return Track(
        np.array([e.stamp for e in est]),
        np.array(xs),
        np.array(ps),
        tuple(e.floor for e in est),
        tuple(sources),
    )


def smooth(
    config: LocalizerConfig, initial: Estimate, measurements: Iterable[Measurement | FloorChange]
) -> SmootherResult:
    """Forward filter then RTS backward pass over ``measurements`` (any arrival order)."""
    est, sources = forward(config, initial, measurements)
    if not est:
        raise ValueError("smooth needs at least one measurement")
    filtered = _track(est, [e.x for e in est], [e.p for e in est], sources)
    xs, ps = _backward(config, est)
    return SmootherResult(filtered, _track(est, xs, ps, sources))
