"""One frame of DeepSORT in one compiled call, over the tracks' structure of arrays.

``track_frame`` runs in named stages, top to bottom: the row checks of the
detections (finite, in range, non-empty, inside the frame; embeddings
normalised; scores passed as given in [0, 1]), the detections that take
part, Kalman predict (with optional coast damping and camera-motion warp),
the matching cascade over confirmed tracks (gate, then appearance and motion
costs), the IoU stage for tentative tracks and tracks missed for one frame,
the same IoU stage on low-score detections, the Kalman corrections, gallery
or EMA updates, confirmation, deaths and births, the id (and output box) of
every detection, then the frame's scores kept in the score calibration's
window. Python keeps the API, settings and packaging of results; between
frames nothing but arrays is touched.

Slots: ``order[:counts[LIVE]]`` lists the live slots in birth order and
``free[:counts[FREE]]`` is a stack of unused ones (the top is handed out
first). The caller makes sure there are at least as many free slots as
detections before calling.

The stages are written out in ``track_frame``, each under a ``# --``
heading, rather than as helper functions: a compiled callee is optimised
again inside every caller and a Numba-inlined one adds its own share of
typing and lowering, so helpers cost compile time (the stages as inlined
helpers made a cold first frame about 2 s slower). Helpers are kept where
a step runs twice: the IoU stage (inlined: compiled once, its own callees
would be optimised twice), ``_remember`` and ``_confirm`` (compiled once).
"""

from __future__ import annotations

import numpy as np

from .arguments import (
    Detections,
    FrameInput,
    FrameOutput,
    FrameSettings,
    RowChecks,
    ScoreWindow,
    TrackArrays,
)
from .boxes import xyxy_to_xyah
from .cascade import matching_cascade
from .constants import CONFIRMED, FREE, LIVE, NEXT_ID, TENTATIVE
from .costs import cascade_costs, iou_costs, sort_by_x, track_box
from .gallery import gallery_append, gallery_ema
from .gather import concatenate, flatnonzero, select, take, take_rows
from .jit import kernel
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
from .scores import finite_in_unit_range, keep_scores
from .cache import use_kernel_cache
from .stale import drop_stale


