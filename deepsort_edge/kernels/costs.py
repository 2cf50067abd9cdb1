"""Association costs: the cascade's gated appearance + motion cost, and the IoU cost.

Appearance embeddings are L2-normalised float32, so cosine distance is
``1 - dot`` and Euclidean distance is ``sqrt(2 - 2 dot)``; both are monotone
in the dot product. Appearance is only computed for pairs inside the motion
gate: after gating most pairs are infeasible, which is where the speed comes
from.
"""

from __future__ import annotations

import numba
import numpy as np

from .boxes import iou as box_iou
from .gallery import max_dot

# Cost of a pair that must never be matched. Finite so that sums and
# comparisons stay well defined; far above any feasible cost (those are <= 1).
INFEASIBLE = 1e5
# Above every feasible cost (<= 1) and below INFEASIBLE: an assignment then
# matches as many feasible pairs as it can, at minimum total cost, and never
# an infeasible one.
ASSIGNMENT_LIMIT = INFEASIBLE / 2.0

METRIC_COSINE = 0
METRIC_EUCLIDEAN = 1


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
            iou = box_iou(track_boxes[t], detection_boxes[n])
            motion = 1.0 - iou if motion_from_iou else d / gate
            if count == 0:
                if motion_from_iou and lost and (iou < minimum_iou or iou <= 0.0):
                    out[t, n] = INFEASIBLE
                else:
                    out[t, n] = motion
                continue
            dot = max_dot(galleries[s], count, embeddings[n])
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
            iou = box_iou(track_boxes[t], detection_boxes[n])
            out[t, n] = 1.0 - iou if iou >= minimum_iou and iou > 0.0 else INFEASIBLE
