"""What the frame kernel and its stages pass around, as named tuples.

Python hands the frame kernel plain tuples in these fields' order and the
kernel names them (``TrackArrays(*store)``): Numba types a plain tuple in C
at each call (about 0.4 us) but a named tuple built in Python through the
interpreter (about 2 us). Inside compiled code a named tuple costs nothing.

Shapes: ``C`` slots (the store's capacity), ``B`` gallery entries per track,
``D`` embedding dimensions, ``N`` detections.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TrackArrays(NamedTuple):
    """The track store's arrays (``tracks.TrackStore``), one row per slot; changed in place."""

    means: np.ndarray  # (C, 8) float64, xyah and its velocity
    covariances: np.ndarray  # (C, 8, 8) float64
    track_ids: np.ndarray  # (C,) int64, 0 until confirmed
    states: np.ndarray  # (C,) int8, constants.TENTATIVE or CONFIRMED
    hits: np.ndarray  # (C,) int32
    ages: np.ndarray  # (C,) int32
    time_since_update: np.ndarray  # (C,) int32
    galleries: np.ndarray  # (C, B, D) float32, or float16 bits as uint16 (half.py)
    gallery_counts: np.ndarray  # (C,) int32
    gallery_heads: np.ndarray  # (C,) int32, next ring-buffer entry to write
    track_classes: np.ndarray  # (C,) int64
    order: np.ndarray  # (C,) intp, live slots in birth order first
    free: np.ndarray  # (C,) intp, a stack of unused slots
    counts: np.ndarray  # (3,) int64, indexed by constants.LIVE, FREE, NEXT_ID


class FrameInput(NamedTuple):
    """One frame's detections as the caller gives them."""

    xyxy: np.ndarray  # (N, 4) float64
    scores: np.ndarray  # (N,) float64
    embeddings: np.ndarray  # (N, D) float32, unit rows; read only if use_embeddings
    use_embeddings: bool
    classes: np.ndarray  # (N,) int64
    affine: np.ndarray  # (2, 3) float64 camera motion, applied if use_affine
    use_affine: bool


class RowChecks(NamedTuple):
    """The row checks run before anything changes (``rows.row_problems``, ``rows.unit_rows``)."""

    enabled: bool
    frame_width: float  # <= 0: no frame
    frame_height: float
    coordinate_limit: float
    problems: np.ndarray  # (N,) uint8 out: each row's problem bits
    unit: np.ndarray  # (N, D) float32 out: the normalised embeddings


class ScoreWindow(NamedTuple):
    """The score calibration's window (``scores``), read and kept by the frame kernel."""

    expect_unit: bool  # the scores are passed as given: refuse the frame (change nothing) if a finite one is
    # outside [0, 1] ("unit" calibration, nothing outside seen yet; the caller then calibrates and calls again)
    keep: bool  # keep ``raw``'s finite scores in the window once the frame is tracked
    raw: np.ndarray  # (N,) float64, the scores as the detector gave them
    ring: np.ndarray  # (W,) float64
    state: np.ndarray  # (4,) int64, indexed by scores.HEAD, COUNT, OUTSIDE, SEEN


class FrameOutput(NamedTuple):
    """Where the frame kernel writes its results, per input row."""

    ids: np.ndarray  # (N,) int64: the confirmed track's id, -1 for none
    boxes: np.ndarray  # (N, 4) float64: the track's corrected box, else the row's own
    want_boxes: bool


class Detections(NamedTuple):
    """The detections that take part in association (score >= ``minimum_score``), and their index by x."""

    boxes: np.ndarray  # (M, 4) float64 xyxy
    measurements: np.ndarray  # (M, 4) float64 xyah
    scores: np.ndarray  # (M,) float64
    classes: np.ndarray  # (M,) int64
    embeddings: np.ndarray  # (M, D) float32 unit rows; read only if use_embeddings
    use_embeddings: bool
    high: np.ndarray  # (M,) bool: takes part in every stage (False: the low-score stage only)
    by_x: np.ndarray  # (M,) intp: rows by centre x (costs.sort_by_x)
    xs: np.ndarray  # (M,) float64: the centre x values in that order
    half_width: float  # the largest half width: a box overlaps only centres within it


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
    lost_overlap_beyond: float  # the lost-track rule holds for pairs whose gate distance exceeds this (inf: none)
    recent_overlap_beyond: float  # the same for tracks matched in the previous frame (recent_track_rule)
    class_aware: bool
    cascade: bool
    max_age: int
    activation_threshold: float
    start_threshold: float  # the score a detection needs to start a track (>= activation_threshold)
    low_score_matching: bool
    minimum_score: float  # -inf: every detection is used
    confidence_noise: bool
    gallery_mode: bool
    ema_momentum: float
    confidence_embedding: bool
    coast_damping: float
    aspect_noise: float  # the Kalman process noise of the aspect ratio (std per frame)
    aspect_velocity_noise: float  # and of its velocity
    n_init: int
    iou_recovery_frames: int
    occluded_fraction: float
