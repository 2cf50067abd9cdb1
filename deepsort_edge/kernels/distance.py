"""Association costs: appearance (gallery or EMA embeddings) and IoU.

Appearance embeddings are L2-normalised float32, so cosine distance is
``1 - dot`` and Euclidean distance is ``sqrt(2 - 2 dot)``; both are monotone
in the dot product, and the nearest gallery entry is the one with the
largest dot. Appearance is only computed for pairs inside the motion gate:
after gating most pairs are infeasible, which is where the speed comes from.
"""

from __future__ import annotations

import numba
import numpy as np

# Cost of a pair that must never be matched. Finite so that sums and
# comparisons stay well defined; far above any feasible cost (those are <= 1).
INFEASIBLE = 1e5

METRIC_COSINE = 0
METRIC_EUCLIDEAN = 1

_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no nnan/ninf: NaN checks stay valid


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _max_dot(gallery: np.ndarray, count: int, embedding: np.ndarray) -> float:
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
def gated_cost(
    squared_mahalanobis: np.ndarray,
    gate: float,
    galleries: np.ndarray,
    gallery_counts: np.ndarray,
    slots: np.ndarray,
    embeddings: np.ndarray,
    use_appearance: bool,
    metric: int,
    appearance_threshold: float,
    appearance_weight: float,
    out: np.ndarray,
) -> None:
    """Matching-cascade cost ``(T, N)`` for the tracks at ``slots``.

    A pair is feasible when its squared Mahalanobis distance is within
    ``gate`` and, with appearance, its nearest-gallery distance is within
    ``appearance_threshold`` (both gates of the DeepSORT paper). The cost of
    a feasible pair is ``w * appearance + (1 - w) * mahalanobis / gate``;
    tracks with an empty gallery fall back to the motion term alone.
    Infeasible pairs get ``INFEASIBLE``.
    """
    n_tracks, n_dets = squared_mahalanobis.shape
    for t in range(n_tracks):
        s = slots[t]
        count = gallery_counts[s] if use_appearance else 0
        for n in range(n_dets):
            d = squared_mahalanobis[t, n]
            if not d <= gate:  # also rejects NaN
                out[t, n] = INFEASIBLE
                continue
            motion = d / gate
            if count == 0:
                out[t, n] = motion
                continue
            dot = _max_dot(galleries[s], count, embeddings[n])
            if metric == METRIC_COSINE:
                appearance = 1.0 - dot
            else:
                appearance = np.sqrt(max(0.0, 2.0 - 2.0 * dot))
            if appearance > appearance_threshold:
                out[t, n] = INFEASIBLE
            else:
                out[t, n] = appearance_weight * appearance + (1.0 - appearance_weight) * motion


@numba.njit(cache=True, nogil=True)
def iou_cost(
    track_boxes: np.ndarray, detection_boxes: np.ndarray, minimum_iou: float, out: np.ndarray
) -> None:
    """``1 - IoU`` for xyxy boxes ``(T, 4)`` x ``(N, 4)``; below ``minimum_iou`` is infeasible."""
    for t in range(track_boxes.shape[0]):
        ax1, ay1, ax2, ay2 = track_boxes[t, 0], track_boxes[t, 1], track_boxes[t, 2], track_boxes[t, 3]
        area_a = (ax2 - ax1) * (ay2 - ay1)
        for n in range(detection_boxes.shape[0]):
            bx1, by1 = detection_boxes[n, 0], detection_boxes[n, 1]
            bx2, by2 = detection_boxes[n, 2], detection_boxes[n, 3]
            iw = min(ax2, bx2) - max(ax1, bx1)
            ih = min(ay2, by2) - max(ay1, by1)
            iou = 0.0
            if iw > 0.0 and ih > 0.0:
                inter = iw * ih
                union = area_a + (bx2 - bx1) * (by2 - by1) - inter
                if union > 0.0:
                    iou = inter / union
            out[t, n] = 1.0 - iou if iou >= minimum_iou and iou > 0.0 else INFEASIBLE


@numba.njit(cache=True, nogil=True)
def xyah_to_xyxy_rows(means: np.ndarray, slots: np.ndarray, out: np.ndarray) -> None:
    """Boxes ``(T, 4)`` xyxy from the first four state entries of the tracks at ``slots``."""
    for i in range(slots.shape[0]):
        s = slots[i]
        h = means[s, 3]
        w = means[s, 2] * h
        out[i, 0] = means[s, 0] - 0.5 * w
        out[i, 1] = means[s, 1] - 0.5 * h
        out[i, 2] = out[i, 0] + w
        out[i, 3] = out[i, 1] + h


@numba.njit(cache=True, nogil=True)
def gallery_append(
    galleries: np.ndarray,
    gallery_counts: np.ndarray,
    gallery_heads: np.ndarray,
    slots: np.ndarray,
    embeddings: np.ndarray,
) -> None:
    """Write one embedding per track into its ring buffer (never past the budget)."""
    budget = galleries.shape[1]
    for m in range(slots.shape[0]):
        s = slots[m]
        head = gallery_heads[s]
        galleries[s, head, :] = embeddings[m]
        gallery_heads[s] = (head + 1) % budget
        if gallery_counts[s] < budget:
            gallery_counts[s] += 1


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def gallery_ema(
    galleries: np.ndarray,
    gallery_counts: np.ndarray,
    slots: np.ndarray,
    embeddings: np.ndarray,
    momentum: float,
) -> None:
    """Blend each embedding into the track's single smoothed vector, renormalised."""
    dim = embeddings.shape[1]
    for m in range(slots.shape[0]):
        s = slots[m]
        row = galleries[s, 0]
        if gallery_counts[s] == 0:
            row[:] = embeddings[m]
            gallery_counts[s] = 1
            continue
        norm = np.float32(0.0)
        for k in range(dim):
            v = momentum * row[k] + (1.0 - momentum) * embeddings[m, k]
            row[k] = v
            norm += v * v
        norm = np.sqrt(norm)
        if norm > 0.0:
            for k in range(dim):
                row[k] /= norm
