"""Per-track appearance: the gallery ring buffer, the EMA embedding, and the nearest entry.

Embeddings are L2-normalised float32, so the nearest gallery entry (smallest
cosine or Euclidean distance) is the one with the largest dot product.
"""

from __future__ import annotations

import numba
import numpy as np

_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no nnan/ninf: NaN checks stay valid


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def max_dot(gallery: np.ndarray, count: int, embedding: np.ndarray) -> float:
    """Largest dot product between ``embedding`` and the first ``count`` rows."""
    best = -np.inf
    dim = embedding.shape[0]
    for g in range(count):
        acc = np.float32(0.0)
        row = gallery[g]
        for k in range(dim):
            acc += row[k] * embedding[k]
        if acc > best:
            best = acc
    return best


@numba.njit(cache=True, nogil=True)
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
        for k in range(embeddings.shape[1]):
            galleries[s, head, k] = embeddings[rows[m], k]
        gallery_heads[s] = (head + 1) % budget
        if gallery_counts[s] < budget:
            gallery_counts[s] += 1


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
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
                row[k] = new[k]
            gallery_counts[s] = 1
            continue
        w = (1.0 - momentum) * weights[m]
        norm = np.float32(0.0)
        for k in range(dim):
            v = (1.0 - w) * row[k] + w * new[k]
            row[k] = v
            norm += v * v
        norm = np.sqrt(norm)
        if norm > 0.0:
            for k in range(dim):
                row[k] /= norm