@kernel
def track_frame(
    store: tuple, detections: tuple, checks: tuple, window: tuple, settings: tuple, outputs: tuple
) -> bool:
    """Track one frame; returns False (and changes nothing) when the row checks find a bad row, or
    a score the caller passed as given needs calibrating.

    Every argument is a plain tuple in the fields' order of its named tuple
    in ``arguments``: ``store`` of :class:`TrackArrays` (changed in place),
    ``detections`` of :class:`FrameInput`, ``checks`` of :class:`RowChecks`,
    ``window`` of :class:`ScoreWindow` (kept in place), ``settings`` of
    :class:`FrameSettings` and ``outputs`` of :class:`FrameOutput`
    (written). Embeddings must be unit rows unless the row checks are
    enabled (they normalise them into ``checks.unit``).
    """
    tracks = TrackArrays(*store)
    frame = FrameInput(*detections)
    check = RowChecks(*checks)
    score_window = ScoreWindow(*window)
    cfg = FrameSettings(*settings)
    out = FrameOutput(*outputs)

    # -- Row checks: each row's problem bits into check.problems, unit embeddings into check.unit.
    embeddings = frame.embeddings
    if check.enabled:
        clean = row_problems(frame.xyxy, frame.scores, check.frame_width, check.frame_height,
                             check.coordinate_limit, check.problems)
        if frame.use_embeddings:
            clean = unit_rows(frame.embeddings, check.unit, check.problems) and clean
            embeddings = check.unit
        if not clean:
            return False
    if score_window.expect_unit and not finite_in_unit_range(frame.scores):
        return False

    # -- Detections taking part: the rows scoring at least minimum_score (the rest take no part at all).
    n_input = frame.xyxy.shape[0]
    usable = np.empty(n_input, np.bool_)
    for i in range(n_input):
        usable[i] = frame.scores[i] >= cfg.minimum_score
    rows = flatnonzero(usable)
    boxes, det_scores, classes = frame.xyxy, frame.scores, frame.classes
    if rows.shape[0] < n_input:
        boxes = take_rows(rows, frame.xyxy)
        det_scores = take(rows, frame.scores)
        classes = take(rows, frame.classes)
        if frame.use_embeddings:
            embeddings = take_rows(rows, embeddings)
    n_dets = boxes.shape[0]
    measurements = xyxy_to_xyah(boxes)
    # With low_score_matching, detections below the activation threshold join the last stage only.
    high = np.empty(n_dets, np.bool_)
    for n in range(n_dets):
        high[n] = det_scores[n] >= cfg.activation_threshold or not cfg.low_score_matching
    by_x, xs = sort_by_x(measurements)
    half_width = 0.0
    for n in range(n_dets):
        half_width = max(half_width, 0.5 * (boxes[n, 2] - boxes[n, 0]))
    dets = Detections(boxes, measurements, det_scores, classes, embeddings, frame.use_embeddings, high, by_x, xs,
                      half_width)

    # -- Predict: every live track one frame ahead (damped while coasting, warped by camera motion).
    n_live = tracks.counts[LIVE]
    live = np.empty(n_live, np.intp)
    for p in range(n_live):
        live[p] = tracks.order[p]
    if cfg.coast_damping < 1.0:
        coasting = np.empty(n_live, np.bool_)
        for p in range(n_live):
            coasting[p] = tracks.time_since_update[live[p]] >= 1
        damp_velocity(tracks.means, select(coasting, live), cfg.coast_damping)
    kalman_predict(tracks.means, tracks.covariances, live, cfg.aspect_noise, cfg.aspect_velocity_noise)
    if frame.use_affine:
        kalman_warp(tracks.means, tracks.covariances, live, frame.affine)
    for p in range(n_live):
        tracks.ages[live[p]] += 1
        tracks.time_since_update[live[p]] += 1

    # -- Association: det_to_slot[n] is the slot detection n matched, -1 for none.
    det_to_slot = np.empty(n_dets, np.intp)
    for n in range(n_dets):
        det_to_slot[n] = -1
    if n_dets and n_live:
        is_confirmed = np.empty(n_live, np.bool_)
        is_tentative = np.empty(n_live, np.bool_)
        for p in range(n_live):
            is_confirmed[p] = tracks.states[live[p]] == CONFIRMED
            is_tentative[p] = not is_confirmed[p]
        confirmed = select(is_confirmed, live)
        tentative = select(is_tentative, live)

        # Stage 1, the matching cascade: the confirmed tracks on the high-score detections, by gated
        # appearance + motion costs (costs.cascade_costs), level by level of frames since update (one
        # level without cascade).
        leftover = confirmed
        strong = flatnonzero(high)
        if confirmed.shape[0] and strong.shape[0]:
            indptr, indices, values = cascade_costs(tracks, confirmed, dets, strong, cfg)
            max_level = cfg.max_age + 1
            levels = np.empty(confirmed.shape[0], np.int32)
            for i in range(confirmed.shape[0]):
                level = tracks.time_since_update[confirmed[i]]
                if not cfg.cascade:
                    level = 1 if level <= max_level else 0
                levels[i] = level
            row_to_col = matching_cascade(indptr, indices, values, strong.shape[0], levels, max_level)
            missed = np.empty(confirmed.shape[0], np.bool_)
            for i in range(confirmed.shape[0]):
                missed[i] = row_to_col[i] < 0
                if not missed[i]:
                    det_to_slot[strong[row_to_col[i]]] = confirmed[i]
            leftover = select(missed, confirmed)

        # Stage 2, IoU: the tentative tracks and the confirmed ones left over that missed only this
        # frame or, among those appearance rejected, at most iou_recovery_frames (1: none, as DeepSORT).
        is_recent = np.empty(leftover.shape[0], np.bool_)
        for i in range(leftover.shape[0]):
            since = tracks.time_since_update[leftover[i]]
            # Only a track that appearance checked: without appearance the cascade already tried IoU.
            checked = frame.use_embeddings and tracks.gallery_counts[leftover[i]] > 0
            is_recent[i] = since == 1 or (checked and since <= cfg.iou_recovery_frames)
        recent = select(is_recent, leftover)
        stage_2 = concatenate(tentative, recent)
        unmatched = _iou_stage(tracks, stage_2, dets, _unmatched(det_to_slot, high, True), cfg, det_to_slot)

        # Stage 3, ByteTrack's second association: the recent tracks still unmatched, on low-score detections.
        if cfg.low_score_matching and recent.shape[0]:
            stage_3 = select(unmatched[tentative.shape[0]:], recent)
            _iou_stage(tracks, stage_3, dets, _unmatched(det_to_slot, high, False), cfg, det_to_slot)

    # -- Correct: Kalman-correct the matched tracks (less trust in low scores with confidence_noise).
    matched = np.empty(n_dets, np.bool_)
    for n in range(n_dets):
        matched[n] = det_to_slot[n] >= 0
    matched_rows = flatnonzero(matched)
    slots = take(matched_rows, det_to_slot)
    noise = np.ones(slots.shape[0])
    if cfg.confidence_noise:
        noise = confidence_noise_scales(take(matched_rows, det_scores))
    kalman_update_scaled(tracks.means, tracks.covariances, slots, take_rows(matched_rows, measurements), noise)
    for m in range(slots.shape[0]):
        tracks.hits[slots[m]] += 1
        tracks.time_since_update[slots[m]] = 0

    # -- Learn appearance: low-score detections continue tracks but do not teach them what they look
    # like, nor do crops another detection covers by more than occluded_fraction (a blend of two people).
    if frame.use_embeddings:
        learn = take(matched_rows, high)
        if cfg.occluded_fraction < 1.0 and matched_rows.shape[0]:
            cover = covered(boxes, by_x, xs, half_width)
            for m in range(matched_rows.shape[0]):
                learn[m] = learn[m] and cover[matched_rows[m]] <= cfg.occluded_fraction
        _remember(tracks, select(learn, slots), dets, select(learn, matched_rows), cfg)

    # -- Confirm the matched tentative tracks with n_init hits.
    is_slot = np.zeros(tracks.means.shape[0], np.bool_)  # scratch mask over slots, all False between uses
    _confirm(tracks, slots, cfg.n_init, is_slot)

    # -- Deaths: free the tentative tracks that missed this frame and confirmed ones missed for longer
    # than max_age; the rest keep their birth order.
    for m in range(slots.shape[0]):
        is_slot[slots[m]] = True
    kept = 0
    n_free = tracks.counts[FREE]
    for p in range(n_live):
        s = live[p]
        if not is_slot[s] and (tracks.states[s] == TENTATIVE or tracks.time_since_update[s] > cfg.max_age):
            tracks.free[n_free] = s
            n_free += 1
        else:
            tracks.order[kept] = s
            kept += 1
    for m in range(slots.shape[0]):
        is_slot[slots[m]] = False

    # -- Births: tentative tracks from the unmatched detections scoring at least the start threshold, in row order.
    starts = np.empty(n_dets, np.bool_)
    for n in range(n_dets):
        starts[n] = det_to_slot[n] < 0 and high[n] and det_scores[n] >= cfg.start_threshold
    new = flatnonzero(starts)
    born = np.empty(new.shape[0], np.intp)
    for m in range(new.shape[0]):
        n_free -= 1
        s = tracks.free[n_free]
        born[m] = s
        tracks.order[kept] = s
        kept += 1
        tracks.track_ids[s] = 0
        tracks.states[s] = TENTATIVE
        tracks.hits[s] = 1
        tracks.ages[s] = 1
        tracks.time_since_update[s] = 0
        tracks.gallery_counts[s] = 0
        tracks.gallery_heads[s] = 0
        tracks.track_classes[s] = classes[new[m]]
        det_to_slot[new[m]] = s
    tracks.counts[LIVE] = kept
    tracks.counts[FREE] = n_free
    if new.shape[0]:
        kalman_initiate(take_rows(new, measurements), born, tracks.means, tracks.covariances,
                        cfg.aspect_noise, cfg.aspect_velocity_noise)
        if frame.use_embeddings:
            _remember(tracks, born, dets, new, cfg)
        _confirm(tracks, born, cfg.n_init, is_slot)

    # -- Report: each input row's id (its confirmed track's, else -1) and, with want_boxes, its output box.
    for i in range(n_input):
        out.ids[i] = -1
        if out.want_boxes:
            for k in range(4):
                out.boxes[i, k] = frame.xyxy[i, k]
    for n in range(n_dets):
        s = det_to_slot[n]
        if s >= 0 and tracks.states[s] == CONFIRMED:
            out.ids[rows[n]] = tracks.track_ids[s]
            if out.want_boxes:
                box = track_box(tracks.means[s])
                for k in range(4):
                    out.boxes[rows[n], k] = box[k]

    # -- Scores: this frame's into the score calibration's window.
    if score_window.keep:
        keep_scores(score_window.ring, score_window.state, score_window.raw)
    return True


