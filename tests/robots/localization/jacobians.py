"""Finite-difference Jacobian helper for the localization tests."""

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from robots.localization.state import YAW, wrap


def numeric_jacobian(
    f: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    x: NDArray[np.float64],
    angle_rows: tuple[int, ...] = (),
    eps: float = 1e-6,
) -> NDArray[np.float64]:
    """Central differences of ``f`` at ``x``; rows in ``angle_rows`` are differenced with wrapping."""
    cols = []
    for i in range(len(x)):
        d = np.zeros_like(x)
        d[i] = eps
        diff = f(x + d) - f(x - d)
        for r in angle_rows:
            diff[r] = wrap(float(diff[r]))
        cols.append(diff / (2 * eps))
    return np.stack(cols, axis=1)


__all__ = ["YAW", "numeric_jacobian"]
