"""One frame of DeepSORT in one compiled call, over the tracks' structure of arrays.

``track_frame`` runs, in order: the row checks of the detections (finite,
in range, non-empty, inside the frame; embeddings normalised), Kalman
predict (with optional coast damping and camera-motion warp), the matching
cascade over confirmed tracks, the IoU stage for tentative tracks and tracks
missed for one frame, the low-score IoU stage, the Kalman updates, gallery
or EMA updates, confirmation, deletion and the birth of new tracks, then the
id (and output box) of every detection. Python keeps the API, settings and
packaging of results; between frames nothing but arrays is touched.

Slots: ``order[:counts[LIVE]]`` lists the live slots in birth order and
``free[:counts[FREE]]`` is a stack of unused ones (the top is handed out
first). The caller makes sure there are at least as many free slots as
detections before calling.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from .cascade import matching_cascade
from .costs import cascade_costs, iou_costs, sort_by_x, track_box
from .gallery import gallery_append, gallery_ema
from .kalman import (
    confidence_noise_scales,
    damp_velocity,
    kalman_initiate,
    kalman_predict,
    kalman_update_scaled,
    kalman_warp,
)
from .overlap import covered
from .rows import row_problems, unit_rows
from .cache import use_kernel_cache
from .stale import drop_stale

TENTATIVE = 0
CONFIRMED = 1

# Entries of the ``counts`` array.
LIVE = 0
FREE = 1
NEXT_ID = 2


class FrameSettings(NamedTuple):
    """The settings one frame needs, as plain numbers (see ``TrackerSettings`` for their meaning)."""

    gate: float
    appearance_gate: float
    position_only: bool
    metric: int
    appearance_threshold: float
    appearance_weight: float
    motion_from_iou: bool
    minimum_iou: float
    lost_needs_overlap: bool
    class_aware: bool
    cascade: bool
    max_age: int
    activation_threshold: float
    low_score_matching: bool
    minimum_score: float  # -inf: every detection is used
    confidence_noise: bool
    gallery_mode: bool
    ema_momentum: float
    confidence_embedding: bool
    coast_damping: float
    n_init: int
    iou_recovery_frames: int
    occluded_fraction: float


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _select(mask: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``items[mask]`` for 1-d intp arrays (order kept)."""
    count = 0
    for i in range(mask.shape[0]):
        if mask[i]:
            count += 1
    out = np.empty(count, np.intp)
    k = 0
    for i in range(mask.shape[0]):
        if mask[i]:
            out[k] = items[i]
            k += 1
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _where(mask: np.ndarray) -> np.ndarray:
    """Indices where ``mask`` is True (``np.flatnonzero``)."""
    return _select(mask, np.arange(mask.shape[0]))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    """Measurements ``(N, 4)`` xyah (the same arithmetic as ``boxes.xyxy_to_xyah``)."""
    out = np.empty((xyxy.shape[0], 4))
    for n in range(xyxy.shape[0]):
        h = xyxy[n, 3] - xyxy[n, 1]
        w = xyxy[n, 2] - xyxy[n, 0]
        out[n, 0] = xyxy[n, 0] + 0.5 * w
        out[n, 1] = xyxy[n, 1] + 0.5 * h
        out[n, 2] = w / h
        out[n, 3] = h
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rows_of(rows: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``source[rows]`` for a 2-d array, C-contiguous."""
    out = np.empty((rows.shape[0], source.shape[1]), source.dtype)
    for i in range(rows.shape[0]):
        for k in range(source.shape[1]):
            out[i, k] = source[rows[i], k]
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _entries_of(rows: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``source[rows]`` for a 1-d array."""
    out = np.empty(rows.shape[0], source.dtype)
    for i in range(rows.shape[0]):
        out[i] = source[rows[i]]
    return out



@numba.njit(cache=True, nogil=True, error_model="numpy")
def _remember(galleries, gallery_counts, gallery_heads, slots, embeddings, rows, scores, cfg) -> None:
    """Teach the tracks at ``slots`` the embeddings at ``rows`` (gallery ring buffer or EMA)."""
    if cfg.gallery_mode:
        gallery_append(galleries, gallery_counts, gallery_heads, slots, embeddings, rows)
        return
    weights = np.ones(slots.shape[0])
    if cfg.confidence_embedding:
        for m in range(slots.shape[0]):
            weights[m] = min(max(scores[rows[m]], 0.0), 1.0)
    gallery_ema(galleries, gallery_counts, slots, embeddings, rows, cfg.ema_momentum, weights)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _confirm(slots, states, hits, track_ids, order, counts, n_init, is_slot) -> None:
    """Confirm tentative tracks among ``slots`` with enough hits; ids follow birth order (``order``)."""
    any_ready = False
    for m in range(slots.shape[0]):
        s = slots[m]
        if states[s] == TENTATIVE and hits[s] >= n_init:
            is_slot[s] = True
            any_ready = True
    if not any_ready:
        return
    for p in range(counts[LIVE]):
        s = order[p]
        if is_slot[s]:
            is_slot[s] = False
            states[s] = CONFIRMED
            track_ids[s] = counts[NEXT_ID]
            counts[NEXT_ID] += 1

@numba.njit(cache=True, nogil=True, error_model="numpy")
def track_frame(
    means: np.ndarray,
    covariances: np.ndarray,
    track_ids: np.ndarray,
    states: np.ndarray,
    hits: np.ndarray,
    ages: np.ndarray,
    time_since_update: np.ndarray,
    galleries: np.ndarray,
    gallery_counts: np.ndarray,
    gallery_heads: np.ndarray,
    track_classes: np.ndarray,
    order: np.ndarray,
    free: np.ndarray,
    counts: np.ndarray,
    xyxy: np.ndarray,
    scores: np.ndarray,
    embeddings: np.ndarray,
    use_embeddings: bool,
    classes: np.ndarray,
    affine: np.ndarray,
    use_affine: bool,
    check_rows: bool,
    frame_width: float,
    frame_height: float,
    coordinate_limit: float,
    problems: np.ndarray,
    unit: np.ndarray,
    settings: tuple,
    ids: np.ndarray,
    boxes_out: np.ndarray,
    want_boxes: bool,
) -> bool:
    """Track one frame; returns False (and changes nothing) when ``check_rows`` finds a bad row.

    Detections: ``xyxy (N, 4)`` float64, ``scores (N,)`` float64,
    ``embeddings (N, D)`` float32 (read only if ``use_embeddings``; unit
    norm unless ``check_rows``), ``classes (N,)`` int64, ``affine (2, 3)``
    (applied if ``use_affine``). With ``check_rows``, each row's problem bits
    go to ``problems (N,)`` and the normalised embeddings to ``unit (N, D)``
    (``rows.row_problems``, ``rows.unit_rows``). Writes ``ids (N,)`` (track
    id, -1 for none) and, with ``want_boxes``, ``boxes_out (N, 4)``: the
    corrected box of each tracked row, the row's own box otherwise.
    ``settings`` is ``tuple(FrameSettings(...))``: numba types a plain tuple
    in C at each call (0.4 us) but a named tuple in Python (2 us).
    """
    cfg = FrameSettings(*settings)
    n_input = xyxy.shape[0]
    if check_rows:
        clean = row_problems(xyxy, scores, frame_width, frame_height, coordinate_limit, problems)
        if use_embeddings:
            clean = unit_rows(embeddings, unit, problems) and clean
        if not clean:
            return False
        if use_embeddings:
            embeddings = unit

    # Rows below minimum_score take no part at all.
    usable = np.empty(n_input, np.bool_)
    for i in range(n_input):
        usable[i] = scores[i] >= cfg.minimum_score
    rows = _where(usable)
    if rows.shape[0] < n_input:
        boxes = _rows_of(rows, xyxy)
        det_scores = _entries_of(rows, scores)
        det_classes = _entries_of(rows, classes)
        det_embeddings = _rows_of(rows, embeddings) if use_embeddings else embeddings
    else:
        boxes, det_scores, det_classes, det_embeddings = xyxy, scores, classes, embeddings
    n_dets = boxes.shape[0]

    # Predict every track one frame ahead.
    n_live = counts[LIVE]
    live = np.empty(n_live, np.intp)
    for p in range(n_live):
        live[p] = order[p]
    if cfg.coast_damping < 1.0:
        coasting = np.empty(n_live, np.bool_)
        for p in range(n_live):
            coasting[p] = time_since_update[live[p]] >= 1
        damp_velocity(means, _select(coasting, live), cfg.coast_damping)
    kalman_predict(means, covariances, live)
    if use_affine:
        kalman_warp(means, covariances, live, affine)
    for p in range(n_live):
        ages[live[p]] += 1
        time_since_update[live[p]] += 1

    measurements = _xyxy_to_xyah(boxes)
    high = np.empty(n_dets, np.bool_)
    for n in range(n_dets):
        high[n] = det_scores[n] >= cfg.activation_threshold or not cfg.low_score_matching
    det_to_slot = np.empty(n_dets, np.intp)
    for n in range(n_dets):
        det_to_slot[n] = -1
    if n_dets and n_live:
        # The stages are written out here rather than in helpers: each compiled helper is
        # optimised again inside every caller, so fewer levels compile faster.
        is_confirmed = np.empty(n_live, np.bool_)
        is_tentative = np.empty(n_live, np.bool_)
        for p in range(n_live):
            is_confirmed[p] = states[live[p]] == CONFIRMED
            is_tentative[p] = not is_confirmed[p]
        confirmed = _select(is_confirmed, live)
        unconfirmed = _select(is_tentative, live)
        strong = _where(high)
        by_x, xs = sort_by_x(measurements)
        half_width = 0.0
        for n in range(n_dets):
            half_width = max(half_width, 0.5 * (boxes[n, 2] - boxes[n, 0]))

        # Stage 1: the matching cascade over confirmed tracks and the high-score detections.
        leftover = confirmed
        if confirmed.shape[0] and strong.shape[0]:
            indptr, indices, values = cascade_costs(
                means, covariances, confirmed, measurements, boxes, strong, by_x, xs, galleries, gallery_counts,
                gallery_heads, time_since_update, det_embeddings, use_embeddings, cfg.metric,
                cfg.appearance_threshold, cfg.appearance_weight, cfg.motion_from_iou, cfg.minimum_iou,
                cfg.lost_needs_overlap, track_classes, det_classes, cfg.class_aware, cfg.position_only, cfg.gate,
                cfg.appearance_gate,
            )
            max_level = cfg.max_age + 1
            levels = np.empty(confirmed.shape[0], np.int32)
            for i in range(confirmed.shape[0]):
                level = time_since_update[confirmed[i]]
                if not cfg.cascade:
                    level = 1 if level <= max_level else 0
                levels[i] = level
            row_to_col = matching_cascade(indptr, indices, values, strong.shape[0], levels, max_level)
            missed = np.empty(confirmed.shape[0], np.bool_)
            for i in range(confirmed.shape[0]):
                missed[i] = row_to_col[i] < 0
                if not missed[i]:
                    det_to_slot[strong[row_to_col[i]]] = confirmed[i]
            leftover = _select(missed, confirmed)

        # Stage 2: IoU for tentative tracks, tracks missed only this frame and those that appearance
        # rejected, missed for at most iou_recovery_frames (1: none, as DeepSORT). Stage 3 (low_score_matching): those tracks still
        # unmatched, on low-score detections.
        is_recent = np.empty(leftover.shape[0], np.bool_)
        n_recent = 0
        for i in range(leftover.shape[0]):
            tsu = time_since_update[leftover[i]]
            # Only a track that appearance checked: without appearance the cascade already tried IoU.
            checked = use_embeddings and gallery_counts[leftover[i]] > 0
            is_recent[i] = tsu == 1 or (checked and tsu <= cfg.iou_recovery_frames)
            n_recent += is_recent[i]
        recent = _select(is_recent, leftover)
        rows_of_stage = np.empty(unconfirmed.shape[0] + n_recent, np.intp)
        for i in range(unconfirmed.shape[0]):
            rows_of_stage[i] = unconfirmed[i]
        for i in range(n_recent):
            rows_of_stage[unconfirmed.shape[0] + i] = recent[i]
        free_mask = np.empty(n_dets, np.bool_)
        for stage in range(2):
            for n in range(n_dets):
                free_mask[n] = det_to_slot[n] < 0 and high[n] == (stage == 0)
            columns = _where(free_mask)
            unmatched = np.ones(rows_of_stage.shape[0], np.bool_)
            if rows_of_stage.shape[0] and columns.shape[0]:
                indptr, indices, values = iou_costs(
                    means, rows_of_stage, boxes, columns, by_x, xs, half_width, cfg.minimum_iou, track_classes,
                    det_classes, cfg.class_aware,
                )
                # One level for every row: a single global assignment.
                row_to_col = matching_cascade(indptr, indices, values, columns.shape[0],
                                              np.ones(rows_of_stage.shape[0], np.int32), np.int64(1))
                for i in range(rows_of_stage.shape[0]):
                    if row_to_col[i] >= 0:
                        unmatched[i] = False
                        det_to_slot[columns[row_to_col[i]]] = rows_of_stage[i]
            if stage == 1 or not (cfg.low_score_matching and n_recent):
                break
            still = np.empty(n_recent, np.bool_)
            for i in range(n_recent):
                still[i] = unmatched[unconfirmed.shape[0] + i]
            rows_of_stage = _select(still, recent)

    # Correct the matched tracks.
    matched = np.empty(n_dets, np.bool_)
    for n in range(n_dets):
        matched[n] = det_to_slot[n] >= 0
    matched_rows = _where(matched)
    slots = _entries_of(matched_rows, det_to_slot)
    noise = np.ones(slots.shape[0])
    if cfg.confidence_noise:
        noise = confidence_noise_scales(_entries_of(matched_rows, det_scores))
    kalman_update_scaled(means, covariances, slots, _rows_of(matched_rows, measurements), noise)
    for m in range(slots.shape[0]):
        hits[slots[m]] += 1
        time_since_update[slots[m]] = 0
    if use_embeddings:
        # Low-score detections continue tracks but do not teach them what they look like, nor do
        # crops another detection covers by more than occluded_fraction (a blend of two people).
        learn = _entries_of(matched_rows, high)
        if cfg.occluded_fraction < 1.0 and matched_rows.shape[0]:
            by_x, xs = sort_by_x(measurements)
            half_width = 0.0
            for n in range(n_dets):
                half_width = max(half_width, 0.5 * (boxes[n, 2] - boxes[n, 0]))
            cover = covered(boxes, by_x, xs, half_width)
            for m in range(matched_rows.shape[0]):
                learn[m] = learn[m] and cover[matched_rows[m]] <= cfg.occluded_fraction
        _remember(galleries, gallery_counts, gallery_heads, _select(learn, slots), det_embeddings,
                  _select(learn, matched_rows), det_scores, cfg)
    is_slot = np.zeros(means.shape[0], np.bool_)  # scratch mask over slots, all False between uses
    _confirm(slots, states, hits, track_ids, order, counts, cfg.n_init, is_slot)

    # Delete tentative tracks that missed and confirmed ones missed for longer than max_age.
    for m in range(slots.shape[0]):
        is_slot[slots[m]] = True
    kept = 0
    n_free = counts[FREE]
    for p in range(n_live):
        s = live[p]
        if not is_slot[s] and (states[s] == TENTATIVE or time_since_update[s] > cfg.max_age):
            free[n_free] = s
            n_free += 1
        else:
            order[kept] = s
            kept += 1
    for m in range(slots.shape[0]):
        is_slot[slots[m]] = False
    n_live = kept

    # Start tentative tracks from the unmatched high-score detections.
    starts = np.empty(n_dets, np.bool_)
    for n in range(n_dets):
        starts[n] = det_to_slot[n] < 0 and high[n] and det_scores[n] >= cfg.activation_threshold
    new = _where(starts)
    born = np.empty(new.shape[0], np.intp)
    if new.shape[0]:
        for m in range(new.shape[0]):
            n_free -= 1
            s = free[n_free]
            born[m] = s
            order[n_live] = s
            n_live += 1
            track_ids[s] = 0
            states[s] = TENTATIVE
            hits[s] = 1
            ages[s] = 1
            time_since_update[s] = 0
            gallery_counts[s] = 0
            gallery_heads[s] = 0
            track_classes[s] = det_classes[new[m]]
            det_to_slot[new[m]] = s
        kalman_initiate(_rows_of(new, measurements), born, means, covariances)
        if use_embeddings:
            _remember(galleries, gallery_counts, gallery_heads, born, det_embeddings, new, det_scores, cfg)
    counts[LIVE] = n_live
    counts[FREE] = n_free
    if new.shape[0]:
        _confirm(born, states, hits, track_ids, order, counts, cfg.n_init, is_slot)

    # Ids (and output boxes) per input row.
    for i in range(n_input):
        ids[i] = -1
        if want_boxes:
            for k in range(4):
                boxes_out[i, k] = xyxy[i, k]
    for n in range(n_dets):
        s = det_to_slot[n]
        if s >= 0 and states[s] == CONFIRMED:
            ids[rows[n]] = track_ids[s]
            if want_boxes:
                box = track_box(means[s])
                for k in range(4):
                    boxes_out[rows[n], k] = box[k]
    return True


use_kernel_cache()  # relocatable, read-only-safe cache folders: see kernels/cache.py
drop_stale(track_frame)  # before anything loads a cached kernel: see kernels/stale.py
