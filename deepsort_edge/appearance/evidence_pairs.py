"""Feature pairs of one person and of two people: a bounded buffer of them, and their statistics.

ROC AUC, a calibrated distance threshold, an LDA projection and its running
(forgetting) form, in plain numpy,
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
    "RunningScatter",
    "calibrated_threshold",
    "cosine_distances",
    "fit_projection",
    "lda_directions",
    "principal_basis",
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
    """Regularised LDA of pair differences: ``(mean (D,), W (D, dims))`` float64 (the batch form of
    :class:`RunningScatter`, which the scene adapter uses: every pair weighted alike).

    ``W`` holds the directions ``v`` of largest ``v' S_b v / v' (S_w + r I) v``
    (``S_w``, ``S_b``: the scatter of same- and different-person differences,
    within the ``pca_dims`` principal directions of the centred evidence; ``r``:
    ``ridge`` times the mean eigenvalue of ``S_w``), scaled so that
    ``W' (S_w + r I) W = I``. Fewer columns when the evidence spans fewer dimensions.
    """
    rows = np.concatenate([same_a, same_b, different_a, different_b]).astype(np.float64)
    mean = rows.mean(axis=0)
    basis = principal_basis(rows - mean, pca_dims)
    within_d = (np.asarray(same_a, np.float64) - same_b) @ basis
    between_d = (np.asarray(different_a, np.float64) - different_b) @ basis
    within = within_d.T @ within_d / within_d.shape[0]
    between = between_d.T @ between_d / between_d.shape[0]
    return mean, basis @ lda_directions(within, between, dims, ridge)


def principal_basis(centred: np.ndarray, dims: int) -> np.ndarray:
    """Orthonormal ``(D, r)`` leading principal directions of centred rows (``r = min(dims, *shape)``).

    A seeded randomized range finder with one power step on at most
    ``_PCA_ROWS`` evenly spaced rows: two thin products and a thin QR, no
    ``D x D`` or rows x rows eigenproblem.
    """
    sample = np.asarray(centred, dtype=np.float64)[:: max(1, centred.shape[0] // _PCA_ROWS)]
    width = min(dims, *sample.shape)
    probe = np.random.default_rng(0).standard_normal((sample.shape[1], width))
    basis, _ = np.linalg.qr(sample.T @ (sample @ probe))
    return basis


def lda_directions(within: np.ndarray, between: np.ndarray, dims: int, ridge: float = RIDGE) -> np.ndarray:
    """The ``dims`` leading solutions of ``between v = l (within + r I) v``, scaled to ``v' (within + r I) v = 1``.

    ``r`` is ``ridge`` times the mean eigenvalue of ``within``. Solved through
    the Cholesky factor of the regularised ``within`` (no explicit inverse).
    """
    within = within + ridge * np.trace(within) / within.shape[0] * np.eye(within.shape[0])
    factor = np.linalg.cholesky(within)
    half = np.linalg.solve(factor, between)
    symmetric = np.linalg.solve(factor, half.T)
    values, vectors = np.linalg.eigh(0.5 * (symmetric + symmetric.T))
    top = vectors[:, ::-1][:, :dims]
    return np.linalg.solve(factor.T, top)  # v = L^-T u: v' S_w v = 1


class RunningScatter:
    """Same- and different-person scatter in a fixed principal basis, old pairs forgotten gradually.

    The projection refit from it changes slowly (each refit sees mostly the
    pairs the previous one saw) and costs a ``P x P`` eigenproblem, while each
    frame adds its pairs for ``O(pairs x D x P)``. A pair's weight decays by
    ``1 - 1 / memory`` per later pair of its kind, so about the last ``memory``
    pairs of each kind count.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> rows = rng.normal(size=(40, 6))
        >>> scatter = RunningScatter.from_rows(rows, 4, memory=100)
        >>> scatter.add(rows[:20], rows[20:], same=True); scatter.add(rows[:20], rows[::-1][:20], same=False)
        >>> scatter.within.shape, float(round(scatter.weights[1], 2))
        ((4, 4), 18.21)
    """

    def __init__(self, basis: np.ndarray, mean: np.ndarray, memory: int = PAIR_CAPACITY) -> None:
        if memory < 1:
            raise ValueError(f"memory must be >= 1, got {memory}")
        self.basis = np.asarray(basis, dtype=np.float64)
        if self.basis.ndim != 2 or np.shape(mean) != self.basis.shape[:1]:
            raise ValueError(f"basis must be (D, P) and mean (D,), got {self.basis.shape} and {np.shape(mean)}")
        self.mean = np.asarray(mean, dtype=np.float64).copy()
        self.memory = memory
        size = self.basis.shape[1]
        self.within = np.zeros((size, size))
        self.between = np.zeros((size, size))
        self.weights = np.zeros(3)  # total weight of: pair midpoints in the mean, same pairs, different pairs

    @classmethod
    def from_rows(cls, rows: np.ndarray, dims: int = PCA_DIMS, memory: int = PAIR_CAPACITY) -> RunningScatter:
        """An empty scatter in the ``dims`` principal directions of ``rows`` (centred on their mean)."""
        rows = np.asarray(rows, dtype=np.float64)
        mean = rows.mean(axis=0)
        return cls(principal_basis(rows - mean, dims), mean, memory)

    def add(self, a: np.ndarray, b: np.ndarray, same: bool) -> None:
        """Add the pairs ``(a[i], b[i])`` (``(N, D)`` each) of one kind, and their rows to the mean."""
        n = len(a)
        if not n:
            return
        keep = (1.0 - 1.0 / self.memory) ** n
        # Newest pair weight 1, older ones keep^(pairs after them): a geometric series.
        decay = (1.0 - 1.0 / self.memory) ** np.arange(n - 1, -1, -1)
        diffs = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) @ self.basis
        kind = 1 if same else 2
        matrix = self.within if same else self.between
        matrix *= keep
        matrix += (diffs * decay[:, None]).T @ diffs
        self.weights[kind] = keep * self.weights[kind] + decay.sum()
        # The centre: the pairs' midpoints, forgotten at the same rate.
        middles = 0.5 * (np.asarray(a, np.float64) + np.asarray(b, np.float64))
        total = keep * self.weights[0] + decay.sum()
        self.mean = (keep * self.weights[0] * self.mean + decay @ middles) / total
        self.weights[0] = total

    def projection(self, dims: int = PROJECTION_DIMS, ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray]:
        """``(mean (D,), W (D, dims))`` of the regularised LDA of the scatter so far (as :func:`fit_projection`)."""
        if self.weights[1] <= 0 or self.weights[2] <= 0:
            raise ValueError("projection needs pairs of both kinds")
        within = self.within / self.weights[1]
        between = self.between / self.weights[2]
        return self.mean.copy(), self.basis @ lda_directions(within, between, dims, ridge)


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
