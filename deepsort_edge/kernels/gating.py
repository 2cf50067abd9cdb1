"""Squared Mahalanobis distances between tracks and detections, and the gate.

The distance uses the Cholesky factor ``L`` of each track's innovation
covariance S: solve ``L u = z - Hx`` and take ``|u|^2``. Forward substitution
fills u in order, so the position-only distance (the leading 2x2 block of S)
is just the first two terms of the same sum. The terms are non-negative, so
a pair can stop as soon as its partial sum passes the cutoff: in a crowded
frame nearly every pair is far apart and stops after one term.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel

# 0.95 quantiles of the chi-square distribution, by degrees of freedom.
CHI2_095 = {1: 3.8415, 2: 5.9915, 3: 7.8147, 4: 9.4877, 5: 11.070, 6: 12.592, 7: 14.067, 8: 15.507, 9: 16.919}


@kernel
def gate_factor(L: np.ndarray, inverse_diagonal: np.ndarray, mean: np.ndarray) -> tuple:
    """One track's part of :func:`squared_distance` as a tuple of 14 numbers.

    ``L`` is the Cholesky factor of the innovation covariance, ``inverse_diagonal``
    holds ``1 / L[i, i]`` and ``mean`` the projected mean (xyah). Plain numbers
    rather than arrays: an array handed to a helper inside a per-pair loop costs
    two atomic reference-count updates per call, more than the distance itself.
    """
    return (
        mean[0], mean[1], mean[2], mean[3],
        inverse_diagonal[0], inverse_diagonal[1], inverse_diagonal[2], inverse_diagonal[3],
        L[1, 0], L[2, 0], L[2, 1], L[3, 0], L[3, 1], L[3, 2],
    )


@kernel(inline=True)
def squared_distance(factor: tuple, z0: float, z1: float, z2: float, z3: float, dims: int, cutoff: float) -> float:
    """Squared distance of measurement ``z`` (xyah) to a track, from its :func:`gate_factor` (first ``dims`` terms).

    Exact up to ``cutoff``; a larger distance may come back as any value above it.
    """
    m0, m1, m2, m3, i0, i1, i2, i3, l10, l20, l21, l30, l31, l32 = factor
    u0 = (z0 - m0) * i0
    total = u0 * u0
    if total > cutoff:
        return total
    u1 = (z1 - m1 - l10 * u0) * i1
    total += u1 * u1
    if dims == 2 or total > cutoff:
        return total
    u2 = (z2 - m2 - l20 * u0 - l21 * u1) * i2
    total += u2 * u2
    if total > cutoff:
        return total
    u3 = (z3 - m3 - l30 * u0 - l31 * u1 - l32 * u2) * i3
    return total + u3 * u3
