"""Per-track appearance: the gallery ring buffer, the EMA embedding, and the nearest entry.

Embeddings are L2-normalised float32, so the nearest gallery entry (smallest
cosine or Euclidean distance) is the one with the largest dot product.
Galleries hold float32 entries, or float16 bits as uint16 (``half``): half
the bytes to read, which is what gallery mode's time is made of.
"""

from __future__ import annotations

import numba
import numpy as np

from .half import load, store

_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no nnan/ninf: NaN checks stay valid


METRIC_COSINE = 0
METRIC_EUCLIDEAN = 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def distance(dot: float, metric: int) -> float:
    """Cosine or Euclidean distance of two unit vectors from their dot product."""
    if metric == METRIC_COSINE:
        return 1.0 - dot
    return np.sqrt(max(0.0, 2.0 - 2.0 * dot))


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _dot(entry: np.ndarray, embedding: np.ndarray) -> float:
    acc = np.float32(0.0)
    for k in range(embedding.shape[0]):
        acc += load(entry[k]) * embedding[k]
    return acc


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def max_dots(
    gallery: np.ndarray, count: int, embeddings: np.ndarray, rows: np.ndarray, first: int, n_rows: int,
    out: np.ndarray,
) -> None:
    """``out[c]``: the largest dot product of ``embeddings[rows[first + c]]`` with the first ``count`` entries.

    Each gallery entry is read once for all ``n_rows`` embeddings (it stays
    in L1 while they are compared), so a track with several candidate
    detections costs one pass over its gallery.
    """
    for c in range(n_rows):
        out[c] = -np.inf
    for g in range(count):
        entry = gallery[g]
        for c in range(n_rows):
            acc = _dot(entry, embeddings[rows[first + c]])
            if acc > out[c]:
                out[c] = acc


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def first_within(
    gallery: np.ndarray, count: int, head: int, embedding: np.ndarray, metric: int, bound: float
) -> float:
    """The distance of the first gallery entry within ``bound`` of ``embedding``, newest first; inf if none.

    Within ``bound`` exactly when the nearest entry is (the same dot
    products as :func:`max_dots`), so it decides feasibility like the full
    scan, usually after one entry.
    """
    budget = gallery.shape[0]
    for i in range(count):
        g = (head - 1 - i) % budget
        d = distance(_dot(gallery[g], embedding), metric)
        if d <= bound:
            return d
    return np.inf


@numba.njit(cache=True, nogil=True, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
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
