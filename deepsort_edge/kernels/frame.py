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

The stages are inlined into ``track_frame`` (``kernel(inline=True)``), so
the whole frame still compiles as one function: a compiled callee is
optimised again inside every caller, and each level of calls would add
compile time.
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
    scores = ScoreWindow(*window)
    cfg = FrameSettings(*settings)
    embeddings = frame.embeddings
    if check.enabled:
        if not _rows_are_clean(frame, check):
            return False
        if frame.use_embeddings:
            embeddings = check.unit
    if scores.expect_unit and not finite_in_unit_range(frame.scores):
        return False
    rows, dets = _taking_part(frame, embeddings, cfg)
    live = _predict(tracks, frame, cfg)

    # Association: det_to_slot[n] is the slot detection n matched, -1 for none.
    det_to_slot = np.empty(rows.shape[0], np.intp)
    for n in range(rows.shape[0]):
        det_to_slot[n] = -1
    if rows.shape[0] and live.shape[0]:
        confirmed, tentative = _by_state(tracks, live)
        leftover = _cascade(tracks, confirmed, dets, cfg, det_to_slot)
        recent = _recently_missed(tracks, leftover, dets, cfg)
        stage_2 = concatenate(tentative, recent)
        unmatched = _iou_stage(tracks, stage_2, dets, _unmatched(det_to_slot, dets.high, True), cfg, det_to_slot)
        if cfg.low_score_matching and recent.shape[0]:
            # ByteTrack's second association: the recent tracks still unmatched, on low-score detections.
            stage_3 = select(unmatched[tentative.shape[0]:], recent)
            _iou_stage(tracks, stage_3, dets, _unmatched(det_to_slot, dets.high, False), cfg, det_to_slot)

    matched_rows, slots = _correct(tracks, dets, cfg, det_to_slot)
    if dets.use_embeddings:
        _learn_appearance(tracks, dets, cfg, matched_rows, slots)
    is_slot = np.zeros(tracks.means.shape[0], np.bool_)  # scratch mask over slots, all False between uses
    _confirm(tracks, slots, cfg.n_init, is_slot)
    _delete_missed(tracks, live, slots, cfg, is_slot)
    born = _start_tracks(tracks, dets, cfg, det_to_slot)
    _confirm(tracks, born, cfg.n_init, is_slot)
    _report(tracks, frame, rows, det_to_slot, FrameOutput(*outputs))
    if scores.keep:
        keep_scores(scores.ring, scores.state, scores.raw)
    return True


@kernel(inline=True)
def _rows_are_clean(frame: FrameInput, check: RowChecks) -> bool:
    """Each row's problem bits into ``check.problems`` and unit embeddings into ``check.unit``; True if none."""
    clean = row_problems(frame.xyxy, frame.scores, check.frame_width, check.frame_height, check.coordinate_limit,
                         check.problems)
    if frame.use_embeddings:
        clean = unit_rows(frame.embeddings, check.unit, check.problems) and clean
    return clean


@kernel(inline=True)
def _taking_part(frame: FrameInput, embeddings: np.ndarray, cfg: FrameSettings) -> tuple[np.ndarray, Detections]:
    """The input rows scoring at least ``minimum_score`` (the rest take no part at all), as :class:`Detections`."""
    n_input = frame.xyxy.shape[0]
    usable = np.empty(n_input, np.bool_)
    for i in range(n_input):
        usable[i] = frame.scores[i] >= cfg.minimum_score
    rows = flatnonzero(usable)
    if rows.shape[0] < n_input:
        boxes = take_rows(rows, frame.xyxy)
        scores = take(rows, frame.scores)
        classes = take(rows, frame.classes)
        embeddings = take_rows(rows, embeddings) if frame.use_embeddings else embeddings
    else:
        boxes, scores, classes = frame.xyxy, frame.scores, frame.classes
    n_dets = boxes.shape[0]
    measurements = xyxy_to_xyah(boxes)
    # With low_score_matching, detections below the activation threshold join the last stage only.
    high = np.empty(n_dets, np.bool_)
    for n in range(n_dets):
        high[n] = scores[n] >= cfg.activation_threshold or not cfg.low_score_matching
    by_x, xs = sort_by_x(measurements)
    half_width = 0.0
    for n in range(n_dets):
        half_width = max(half_width, 0.5 * (boxes[n, 2] - boxes[n, 0]))
    return rows, Detections(boxes, measurements, scores, classes, embeddings, frame.use_embeddings, high, by_x, xs,
                            half_width)


