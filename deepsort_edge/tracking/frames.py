"""One frame in and out of the tracker: the prepared frame, the result, and results packaged as ``sv.Detections``.

:meth:`~deepsort_edge.tracking.tracker.DeepSORTTracker.prepare` returns a
:class:`PreparedFrame` (the checked input, the rows that need features),
:meth:`~deepsort_edge.tracking.tracker.DeepSORTTracker.commit` a
:class:`FrameResult` per input row; :func:`detached_result` packages it the
way ``update`` returns it, and :func:`detection_arguments` reads ``sv.Detections``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .validation import (
    DetectionArrays,
)

__all__ = [
    "FrameResult",
    "PreparedFrame",
    "check_timestamp",
    "detached_result",
    "detection_arguments",
    "frame_classes",
]


class FrameResult(NamedTuple):
    """What :meth:`DeepSORTTracker.commit` returns for every input row, in input order."""

    ids: np.ndarray
    """``(N,)`` int64 track ids, -1 where the row did not join a confirmed track."""
    track_xyxy: np.ndarray
    """``(N, 4)`` float64: the filter's corrected box of each tracked row, the row's own box elsewhere."""


@dataclass(eq=False, slots=True)  # not frozen: a frozen init costs microseconds, and this is made every frame
class PreparedFrame:
    """One frame checked by :meth:`DeepSORTTracker.prepare`, waiting for :meth:`~DeepSORTTracker.commit` (read-only).

    Attributes:
        xyxy: ``(N, 4)`` float64 boxes of every input row.
        embed_rows: ``(M,)`` input rows whose features the tracker needs
            (empty when none: embeddings given, no extractor, motion only).
        embed_boxes: ``(M, 4)`` their boxes.
        embed_input: what a feature extractor is called with: the rows of the
            ``sv.Detections`` given to ``prepare`` (``detections[embed_rows]``),
            else ``embed_boxes``.
        frame: the frame given (for crops and camera motion), or None.
    """

    xyxy: np.ndarray
    embed_rows: np.ndarray
    embed_boxes: np.ndarray
    embed_input: Any = field(repr=False)
    frame: np.ndarray | None = field(repr=False)
    _arrays: DetectionArrays = field(repr=False)  # the kernel's input rows (all, or the checked ones)
    _classes: np.ndarray = field(repr=False)
    _kept: np.ndarray | None = field(repr=False)  # input rows of _arrays; None: unchecked (the kernel checks)
    _frame_shape: tuple[int, ...] | None = field(repr=False)
    _token: tuple[Any, int] = field(repr=False)  # (tracker, epoch): commit refuses a stale frame
    _raw_scores: np.ndarray = field(repr=False)  # the scores given, for the score calibration's window

    @property
    def count(self) -> int:
        """Rows given (N)."""
        return int(self.xyxy.shape[0])


def detection_arguments(detections: Any, frame: np.ndarray | None) -> tuple[Any, Any, Any, Any, Any]:
    """``sv.Detections`` (and a frame) as the arguments of :meth:`DeepSORTTracker.update_arrays`.

    ``(xyxy, confidence, data["embeddings"] or None, frame, class_id)``.
    """
    embeddings = detections.data.get("embeddings") if detections.data else None
    return detections.xyxy, detections.confidence, embeddings, frame, detections.class_id


def _detached(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: _detached(item) for key, item in value.items()}
    return copy.deepcopy(value)


def detached_result(detections: Any, tracked: FrameResult) -> Any:
    """A copy of ``detections`` sharing nothing with it, with ``tracker_id`` and ``data["track_xyxy"]``.

    Every field (boxes, masks, scores, classes, each ``data`` entry, metadata)
    is copied, so writing to the result never changes the caller's detections.
    """
    result = copy.copy(detections)
    for f in dataclasses.fields(detections):
        setattr(result, f.name, _detached(getattr(detections, f.name)))
    result.tracker_id = tracked.ids
    result.data["track_xyxy"] = tracked.track_xyxy
    return result


def frame_classes(class_id: object, count: int) -> np.ndarray:
    """``(count,)`` int64 classes; None means one class for every row."""
    if class_id is None:
        return np.zeros(count, dtype=np.int64)
    classes = np.asarray(class_id)
    if classes.shape != (count,):
        raise ValueError(f"class_id must have shape ({count},) to match xyxy, got {classes.shape}")
    if classes.size and not np.issubdtype(classes.dtype, np.integer):
        if not np.issubdtype(classes.dtype, np.floating) or not np.all(np.isfinite(classes)) or np.any(
            classes != np.round(classes)
        ):
            raise ValueError("class_id must hold whole numbers")
    return classes.astype(np.int64)


def check_timestamp(timestamp: object) -> None:
    """A frame's timestamp is None or a finite real number; else TypeError/ValueError."""
    if timestamp is None:
        return
    if isinstance(timestamp, (bool, np.bool_)) or not isinstance(timestamp, (int, float, np.integer, np.floating)):
        raise TypeError(f"timestamp must be a number or None, got {type(timestamp).__name__}")
    if not math.isfinite(timestamp):
        raise ValueError(f"timestamp must be finite, got {timestamp!r}")
