"""The frame path of a tracker: prepare (check the input, choose the crops), commit (features, kernel, results).

Mixed into :class:`~deepsort_edge.tracking.tracker.DeepSORTTracker`, whose ``prepare``,
``commit`` and ``update`` run these two halves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..appearance.preprocess import check_bgr_image
from .frames import FrameResult, PreparedFrame, frame_classes
from .score_calibration import check_given_scores
from .validation import (
    DetectionArrays,
    check_rows,
    detection_arrays,
    kept_rows,
)

__all__ = ["FramePath"]


_NO_BOXES = np.zeros((0, 4))
_NO_ROWS = np.zeros(0, dtype=np.intp)
# warnings.warn's stacklevel from kept_rows in _commit to the caller of update/commit.
_USER_STACKLEVEL = 4


class FramePath:
    """The two halves of an update, behind ``prepare``/``commit``: check the input once, then track it.

    ``_prepare`` validates a frame and names the rows whose crops need features;
    ``_commit`` turns their features into unit embeddings, estimates camera
    motion, calls the frame kernel (``_run_kernel``, in the tracker module)
    and scatters ids and boxes back to the input rows. Nothing in the tracker
    changes before ``_commit`` succeeds.
    """

    def _prepare(
        self,
        xyxy: Any,
        scores: Any,
        embeddings: Any,
        frame: np.ndarray | None,
        class_id: Any,
        source: Any,
    ) -> PreparedFrame:
        """Validate one frame once; check its rows here only when something must happen before tracking."""
        settings = self._settings
        frame_shape = check_bgr_image(frame).shape if frame is not None else None
        arrays = detection_arrays(xyxy, scores, embeddings, embedding_dim=self._store.embedding_dim)
        raw_scores = arrays.scores
        if settings.use_appearance is False:
            arrays.embeddings = None
        extract = arrays.embeddings is None and self.feature_extractor is not None and settings.use_appearance is not False
        if extract or self._camera is not None or not (
            settings.score_calibration == "unit" and self._scores.all_in_unit_range
        ):
            arrays.scores = self._calibrated(raw_scores)
        # Else the frame kernel reads the scores as given if they all lie in [0, 1] (see _commit).
        classes = frame_classes(class_id, arrays.count)
        if arrays.embeddings is None and not extract and settings.use_appearance is True and arrays.count:
            raise ValueError(
                "use_appearance=True needs embeddings: pass detections.data['embeddings'] "
                "or give the tracker a feature_extractor and the frame"
            )
        token = (self, self._epoch)
        if not (extract or self._camera is not None):
            # The frame kernel checks the rows itself (one pass) and changes nothing when one is bad.
            return PreparedFrame(arrays.xyxy, _NO_ROWS, _NO_BOXES, _NO_BOXES, frame, arrays, classes, None,
                                 frame_shape, token, raw_scores)
        # Crops and the camera-motion estimate need the clean rows before tracking.
        kept, unit = check_rows(arrays, frame_shape=frame_shape, on_invalid=settings.on_invalid)
        clean = DetectionArrays(arrays.xyxy[kept], arrays.scores[kept], unit)
        embed_rows = _NO_ROWS
        if extract:
            # Rows below minimum_score take no part (the kernel skips them): no crops for them.
            minimum = settings.minimum_score
            usable = np.flatnonzero(clean.scores >= minimum) if minimum is not None else None
            embed_rows = kept if usable is None else kept[usable]
            if embed_rows.size and frame is None:
                raise ValueError(
                    "frame is required: the tracker has a feature_extractor and no embeddings "
                    "were given (pass frame=..., or detections.data['embeddings'])"
                )
        embed_boxes = arrays.xyxy[embed_rows]
        embed_input = source[embed_rows] if source is not None and embed_rows.size else embed_boxes
        return PreparedFrame(arrays.xyxy, embed_rows, embed_boxes, embed_input, frame, clean, classes[kept], kept,
                             frame_shape, token, raw_scores)

    def _features(self, prepared: PreparedFrame) -> np.ndarray | None:
        if not prepared.embed_rows.size:
            return None
        return self.feature_extractor.extract_features(prepared.frame, prepared.embed_input)  # type: ignore[union-attr]

    def _commit(self, prepared: PreparedFrame, features: np.ndarray | None) -> FrameResult:
        if not isinstance(prepared, PreparedFrame):
            raise TypeError(f"prepared must be a PreparedFrame from prepare(), got {type(prepared).__name__}")
        owner, epoch = prepared._token
        if owner is not self or epoch != self._epoch:
            raise ValueError(
                "prepared is stale: it comes from another tracker, or this tracker changed "
                "(an update, commit, reset or new settings) since prepare()"
            )
        arrays = prepared._arrays
        if prepared.embed_rows.size:
            if features is None:
                raise ValueError(f"features are required for the {prepared.embed_rows.size} rows in embed_rows")
            unit = self._unit_features(features, prepared.embed_rows.size)
            if unit.shape[0] == arrays.count:
                embeddings = unit
            else:  # rows below minimum_score: never read by the kernel
                embeddings = np.zeros((arrays.count, unit.shape[1]), dtype=np.float32)
                embeddings[np.searchsorted(prepared._kept, prepared.embed_rows)] = unit
            arrays = DetectionArrays(arrays.xyxy, arrays.scores, embeddings)
        elif features is not None and len(features):
            raise ValueError("features were given, but no row of this prepared frame needs them (embed_rows is empty)")
        frame = prepared.frame
        affine = self._camera.estimate(frame) if self._camera is not None and frame is not None else None
        kept = prepared._kept
        classes = prepared._classes
        adapter, raw = self._adapter, None
        if adapter is not None and arrays.embeddings is not None:
            raw, projected = adapter.before_frame(arrays.embeddings)
            arrays = DetectionArrays(arrays.xyxy, arrays.scores, projected)
        given = prepared._raw_scores
        # Scores left as given by _prepare: the kernel checks that "unit" may read them so.
        as_given = kept is None and arrays.scores is given and self._settings.score_calibration == "unit"
        ids, boxes, problems, unit = self._run_kernel(
            arrays, classes, affine, kept is None, prepared._frame_shape, given if kept is None else given[kept],
            as_given,
        )
        if ids is None and as_given:
            calibrated = self._calibrated(given)
            if calibrated is not given:  # a score outside [0, 1]: the frame is read on the calibrated scale
                arrays = DetectionArrays(arrays.xyxy, calibrated, arrays.embeddings)
                ids, boxes, problems, unit = self._run_kernel(
                    arrays, classes, affine, True, prepared._frame_shape, given, False
                )
        tracked = arrays
        if ids is None:
            # The kernel found bad rows and changed nothing: drop them (or raise) and track the rest.
            kept = kept_rows(problems, self.on_invalid, stacklevel=_USER_STACKLEVEL)
            clean = DetectionArrays(
                arrays.xyxy[kept], arrays.scores[kept], unit[kept] if arrays.embeddings is not None else None
            )
            classes = classes[kept]
            ids, boxes, _, _ = self._run_kernel(clean, classes, affine, False, None, given[kept], False)
            tracked, raw = clean, None if raw is None else raw[kept]
        if raw is not None:
            adapter.after_frame(ids, tracked.xyxy, raw, self._store)
        self.frame_count += 1
        self._epoch += 1
        if kept is None:
            return FrameResult(ids, boxes)
        # The one scatter from the tracked rows back to the input's.
        all_ids = np.full(prepared.count, -1, dtype=np.int64)
        all_ids[kept] = ids
        all_boxes = np.array(prepared.xyxy, dtype=np.float64, copy=True)
        all_boxes[kept] = boxes
        return FrameResult(all_ids, all_boxes)

    def _unit_features(self, features: Any, rows: int) -> np.ndarray:
        """Extractor output ``(rows, D)`` as C-contiguous unit float32 rows, or a ValueError."""
        raw = np.asarray(features, dtype=np.float32)
        if raw.ndim != 2 or raw.shape[0] != rows:
            raise ValueError(f"feature_extractor returned shape {raw.shape}, expected ({rows}, D)")
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        if not np.isfinite(raw).all() or (norms == 0).any():
            raise ValueError("feature_extractor returned non-finite or all-zero embeddings")
        if self._store.embedding_dim and raw.shape[1] != self._store.embedding_dim:
            raise ValueError(
                f"feature_extractor returned {raw.shape[1]}-d embeddings, this tracker holds "
                f"{self._store.embedding_dim}-d ones; call reset() to change models"
            )
        return np.ascontiguousarray(raw / norms)

    def _calibrated(self, scores: np.ndarray) -> np.ndarray:
        """What every score rule reads (``score_calibration``; see :mod:`deepsort_edge.tracking.score_calibration`)."""
        mode = self._settings.score_calibration
        if mode == "none":
            check_given_scores(self._settings, scores)
            return scores
        return self._scores.calibrate(scores, mode)