@kernel(inline=True)
def _unmatched(det_to_slot: np.ndarray, high: np.ndarray, want_high: bool) -> np.ndarray:
    """The detection rows not matched yet whose ``high`` is ``want_high`` (an IoU stage's columns)."""
    free_mask = np.empty(det_to_slot.shape[0], np.bool_)
    for n in range(det_to_slot.shape[0]):
        free_mask[n] = det_to_slot[n] < 0 and high[n] == want_high
    return flatnonzero(free_mask)


@kernel(inline=True)
def _iou_stage(
    tracks: TrackArrays, slots: np.ndarray, dets: Detections, columns: np.ndarray, cfg: FrameSettings,
    det_to_slot: np.ndarray,
) -> np.ndarray:
    """One IoU stage: the tracks at ``slots`` on the detection rows ``columns``, by ``1 - IoU``.

    A single global assignment (``costs.iou_costs``, one cascade level).
    Records matches in ``det_to_slot``; returns which of ``slots`` stay unmatched.
    """
    unmatched = np.ones(slots.shape[0], np.bool_)
    if slots.shape[0] and columns.shape[0]:
        indptr, indices, values = iou_costs(tracks, slots, dets, columns, cfg)
        one_level = np.ones(slots.shape[0], np.int32)
        row_to_col = matching_cascade(indptr, indices, values, columns.shape[0], one_level, np.int64(1))
        for i in range(slots.shape[0]):
            if row_to_col[i] >= 0:
                unmatched[i] = False
                det_to_slot[columns[row_to_col[i]]] = slots[i]
    return unmatched


