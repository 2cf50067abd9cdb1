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


@numba.njit(cache=True, nogil=True, inline="always")
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two xyxy boxes (0 when disjoint or degenerate)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0.0 or ih <= 0.0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def gated_cost(
    squared_mahalanobis: np.ndarray,
    gate: float,
    track_boxes: np.ndarray,
    detection_boxes: np.ndarray,
    galleries: np.ndarray,
    gallery_counts: np.ndarray,
    slots: np.ndarray,
    time_since_update: np.ndarray,
    embeddings: np.ndarray,
    use_appearance: bool,
    metric: int,
    appearance_threshold: float,
    appearance_weight: float,
    motion_from_iou: bool,
    minimum_iou: float,
    lost_needs_overlap: bool,
    track_classes: np.ndarray,
    detection_classes: np.ndarray,
    class_aware: bool,
    out: np.ndarray,
) -> None:
    """Matching-cascade cost ``(T, N)`` for the tracks at ``slots``.

    Every feasible pair lies inside the Mahalanobis gate (squared distance
    <= ``gate``) and, with ``class_aware``, shares its class. Its motion term
    is ``1 - IoU`` of the predicted and detected xyxy boxes
    (``motion_from_iou``) or the squared distance over the gate (the paper's
    d1). With appearance, a pair must also have its nearest-gallery distance
    within ``appearance_threshold`` (the paper's second gate) and costs
    ``w * appearance + (1 - w) * motion``. Without appearance (none this
    frame, or an empty gallery) the cost is the motion term alone, and with
    IoU motion a track lost for more than one frame also needs
    ``IoU >= minimum_iou``, as in SORT: its gate has widened, and with no
    appearance to confirm it a far-off match is more often a swap than a
    recovery. ``lost_needs_overlap`` applies the same caution with
    appearance: a track lost for more than one frame whose predicted box does
    not overlap the detection needs an appearance distance within half the
    threshold. Infeasible pairs get ``INFEASIBLE``.
    """
    n_tracks, n_dets = squared_mahalanobis.shape
    for t in range(n_tracks):
        s = slots[t]
        count = gallery_counts[s] if use_appearance else 0
        lost = time_since_update[s] > 1
        for n in range(n_dets):
            d = squared_mahalanobis[t, n]
            if not d <= gate or (class_aware and track_classes[s] != detection_classes[n]):
                out[t, n] = INFEASIBLE  # "not <=" also rejects NaN
                continue
            iou = _iou(track_boxes[t], detection_boxes[n])
            motion = 1.0 - iou if motion_from_iou else d / gate
            if count == 0:
                if motion_from_iou and lost and (iou < minimum_iou or iou <= 0.0):
                    out[t, n] = INFEASIBLE
                else:
                    out[t, n] = motion
                continue
            dot = _max_dot(galleries[s], count, embeddings[n])
            if metric == METRIC_COSINE:
                appearance = 1.0 - dot
            else:
                appearance = np.sqrt(max(0.0, 2.0 - 2.0 * dot))
            bound = appearance_threshold
            if lost_needs_overlap and lost and iou <= 0.0:
                bound = 0.5 * appearance_threshold
            if appearance > bound:
                out[t, n] = INFEASIBLE
            else:
                out[t, n] = appearance_weight * appearance + (1.0 - appearance_weight) * motion


@numba.njit(cache=True, nogil=True)
def iou_cost(
    track_boxes: np.ndarray,
    detection_boxes: np.ndarray,
    minimum_iou: float,
    track_classes: np.ndarray,
    detection_classes: np.ndarray,
    class_aware: bool,
    out: np.ndarray,
) -> None:
    """``1 - IoU`` for xyxy boxes ``(T, 4)`` x ``(N, 4)``; below ``minimum_iou`` (or another class) is infeasible.

    ``track_classes`` is per row of ``track_boxes`` here (not per slot).
    """
    for t in range(track_boxes.shape[0]):
        for n in range(detection_boxes.shape[0]):
            if class_aware and track_classes[t] != detection_classes[n]:
                out[t, n] = INFEASIBLE
                continue
            iou = _iou(track_boxes[t], detection_boxes[n])
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
    weights: np.ndarray,
) -> None:
    """Blend each embedding into the track's single smoothed vector, renormalised.

    The new embedding enters with weight ``(1 - momentum) * weights[m]``
    (``weights`` all 1 for a plain EMA; detection scores for a
    confidence-aware one). A track's first embedding is taken as is.
    """
    dim = embeddings.shape[1]
    for m in range(slots.shape[0]):
        s = slots[m]
        row = galleries[s, 0]
        if gallery_counts[s] == 0:
            row[:] = embeddings[m]
            gallery_counts[s] = 1
            continue
        w = (1.0 - momentum) * weights[m]
        norm = np.float32(0.0)
        for k in range(dim):
            v = (1.0 - w) * row[k] + w * embeddings[m, k]
            row[k] = v
            norm += v * v
        norm = np.sqrt(norm)
        if norm > 0.0:
            for k in range(dim):
                row[k] /= norm
