"""Input checks shared by the tracker's entry points.

Two kinds of problem: the *shape* or *dtype* of an argument is wrong (always
an error, since nothing sensible can be done), or some *rows* hold bad values
(NaN or infinite coordinates, coordinates beyond ``MAX_COORDINATE``, inverted
or zero-area boxes, NaN or infinite scores, boxes wholly outside the frame,
broken embeddings). Bad rows follow the ``on_invalid`` policy: drop them with a
warning (their output id is -1) or raise.

Scores may be any finite number (detectors with unnormalised scores work as
they are); the tracker compares them, as given, with
``track_activation_threshold``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..kernels.aot import row_kernels
from ..kernels.rows import (
    BAD_EMBEDDING,
    BAD_SCORE,
    BEYOND_RANGE,
    EMPTY_BOX,
    NOT_FINITE,
    OUTSIDE_FRAME,
)

# Compiled ahead of time when the wheel ships them (aot.py), else Numba's JIT.
row_problems, unit_rows = row_kernels()

# Largest |coordinate| of a box, in pixels. Far beyond any image, small enough
# that the Kalman filter's variances (which scale with the box height squared)
# and IoU areas stay finite and precise.
MAX_COORDINATE = 1e6


class InvalidDetectionWarning(UserWarning):
    """Some detections were dropped because their values were invalid."""


# dtype kinds of real numbers (bool, ints, floats, and timedelta, which numpy counts as an integer).
_REAL_KINDS = "biufm"


def as_float_array(value: object, name: str, ndim: int, dtype: type = np.float64) -> np.ndarray:
    """``value`` as a float array of rank ``ndim``, or a TypeError/ValueError naming ``name``."""
    if type(value) is np.ndarray:
        array = value  # the usual case (this runs three times a frame): no conversion to try
    else:
        try:
            array = np.asarray(value)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from exc
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex dtype {array.dtype}")
    if kind not in _REAL_KINDS:
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    return array if array.dtype == dtype else array.astype(dtype)


@dataclass
class DetectionArrays:
    """One frame's detections with shapes and dtypes checked (values not yet)."""

    xyxy: np.ndarray  # (N, 4) float64, C-contiguous
    scores: np.ndarray  # (N,) float64
    embeddings: np.ndarray | None  # (N, D) float32, C-contiguous, as given (not normalised)

    @property
    def count(self) -> int:
        return int(self.xyxy.shape[0])


def detection_arrays(
    xyxy: object, scores: object | None, embeddings: object | None, *, embedding_dim: int
) -> DetectionArrays:
    """Check shapes and dtypes of one frame's detections (``embedding_dim`` 0: any dimension)."""
    if isinstance(xyxy, (list, tuple)) and len(xyxy) == 0:
        xyxy = np.zeros((0, 4))  # an empty list is a frame without detections
    boxes = as_float_array(xyxy, "xyxy", 2)
    if boxes.shape[1] != 4 and boxes.shape[0] != 0:
        raise ValueError(f"xyxy must have shape (N, 4), got {boxes.shape}")
    boxes = np.ascontiguousarray(boxes.reshape(-1, 4))
    count = boxes.shape[0]
    if scores is None:
        conf = np.ones(count)
    else:
        conf = np.ascontiguousarray(as_float_array(scores, "scores", 1))
        if conf.shape[0] != count:
            raise ValueError(f"scores must have shape ({count},) to match xyxy, got {conf.shape}")
    emb = None
    if embeddings is not None:
        # float32 throughout: embeddings are stored and compared in float32.
        emb = np.ascontiguousarray(as_float_array(embeddings, "embeddings", 2, dtype=np.float32))
        if emb.shape[0] != count:
            raise ValueError(f"embeddings must have {count} rows to match xyxy, got shape {emb.shape}")
        if count and emb.shape[1] == 0:
            raise ValueError("embeddings must have at least one column, got shape (N, 0)")
        if embedding_dim and count and emb.shape[1] != embedding_dim:
            raise ValueError(
                f"embeddings must have dimension {embedding_dim} (the dimension this tracker "
                f"already holds), got {emb.shape[1]}; call reset() to change models"
            )
    return DetectionArrays(boxes, conf, emb)


def frame_size(frame_shape: tuple[int, ...] | None) -> tuple[float, float]:
    """``(width, height)`` for the row checks; ``(0, 0)`` means no frame."""
    return (float(frame_shape[1]), float(frame_shape[0])) if frame_shape is not None else (0.0, 0.0)


def kept_rows(problems: np.ndarray, on_invalid: str, stacklevel: int = 4) -> np.ndarray:
    """Rows without problem bits; warns about the others (``"drop"``) or raises ``ValueError``."""
    reasons = {
        NOT_FINITE: "non-finite coordinates",
        BEYOND_RANGE: f"a coordinate beyond +-{MAX_COORDINATE:g}",
        EMPTY_BOX: "x2 <= x1 or y2 <= y1 (inverted or zero-area box)",
        BAD_SCORE: "score not finite",
        OUTSIDE_FRAME: "box wholly outside the frame",
        BAD_EMBEDDING: "embedding not finite or all zero",
    }
    summary = "; ".join(
        f"{int(mask.sum())} with {reason} (rows {np.flatnonzero(mask)[:5].tolist()})"
        for bit, reason in reasons.items()
        if (mask := (problems & bit) != 0).any()
    )
    if on_invalid == "raise":
        raise ValueError(f"invalid detections: {summary}")
    ok = problems == 0
    warnings.warn(
        f"dropped {int((~ok).sum())} of {problems.shape[0]} detections: {summary}",
        InvalidDetectionWarning,
        stacklevel=stacklevel,  # the caller of DeepSORTTracker.update_arrays
    )
    return np.flatnonzero(ok)


def check_rows(
    arrays: DetectionArrays, *, frame_shape: tuple[int, ...] | None, on_invalid: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows that may be tracked and their unit embeddings (None without embeddings).

    The checks the frame kernel runs itself, for callers that need the clean
    rows before tracking (to crop them for the feature extractor).
    """
    problems = np.empty(arrays.count, dtype=np.uint8)
    width, height = frame_size(frame_shape)
    clean = row_problems(arrays.xyxy, arrays.scores, width, height, MAX_COORDINATE, problems)
    unit = None
    if arrays.embeddings is not None:
        unit = np.empty_like(arrays.embeddings)
        clean = unit_rows(arrays.embeddings, unit, problems) and clean
    if clean:
        return np.arange(arrays.count), unit
    kept = kept_rows(problems, on_invalid, stacklevel=5)
    return kept, (unit[kept] if unit is not None else None)
