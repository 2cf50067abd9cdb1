"""Feature pairs of one person and of two people: a bounded buffer of them, and their statistics.

ROC AUC, a calibrated distance threshold and an LDA projection, in plain numpy,
used by the scene adapter (:mod:`deepsort_edge.appearance.adaptation`)
on the evidence it collects from the tracker's own matches.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FALSE_MATCH_COST",
    "PAIR_CAPACITY",
    "PCA_DIMS",
    "PROJECTION_DIMS",
    "RIDGE",
    "PairBuffer",
    "calibrated_threshold",
    "cosine_distances",
    "fit_projection",
    "roc_auc",
]


PAIR_CAPACITY = 1024  # pairs of each kind kept
PCA_DIMS = 64
PROJECTION_DIMS = 48  # 16 measured worse on MOT17 (strangers come closer in fewer dimensions)
RIDGE = 0.1  # S_w + RIDGE * mean eigenvalue of S_w: a scene gives few independent people
FALSE_MATCH_COST = 1.0  # an accepted stranger costs this many missed same-person matches
_PCA_ROWS = 512  # evidence rows the principal directions are computed from


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - a_i . b_i`` of unit rows ``(N, D)`` -> ``(N,)`` float64."""
    return 1.0 - np.einsum("ij,ij->i", np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def roc_auc(same: np.ndarray, different: np.ndarray) -> float:
    """Probability that a different-person distance exceeds a same-person one (ties count half).

    Example:
        >>> roc_auc(np.array([0.1, 0.2]), np.array([0.15, 0.3]))
        0.75
    """
    same = np.sort(np.asarray(same, dtype=np.float64))
    different = np.asarray(different, dtype=np.float64)
    if not same.size or not different.size:
        raise ValueError("roc_auc needs at least one distance of each kind")
    below = np.searchsorted(same, different, side="left")
    ties = np.searchsorted(same, different, side="right") - below
    return float((below + 0.5 * ties).sum() / (same.size * different.size))


def calibrated_threshold(
    same: np.ndarray, different: np.ndarray, low: float, high: float, false_match_cost: float = FALSE_MATCH_COST
) -> float:
    """The distance threshold with the fewest weighted errors, clipped to ``[low, high]``.

    Errors at threshold ``t`` (a pair matches when its distance is <= t):
    ``P(same > t) + false_match_cost * P(different <= t)``, each a fraction
    of its kind. Of the candidate cuts (every observed distance, and 0), the
    best is taken; the threshold is the midpoint between it and the next
    larger observed distance, so it does not sit on a sample.
    """
    same = np.sort(np.asarray(same, dtype=np.float64))
    different = np.sort(np.asarray(different, dtype=np.float64))
    if not same.size or not different.size:
        raise ValueError("calibrated_threshold needs at least one distance of each kind")
    cuts = np.unique(np.concatenate([[0.0], same, different]))
    missed = 1.0 - np.searchsorted(same, cuts, side="right") / same.size
    accepted = np.searchsorted(different, cuts, side="right") / different.size
    best = int(np.argmin(missed + false_match_cost * accepted))
    threshold = cuts[best] if best + 1 == cuts.size else 0.5 * (cuts[best] + cuts[best + 1])
    return float(min(max(threshold, low), high))


def fit_projection(
    same_a: np.ndarray,
    same_b: np.ndarray,
    different_a: np.ndarray,
    different_b: np.ndarray,
    dims: int = PROJECTION_DIMS,
    pca_dims: int = PCA_DIMS,
    ridge: float = RIDGE,
) -> tuple[np.ndarray, np.ndarray]:
    """Regularised LDA of pair differences: ``(mean (D,), W (D, dims))`` float64.

    ``W`` holds the directions ``v`` of largest ``v' S_b v / v' (S_w + r I) v``
    (``S_w``, ``S_b``: the scatter of same- and different-person differences,
    within the ``pca_dims`` principal directions of the centred evidence; ``r``:
    ``ridge`` times the mean eigenvalue of ``S_w``), scaled so that
    ``W' (S_w + r I) W = I``. Fewer columns when the evidence spans fewer dimensions.
    """
    rows = np.concatenate([same_a, same_b, different_a, different_b]).astype(np.float64)
    mean = rows.mean(axis=0)
    sample = rows[:: max(1, rows.shape[0] // _PCA_ROWS)] - mean
    # The leading principal directions by a seeded randomized range finder with one power
    # step: two thin products and a thin QR, no D x D or rows x rows eigenproblem.
    width = min(pca_dims, *sample.shape)
    probe = np.random.default_rng(0).standard_normal((sample.shape[1], width))
    basis, _ = np.linalg.qr(sample.T @ (sample @ probe))  # (D, r), orthonormal columns
    within_d = (np.asarray(same_a, np.float64) - same_b) @ basis
    between_d = (np.asarray(different_a, np.float64) - different_b) @ basis
    within = within_d.T @ within_d / within_d.shape[0]
    between = between_d.T @ between_d / between_d.shape[0]
    within += ridge * np.trace(within) / within.shape[0] * np.eye(within.shape[0])
    # S_b v = l S_w v through the Cholesky factor of S_w (no explicit inverse).
    factor = np.linalg.cholesky(within)
    half = np.linalg.solve(factor, between)
    symmetric = np.linalg.solve(factor, half.T)
    values, vectors = np.linalg.eigh(0.5 * (symmetric + symmetric.T))
    top = vectors[:, ::-1][:, :dims]
    directions = np.linalg.solve(factor.T, top)  # v = L^-T u: v' S_w v = 1
    return mean, basis @ directions


class PairBuffer:
    """A ring buffer of feature pairs ``(a_i, b_i)`` with a key each: the last ``capacity`` pairs pushed.

    :meth:`halves` splits the pairs by the parity of their key (a track id), so
    the held-back half is of other people than the fitting half.
    """

    def __init__(self, capacity: int = PAIR_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.a = np.zeros((capacity, 0), dtype=np.float32)
        self.b = np.zeros((capacity, 0), dtype=np.float32)
        self.keys = np.zeros(capacity, dtype=np.int64)
        self.total = 0

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    def push(self, a: np.ndarray, b: np.ndarray, keys: np.ndarray) -> None:
        """Add the pairs ``(a[i], b[i])`` (``(N, D)`` each) keyed ``keys[i]``, the oldest ones making room."""
        if not len(a):
            return
        if self.a.shape[1] != a.shape[1]:
            self.a = np.zeros((self.capacity, a.shape[1]), dtype=np.float32)
            self.b = np.zeros_like(self.a)
            self.total = 0
        slots = (self.total + np.arange(len(a))) % self.capacity
        self.a[slots] = a
        self.b[slots] = b
        self.keys[slots] = keys
        self.total += len(a)

    def halves(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """``((a, b) of even keys, (a, b) of odd keys)`` among the filled slots."""
        n = len(self)
        odd = (self.keys[:n] % 2).astype(bool)
        return (self.a[:n][~odd], self.b[:n][~odd]), (self.a[:n][odd], self.b[:n][odd])