@kernel(inline=True)
def _predict(tracks: TrackArrays, frame: FrameInput, cfg: FrameSettings) -> np.ndarray:
    """Every live track one frame ahead (damped while coasting, warped by camera motion); returns the live slots."""
    n_live = tracks.counts[LIVE]
    live = np.empty(n_live, np.intp)
    for p in range(n_live):
        live[p] = tracks.order[p]
    if cfg.coast_damping < 1.0:
        coasting = np.empty(n_live, np.bool_)
        for p in range(n_live):
            coasting[p] = tracks.time_since_update[live[p]] >= 1
        damp_velocity(tracks.means, select(coasting, live), cfg.coast_damping)
    kalman_predict(tracks.means, tracks.covariances, live)
    if frame.use_affine:
        kalman_warp(tracks.means, tracks.covariances, live, frame.affine)
    for p in range(n_live):
        tracks.ages[live[p]] += 1
        tracks.time_since_update[live[p]] += 1
    return live


@kernel(inline=True)
def _by_state(tracks: TrackArrays, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``live`` slots split into ``(confirmed, tentative)``, order kept."""
    is_confirmed = np.empty(live.shape[0], np.bool_)
    is_tentative = np.empty(live.shape[0], np.bool_)
    for p in range(live.shape[0]):
        is_confirmed[p] = tracks.states[live[p]] == CONFIRMED
        is_tentative[p] = not is_confirmed[p]
    return select(is_confirmed, live), select(is_tentative, live)


@kernel(inline=True)
def _cascade(
    tracks: TrackArrays, confirmed: np.ndarray, dets: Detections, cfg: FrameSettings, det_to_slot: np.ndarray
) -> np.ndarray:
    """Stage 1: the matching cascade of the ``confirmed`` slots on the high-score detections.

    Gated appearance + motion costs (``costs.cascade_costs``), solved level
    by level of frames since update (one level without ``cascade``).
    Records matches in ``det_to_slot``; returns the confirmed slots left over.
    """
    strong = flatnonzero(dets.high)
    if not (confirmed.shape[0] and strong.shape[0]):
        return confirmed
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
    return select(missed, confirmed)


@kernel(inline=True)
def _recently_missed(tracks: TrackArrays, leftover: np.ndarray, dets: Detections, cfg: FrameSettings) -> np.ndarray:
    """The ``leftover`` slots the IoU stage may still match.

    Those missed only this frame and, among those appearance rejected, those
    missed for at most ``iou_recovery_frames`` (1: none, as DeepSORT).
    """
    is_recent = np.empty(leftover.shape[0], np.bool_)
    for i in range(leftover.shape[0]):
        missed = tracks.time_since_update[leftover[i]]
        # Only a track that appearance checked: without appearance the cascade already tried IoU.
        checked = dets.use_embeddings and tracks.gallery_counts[leftover[i]] > 0
        is_recent[i] = missed == 1 or (checked and missed <= cfg.iou_recovery_frames)
    return select(is_recent, leftover)


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


@kernel(inline=True)
def _correct(
    tracks: TrackArrays, dets: Detections, cfg: FrameSettings, det_to_slot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Kalman-correct the matched tracks (less trust in low scores with ``confidence_noise``); returns
    ``(matched_rows, slots)``, the matched detection rows and their tracks' slots."""
    matched = np.empty(det_to_slot.shape[0], np.bool_)
    for n in range(det_to_slot.shape[0]):
        matched[n] = det_to_slot[n] >= 0
    matched_rows = flatnonzero(matched)
    slots = take(matched_rows, det_to_slot)
    noise = np.ones(slots.shape[0])
    if cfg.confidence_noise:
        noise = confidence_noise_scales(take(matched_rows, dets.scores))
    kalman_update_scaled(tracks.means, tracks.covariances, slots, take_rows(matched_rows, dets.measurements), noise)
    for m in range(slots.shape[0]):
        tracks.hits[slots[m]] += 1
        tracks.time_since_update[slots[m]] = 0
    return matched_rows, slots


@kernel(inline=True)
def _learn_appearance(
    tracks: TrackArrays, dets: Detections, cfg: FrameSettings, matched_rows: np.ndarray, slots: np.ndarray
) -> None:
    """Teach the matched tracks their detections' embeddings.

    Low-score detections continue tracks but do not teach them what they look
    like, nor do crops another detection covers by more than
    ``occluded_fraction`` (a blend of two people).
    """
    learn = take(matched_rows, dets.high)
    if cfg.occluded_fraction < 1.0 and matched_rows.shape[0]:
        cover = covered(dets.boxes, dets.by_x, dets.xs, dets.half_width)
        for m in range(matched_rows.shape[0]):
            learn[m] = learn[m] and cover[matched_rows[m]] <= cfg.occluded_fraction
    _remember(tracks, select(learn, slots), dets, select(learn, matched_rows), cfg)


@kernel(inline=True)
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


@kernel(inline=True)
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


@kernel(inline=True)
def _delete_missed(
    tracks: TrackArrays, live: np.ndarray, slots: np.ndarray, cfg: FrameSettings, is_slot: np.ndarray
) -> None:
    """Free the tentative tracks that missed this frame and confirmed ones missed for longer than max_age."""
    for m in range(slots.shape[0]):
        is_slot[slots[m]] = True
    kept = 0
    n_free = tracks.counts[FREE]
    for p in range(live.shape[0]):
        s = live[p]
        if not is_slot[s] and (tracks.states[s] == TENTATIVE or tracks.time_since_update[s] > cfg.max_age):
            tracks.free[n_free] = s
            n_free += 1
        else:
            tracks.order[kept] = s
            kept += 1
    for m in range(slots.shape[0]):
        is_slot[slots[m]] = False
    tracks.counts[LIVE] = kept
    tracks.counts[FREE] = n_free


@kernel(inline=True)
def _start_tracks(tracks: TrackArrays, dets: Detections, cfg: FrameSettings, det_to_slot: np.ndarray) -> np.ndarray:
    """Tentative tracks from the unmatched high-score detections; returns their slots (birth order)."""
    n_dets = det_to_slot.shape[0]
    starts = np.empty(n_dets, np.bool_)
    for n in range(n_dets):
        starts[n] = det_to_slot[n] < 0 and dets.high[n] and dets.scores[n] >= cfg.activation_threshold
    new = flatnonzero(starts)
    born = np.empty(new.shape[0], np.intp)
    if not new.shape[0]:
        return born
    n_live = tracks.counts[LIVE]
    n_free = tracks.counts[FREE]
    for m in range(new.shape[0]):
        n_free -= 1
        s = tracks.free[n_free]
        born[m] = s
        tracks.order[n_live] = s
        n_live += 1
        tracks.track_ids[s] = 0
        tracks.states[s] = TENTATIVE
        tracks.hits[s] = 1
        tracks.ages[s] = 1
        tracks.time_since_update[s] = 0
        tracks.gallery_counts[s] = 0
        tracks.gallery_heads[s] = 0
        tracks.track_classes[s] = dets.classes[new[m]]
        det_to_slot[new[m]] = s
    tracks.counts[LIVE] = n_live
    tracks.counts[FREE] = n_free
    kalman_initiate(take_rows(new, dets.measurements), born, tracks.means, tracks.covariances)
    if dets.use_embeddings:
        _remember(tracks, born, dets, new, cfg)
    return born


@kernel(inline=True)
def _report(tracks: TrackArrays, frame: FrameInput, rows: np.ndarray, det_to_slot: np.ndarray,
            out: FrameOutput) -> None:
    """Each input row's id (its confirmed track's, else -1) and, with ``want_boxes``, its output box."""
    for i in range(frame.xyxy.shape[0]):
        out.ids[i] = -1
        if out.want_boxes:
            for k in range(4):
                out.boxes[i, k] = frame.xyxy[i, k]
    for n in range(det_to_slot.shape[0]):
        s = det_to_slot[n]
        if s >= 0 and tracks.states[s] == CONFIRMED:
            out.ids[rows[n]] = tracks.track_ids[s]
            if out.want_boxes:
                box = track_box(tracks.means[s])
                for k in range(4):
                    out.boxes[rows[n], k] = box[k]


use_kernel_cache()  # relocatable, read-only-safe cache folders: see kernels/cache.py
drop_stale(track_frame)  # before anything loads a cached kernel: see kernels/stale.py
