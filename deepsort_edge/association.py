"""DeepSORT's association stages, over the tracks' parallel arrays.

1. Matching cascade over confirmed tracks: Mahalanobis-gated appearance
   cost, solved level by level (most recently seen tracks first).
2. IoU matching for the rest: tentative tracks and confirmed tracks missed
   for exactly one frame, against the detections stage 1 left over.
3. (``low_score_matching``) IoU matching of confirmed tracks seen last frame
   and still unmatched against the low-score detections, which only ever
   continue tracks (ByteTrack's second association).

The tracker runs them in that order (``DeepSORTTracker._associate``); each
function here returns ``row_to_col`` for its tracks (-1: unmatched).
"""

from __future__ import annotations

import numpy as np

from .kernels.boxes import xyah_to_xyxy_rows
from .kernels.cascade import matching_cascade
from .kernels.costs import ASSIGNMENT_LIMIT, gated_cost, iou_cost
from .kernels.gating import mahalanobis_distances
from .kernels.kalman import kalman_project
from .kernels.lap import solve_assignment
from .tracks import TrackStore

_NO_EMBEDDINGS = np.zeros((0, 1), dtype=np.float32)


def appearance_motion_cost(
    store: TrackStore,
    slots: np.ndarray,
    measurements: np.ndarray,
    detection_boxes: np.ndarray,
    embeddings: np.ndarray | None,
    *,
    gate: float,
    position_only: bool,
    metric: int,
    appearance_threshold: float,
    appearance_weight: float,
    motion_from_iou: bool,
    minimum_iou: float,
    lost_needs_overlap: bool,
    detection_classes: np.ndarray,
    class_aware: bool,
) -> np.ndarray:
    """Gated cascade cost ``(len(slots), N)`` for detections given as xyah and xyxy."""
    n_tracks, n_dets = slots.shape[0], measurements.shape[0]
    projected = np.empty((n_tracks, 4))
    cholesky = np.empty((n_tracks, 4, 4))
    kalman_project(store.mean, store.covariance, slots, projected, cholesky)
    squared = np.empty((n_tracks, n_dets))
    mahalanobis_distances(projected, cholesky, measurements, position_only, gate, squared)
    track_boxes = np.empty((n_tracks, 4))
    xyah_to_xyxy_rows(store.mean, slots, track_boxes)
    cost = np.empty((n_tracks, n_dets))
    gated_cost(
        squared,
        gate,
        track_boxes,
        detection_boxes,
        store.gallery,
        store.gallery_count,
        slots,
        store.time_since_update,
        _NO_EMBEDDINGS if embeddings is None else embeddings,
        embeddings is not None,
        metric,
        appearance_threshold,
        appearance_weight,
        motion_from_iou,
        minimum_iou,
        lost_needs_overlap,
        store.class_id,
        detection_classes,
        class_aware,
        cost,
    )
    return cost


def cascade_match(
    cost: np.ndarray, time_since_update: np.ndarray, max_age: int, cascade: bool
) -> np.ndarray:
    """``row_to_col`` for the cascade (or one global assignment if not ``cascade``).

    Levels start at 1 (every track was just predicted), so a track that
    missed its last ``max_age`` frames stands at level ``max_age + 1``: it
    may still match this frame, and is deleted if it does not.
    """
    max_level = max_age + 1
    if cascade:
        levels = time_since_update.astype(np.int32)
    else:
        levels = np.where(time_since_update <= max_level, 1, 0).astype(np.int32)
    return matching_cascade(cost, levels, max_level)


def iou_match(
    store: TrackStore,
    slots: np.ndarray,
    detection_boxes: np.ndarray,
    minimum_iou: float,
    detection_classes: np.ndarray,
    class_aware: bool,
) -> np.ndarray:
    """``row_to_col`` matching predicted track boxes to xyxy detections by IoU."""
    boxes = np.empty((slots.shape[0], 4))
    xyah_to_xyxy_rows(store.mean, slots, boxes)
    cost = np.empty((slots.shape[0], detection_boxes.shape[0]))
    iou_cost(boxes, detection_boxes, minimum_iou, store.class_id[slots], detection_classes, class_aware, cost)
    row_to_col, _ = solve_assignment(cost, ASSIGNMENT_LIMIT)
    return row_to_col
