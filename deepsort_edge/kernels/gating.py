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


@numba.njit(cache=True, nogil=True, inline="always")
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


@numba.njit(cache=True, nogil=True)
def mahalanobis_distances(
    projected_means: np.ndarray,
    cholesky_factors: np.ndarray,
    measurements: np.ndarray,
    position_only: bool,
    cutoff: float,
    out: np.ndarray,
) -> None:
    """Write squared distances ``(T, N)`` of ``measurements (N, 4)`` to each track.

    Distances up to ``cutoff`` are exact; a larger one may be written as any
    value above ``cutoff`` (pass ``inf`` for exact values everywhere).
    """
    dims = 2 if position_only else 4
    u = np.empty(4)
    inverse_diagonal = np.empty(4)
    for t in range(projected_means.shape[0]):
        L = cholesky_factors[t]
        for i in range(4):
            inverse_diagonal[i] = 1.0 / L[i, i]
        for n in range(measurements.shape[0]):
            out[t, n] = squared_distance(L, inverse_diagonal, projected_means[t], measurements[n], dims, cutoff, u)