@kernel
def _remember(tracks: TrackArrays, slots: np.ndarray, dets: Detections, rows: np.ndarray, cfg: FrameSettings) -> None:
    """Teach the tracks at ``slots`` the embeddings at ``rows`` (gallery ring buffer or EMA)."""
    if cfg.gallery_mode:
        gallery_append(tracks.galleries, tracks.gallery_counts, tracks.gallery_heads, slots, dets.embeddings, rows)
        return
    weights = np.ones(slots.shape[0])
    if cfg.confidence_embedding:
        for m in range(slots.shape[0]):
            weights[m] = min(max(dets.scores[rows[m]], 0.0), 1.0)
    gallery_ema(tracks.galleries, tracks.gallery_counts, slots, dets.embeddings, rows, cfg.ema_momentum, weights)


@kernel
def _confirm(tracks: TrackArrays, slots: np.ndarray, n_init: int, is_slot: np.ndarray) -> None:
    """Confirm tentative tracks among ``slots`` with ``n_init`` hits; new ids follow birth order."""
    any_ready = False
    for m in range(slots.shape[0]):
        s = slots[m]
        if tracks.states[s] == TENTATIVE and tracks.hits[s] >= n_init:
            is_slot[s] = True
            any_ready = True
    if not any_ready:
        return
    counts = tracks.counts
    for p in range(counts[LIVE]):
        s = tracks.order[p]
        if is_slot[s]:
            is_slot[s] = False
            tracks.states[s] = CONFIRMED
            tracks.track_ids[s] = counts[NEXT_ID]
            counts[NEXT_ID] += 1


use_kernel_cache()  # relocatable, read-only-safe cache folders: see kernels/cache.py
drop_stale(track_frame)  # before anything loads a cached kernel: see kernels/stale.py
