"""Squared Mahalanobis distances between tracks and detections, and the gate.

The distance uses the Cholesky factor ``L`` of each track's innovation
covariance S: solve ``L u = z - Hx`` and take ``|u|^2``. Forward substitution
fills u in order, so the position-only distance (the leading 2x2 block of S)
is just the first two terms of the same sum. The terms are non-negative, so
a pair can stop as soon as its partial sum passes the cutoff: in a crowded
frame nearly every pair is far apart and stops after one term.
"""

from __future__ import annotations

import numba
import numpy as np

# 0.95 quantiles of the chi-square distribution, by degrees of freedom.
CHI2_095 = {1: 3.8415, 2: 5.9915, 3: 7.8147, 4: 9.4877, 5: 11.070, 6: 12.592, 7: 14.067, 8: 15.507, 9: 16.919}


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def squared_distance(
    L: np.ndarray, inverse_diagonal: np.ndarray, mean: np.ndarray, z: np.ndarray, dims: int, cutoff: float,
    u: np.ndarray,
) -> float:
    """Squared distance of measurement ``z`` to ``mean`` under Cholesky factor ``L`` (first ``dims`` terms).

    Exact up to ``cutoff``; a larger distance may come back as any value above it.
    ``inverse_diagonal`` holds ``1 / L[i, i]``; ``u`` is scratch of length 4.
    """
    total = 0.0
    for i in range(dims):
        acc = z[i] - mean[i]
        for k in range(i):
            acc -= L[i, k] * u[k]
        u[i] = acc * inverse_diagonal[i]
        total += u[i] * u[i]
        if total > cutoff:
            break
    return total
