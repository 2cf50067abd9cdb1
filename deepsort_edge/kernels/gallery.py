"""Per-track appearance: the gallery ring buffer, the EMA embedding, and the nearest entry.

Embeddings are L2-normalised float32, so the nearest gallery entry (smallest
cosine or Euclidean distance) is the one with the largest dot product.
Galleries hold float32 entries, or float16 bits as uint16 (``half``): half
the bytes to read, which is what gallery mode's time is made of.
"""

from __future__ import annotations

import numpy as np

from .half import load, store
from .jit import kernel

METRIC_COSINE = 0
METRIC_EUCLIDEAN = 1


@kernel
def distance(dot: float, metric: int) -> float:
    """Cosine or Euclidean distance of two unit vectors from their dot product."""
    if metric == METRIC_COSINE:
        return 1.0 - dot
    return np.sqrt(max(0.0, 2.0 - 2.0 * dot))


@kernel(fastmath=True)
def _dot(gallery: np.ndarray, g: int, embeddings: np.ndarray, row: int) -> float:
    """Entry ``g`` of ``gallery`` dotted with ``embeddings[row]``.

    Rows by index, not as views: a view per entry and candidate would cost two
    atomic reference-count updates, as much as a short dot product.
    """
    acc = np.float32(0.0)
    for k in range(embeddings.shape[1]):
        acc += load(gallery[g, k]) * embeddings[row, k]
    return acc


@kernel(fastmath=True)
def _max_dots4(
    gallery: np.ndarray, count: int, embeddings: np.ndarray, r0: int, r1: int, r2: int, r3: int
) -> tuple[float, float, float, float]:
    """The largest dot products of ``embeddings`` rows ``r0..r3`` with the first ``count`` entries.

    Each entry is loaded (and converted, for float16) once for the four rows;
    every dot is summed exactly as :func:`_dot` sums it.
    """
    b0 = b1 = b2 = b3 = -np.inf
    for g in range(count):
        a0 = a1 = a2 = a3 = np.float32(0.0)
        for k in range(embeddings.shape[1]):
            x = load(gallery[g, k])
            a0 += x * embeddings[r0, k]
            a1 += x * embeddings[r1, k]
            a2 += x * embeddings[r2, k]
            a3 += x * embeddings[r3, k]
        if a0 > b0:
            b0 = a0
        if a1 > b1:
            b1 = a1
        if a2 > b2:
            b2 = a2
        if a3 > b3:
            b3 = a3
    return b0, b1, b2, b3


@kernel(fastmath=True)
def max_dots(
    gallery: np.ndarray, count: int, embeddings: np.ndarray, rows: np.ndarray, first: int, n_rows: int,
    out: np.ndarray,
) -> None:
    """``out[c]``: the largest dot product of ``embeddings[rows[first + c]]`` with the first ``count`` entries.

    One pass over the gallery per four candidates (three or four at a time,
    the last of three padded), then one pass for the last one or two; the
    dot products are exactly :func:`_dot`'s.
    """
    c = 0
    while n_rows - c >= 3:
        m = min(4, n_rows - c)
        r = first + c
        b0, b1, b2, b3 = _max_dots4(gallery, count, embeddings, rows[r], rows[r + 1], rows[r + 2],
                                    rows[r + m - 1])
        out[c] = b0
        out[c + 1] = b1
        out[c + 2] = b2
        if m == 4:
            out[c + 3] = b3
        c += m
    for j in range(c, n_rows):
        out[j] = -np.inf
    for g in range(count):
        for j in range(c, n_rows):
            acc = _dot(gallery, g, embeddings, rows[first + j])
            if acc > out[j]:
                out[j] = acc


@kernel
def max_dots_many(galleries: np.ndarray, counts: np.ndarray, slots: np.ndarray, embeddings: np.ndarray,
                  out: np.ndarray) -> None:
    """``out[r, k]``: the largest dot product of ``embeddings[r]`` with the first ``counts[slots[k]]``
    entries of ``galleries[slots[k]]`` (:func:`max_dots` per gallery; -inf for an empty one).

    Used by the identity registry, whose banks (a prototype and samples per
    identity) are galleries: single-threaded, where a BLAS product of a few
    rows with a large bank can cost more in thread hand-offs than in arithmetic.
    """
    n = embeddings.shape[0]
    rows = np.arange(n)
    best = np.empty(n, np.float64)
    for k in range(slots.shape[0]):
        g = slots[k]
        max_dots(galleries[g], counts[g], embeddings, rows, 0, n, best)
        for r in range(n):
            out[r, k] = best[r]


@kernel(fastmath=True)
def first_within(
    gallery: np.ndarray, count: int, head: int, embeddings: np.ndarray, row: int, metric: int, bound: float
) -> float:
    """The distance of the first gallery entry within ``bound`` of ``embeddings[row]``, newest first; inf if none.

    Within ``bound`` exactly when the nearest entry is (the same dot
    products as :func:`max_dots`), so it decides feasibility like the full
    scan, usually after one entry.
    """
    budget = gallery.shape[0]
    for i in range(count):
        g = (head - 1 - i) % budget
        # As a float64, the type costs.py passes: one compilation of distance (it computes in float64 anyway).
        d = distance(np.float64(_dot(gallery, g, embeddings, row)), metric)
        if d <= bound:
            return d
    return np.inf


@kernel
def gallery_append(
    galleries: np.ndarray,
    gallery_counts: np.ndarray,
    gallery_heads: np.ndarray,
    slots: np.ndarray,
    embeddings: np.ndarray,
    rows: np.ndarray,
) -> None:
    """Write ``embeddings[rows[m]]`` into the ring buffer of track ``slots[m]`` (never past the budget)."""
    budget = galleries.shape[1]
    for m in range(slots.shape[0]):
        s = slots[m]
        head = gallery_heads[s]
        entry = galleries[s, head]
        for k in range(embeddings.shape[1]):
            entry[k] = store(embeddings[rows[m], k], entry[k])
        gallery_heads[s] = (head + 1) % budget
        if gallery_counts[s] < budget:
            gallery_counts[s] += 1


@kernel(fastmath=True)
def gallery_ema(
    galleries: np.ndarray,
    gallery_counts: np.ndarray,
    slots: np.ndarray,
    embeddings: np.ndarray,
    rows: np.ndarray,
    momentum: float,
    weights: np.ndarray,
) -> None:
    """Blend ``embeddings[rows[m]]`` into track ``slots[m]``'s single smoothed vector, renormalised.

    The new embedding enters with weight ``(1 - momentum) * weights[m]``
    (``weights`` all 1 for a plain EMA; detection scores for a
    confidence-aware one). A track's first embedding is taken as is.
    """
    dim = embeddings.shape[1]
    for m in range(slots.shape[0]):
        s = slots[m]
        row = galleries[s, 0]
        new = embeddings[rows[m]]
        if gallery_counts[s] == 0:
            for k in range(dim):
                row[k] = store(new[k], row[k])
            gallery_counts[s] = 1
            continue
        w = (1.0 - momentum) * weights[m]
        norm = np.float32(0.0)
        for k in range(dim):
            v = (1.0 - w) * load(row[k]) + w * new[k]
            row[k] = store(v, row[k])
            norm += v * v
        norm = np.sqrt(norm)
        if norm > 0.0:
            for k in range(dim):
                row[k] = store(load(row[k]) / norm, row[k])
