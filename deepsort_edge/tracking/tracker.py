"""DeepSORTTracker: coordination only; the math lives in ``kernels``.

This module holds construction, the public update calls and the one kernel call;
the settings (:mod:`~deepsort_edge.tracking.configuration`), the two halves of an
update (:mod:`~deepsort_edge.tracking.frame_path`) and the state seen from outside
(:mod:`~deepsort_edge.tracking.tracker_state`) are mixins in modules of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..kernels.aot import frame_kernel
from ..optional import import_supervision, is_detections
from .configuration import TrackerConfiguration, camera_estimator, scene_adapter
from .extractor import FeatureExtractor, load_extractor
from .frame_path import FramePath
from .frames import (
    FrameResult,
    PreparedFrame,
    check_timestamp,
    detached_result,
    detection_arguments,
)
from .score_calibration import ScoreCalibration
from .settings import TrackerSettings, preset_values
from .single_caller import SingleCaller, tracker_guard
from .tracker_state import TrackerState
from .tracks import CONFIRMED, TrackStore
from .validation import (
    MAX_COORDINATE,
    DetectionArrays,
    check_rows,
    frame_size,
)

__all__ = [
    "DeepSORTTracker", "FeatureExtractor", "FrameResult", "PreparedFrame", "detached_result", "detection_arguments",
    "SingleCaller", "load_extractor",
]

_NO_EMBEDDINGS = np.zeros((0, 1), dtype=np.float32)
_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# The frame kernel per gallery storage: compiled ahead of time when the wheel ships it
# (aot.py), else the JIT dispatcher (one for both). Module globals, so tools can wrap them.
track_frame = frame_kernel("float32")
track_frame_float16 = frame_kernel("float16")


class DeepSORTTracker(TrackerConfiguration, FramePath, TrackerState):
    """DeepSORT (Wojke et al., 2017) on Numba kernels, API-compatible with roboflow trackers 2.0.1.

    Each frame: Kalman predict for every track; a matching cascade over
    confirmed tracks (appearance cost, gated by the chi-square 0.95 quantile
    of the Mahalanobis distance, ``appearance_gate_scale`` times wider where
    appearance also gates the pair, and by ``appearance_threshold``); IoU
    matching for tentative tracks, tracks missed for one frame and those
    appearance rejected, missed for at most ``iou_recovery_frames``; with
    ``low_score_matching``, IoU matching of the remaining ones of these
    to the low-score detections; Kalman update of matched tracks; new
    tentative tracks from unmatched detections scoring at least
    ``track_activation_threshold + new_track_margin``. A tentative track is confirmed after
    ``minimum_consecutive_frames`` hits and deleted at its first miss; a
    confirmed track is deleted after ``max_age`` frames without a match
    (``int(frame_rate / 30 * lost_track_buffer)`` unless ``max_age`` is set).

    Call :meth:`update` once per frame, also when there are no detections.
    Every setting is described in :class:`~deepsort_edge.tracking.settings.TrackerSettings`
    (README has the table). The first arguments are roboflow's, in its order
    and meaning; left as None they take the preset's value, else the
    schema's default (chosen by measurement). ``preset="paper"`` takes
    nwojke/deep_sort's values and ``preset="roboflow-2.0.1"`` that release's
    (values, not outputs: README says what each sets); every argument you
    pass overrides the preset, whatever its value. Every setting is also an
    attribute; assigning one calls :meth:`configure` (checked, and in effect
    from the next update).

    :meth:`update` is :meth:`prepare` then :meth:`commit`; callers that embed
    crops themselves (many trackers in one batch) call the two halves.

    Args:
        feature_extractor: a ``DeepSORTFeatureExtractor``, a path to an ONNX
            model, a ``torch.nn.Module`` or ``.pt``/``.pth`` file (exported to
            ONNX once and cached, see ``DeepSORTFeatureExtractor``), or None (then give embeddings in
            ``detections.data["embeddings"]``, or track on motion alone).
        device: where a feature extractor given as a path runs (roboflow's
            argument: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default the
            best available). An extractor object keeps its own providers.
        lost_track_buffer: frames (at 30 fps) a lost track is kept.
        frame_rate: the video's frame rate; scales ``lost_track_buffer``.
            Pass the real one: at 7 fps the default 30 would keep lost tracks
            four times too long.
        track_activation_threshold: minimum score for a detection to take part
            in every matching stage; starting a track takes ``new_track_margin``
            (0.1) more. Compared with the score after ``score_calibration`` (both
            scaled down while the detector's median score is below ``typical_score``).
        minimum_consecutive_frames: hits before a track is confirmed and gets an id.
        minimum_iou_threshold: minimum IoU for a match by overlap (default:
            0.3 in frames with embeddings, 0.2 in frames without).
        appearance_threshold: maximum appearance distance for a match.
        appearance_weight: weight of appearance against motion (see
            ``motion_cost``) in the cascade cost, in [0, 1].
        distance_metric: ``"cosine"`` or ``"euclidean"`` (on unit embeddings).
        preset: ``"default"``, ``"paper"`` or ``"roboflow-2.0.1"``.
        **settings: the keyword-only settings of ``TrackerSettings``
            (``nn_budget``, ``appearance_mode``, ``low_score_matching``, ...).

    Example:
        >>> import numpy as np, supervision as sv
        >>> from deepsort_edge import DeepSORTTracker
        >>> tracker = DeepSORTTracker(minimum_consecutive_frames=1)
        >>> dets = sv.Detections(xyxy=np.array([[10., 20., 50., 120.]]), confidence=np.array([0.9]))
        >>> tracker.update(dets).tracker_id
        array([1])
    """

    def __init__(
        self,
        feature_extractor: FeatureExtractor | str | Path | None = None,
        device: str | None = None,
        lost_track_buffer: int | None = None,
        frame_rate: float | None = None,
        track_activation_threshold: float | None = None,
        minimum_consecutive_frames: int | None = None,
        minimum_iou_threshold: float | None = None,
        appearance_threshold: float | None = None,
        appearance_weight: float | None = None,
        distance_metric: str | None = None,
        *,
        preset: str | None = None,
        **settings: Any,
    ) -> None:
        # None (the signature's default) means "not given": the preset's value, else the schema's.
        given = {
            name: value
            for name, value in (
                ("lost_track_buffer", lost_track_buffer),
                ("frame_rate", frame_rate),
                ("track_activation_threshold", track_activation_threshold),
                ("minimum_consecutive_frames", minimum_consecutive_frames),
                ("minimum_iou_threshold", minimum_iou_threshold),
                ("appearance_threshold", appearance_threshold),
                ("appearance_weight", appearance_weight),
                ("distance_metric", distance_metric),
            )
            if value is not None
        }
        values = preset_values(preset)
        values.update(given)
        values.update(settings)  # every keyword given wins over the preset, whatever its value
        self.preset = preset
        self._epoch = 0  # bumped by every change of state: a PreparedFrame is good for one epoch
        self._apply_settings(TrackerSettings.from_dict(values))
        self.feature_extractor = load_extractor(feature_extractor, device)
        self._busy = tracker_guard(self)  # detects concurrent update calls
        self.reset()


    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._store = TrackStore(self._gallery_size, gallery_dtype=self.gallery_dtype)
        self._scores = ScoreCalibration()
        self._set_activation(self._settings.track_activation_threshold)
        self.frame_count = 0
        self._epoch += 1
        self._camera = camera_estimator(self.camera_motion)
        self._adapter = scene_adapter(self._settings)

    def warmup(self) -> DeepSORTTracker:
        """Compile (or load from cache) every kernel a frame can need, now rather than on the first frame.

        Covers the frame kernel (every stage, with and without embeddings,
        bad rows included), the row checks an extractor or camera motion
        needs before tracking, and OpenCV's import for camera motion. The
        feature extractor itself is not run. The tracker's state is not touched.
        """
        # Two hits to confirm: frame 2 runs the IoU stage, frames 3-4 the cascade
        # with and without embeddings (and a low-score detection), so every kernel compiles here.
        probe = DeepSORTTracker(
            **{**self.settings.to_dict(), "minimum_consecutive_frames": 2, "on_invalid": "raise",
               "use_appearance": None, "camera_motion": "none", "score_calibration": "rank"}
        )
        boxes = np.array([[10.0, 10.0, 50.0, 110.0], [200.0, 40.0, 240.0, 140.0]])
        embeddings = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
        high = max(self.track_activation_threshold + self.new_track_margin, 0.9)
        scores = np.array([high, high])
        for step in range(3):
            probe.update_arrays(boxes + 2.0 * step, scores, embeddings)
        # One detection just under the start threshold: the low-score stage runs too.
        low = self.track_activation_threshold - 1e-3
        if self.minimum_score is not None and low < self.minimum_score:
            low = high
        probe.update_arrays(boxes + 6.0, np.array([high, low]), None)
        probe.update_arrays(boxes + 8.0, scores, None)
        # With an extractor or camera motion the rows are checked before tracking, by the row
        # kernels called from Python: compiled here too (a clean probe: no warning).
        check_rows(DetectionArrays(boxes, scores, embeddings), frame_shape=(240, 320, 3), on_invalid="raise")
        if self.camera_motion == "affine":
            from .camera_motion import CameraMotionEstimator

            CameraMotionEstimator.warmup()
        return self

    # ------------------------------------------------------------------ update
    def update(self, detections: Any, frame: np.ndarray | None = None, timestamp: float | None = None) -> Any:
        """Track one frame of ``supervision.Detections``.

        Args:
            detections: this frame's detections. Appearance embeddings may be
                given as ``detections.data["embeddings"]`` ``(N, D)``;
                ``class_id`` is used when ``class_aware``.
            frame: the BGR image ``(H, W, 3)`` uint8; needed when the tracker
                has a feature extractor and no embeddings are given, and for
                ``camera_motion="affine"``.
            timestamp: the frame's time, accepted for roboflow trackers 2.6's
                ``update(detections, frame, timestamp)`` convention and
                checked to be a finite number (or None); it does not change
                tracking: frames are steps of ``1 / frame_rate``.

        Returns:
            A new ``sv.Detections`` with every input row, in input order, the
            detector's boxes (so masks, keypoints and ``data`` still match
            them) and ``tracker_id`` set (-1 where the row did not join a
            confirmed track). ``data["track_xyxy"]`` ``(N, 4)`` holds the
            filter's corrected box of each tracked row (the row's own box
            elsewhere). Every array and the ``data`` dict are copies: the
            input is neither modified nor shared.
        """
        sv = import_supervision("DeepSORTTracker.update")
        if not isinstance(detections, sv.Detections):
            raise TypeError(f"detections must be supervision.Detections, got {type(detections).__name__}")
        check_timestamp(timestamp)
        with self._busy:
            prepared = self._prepare(*detection_arguments(detections, frame), detections)
            tracked = self._commit(prepared, self._features(prepared))
        return detached_result(detections, tracked)

    def update_arrays(
        self,
        xyxy: np.ndarray,
        scores: np.ndarray | None = None,
        embeddings: np.ndarray | None = None,
        frame: np.ndarray | None = None,
        class_id: np.ndarray | None = None,
        *,
        return_boxes: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Track one frame given plain arrays; the path for edge callers.

        Args:
            xyxy: ``(N, 4)`` boxes (left, top, right, bottom) in pixels.
            scores: ``(N,)`` confidences on any scale (``score_calibration``
                ``"unit"``, the default, or ``"rank"``); in [0, 1] with ``"none"``
                while a confidence rule is on; None means all 1.
            embeddings: ``(N, D)`` appearance vectors (normalised here), or None.
            frame: BGR image for the feature extractor (if embeddings are
                None; it gets the ``(M, 4)`` boxes of the rows to embed) and
                for camera-motion compensation.
            class_id: ``(N,)`` integer classes, or None (all one class).
            return_boxes: also return the output boxes ``(N, 4)`` xyxy: the
                corrected box where a row joined a track and
                ``output_box="kalman"``, else the row's own box.

        Returns:
            ``(N,)`` int64 track ids, -1 where a row did not join a confirmed
            track (and the boxes, with ``return_boxes``).

        Raises:
            RuntimeError: Another thread is inside ``update`` of this tracker.

        Example:
            >>> tracker = DeepSORTTracker(minimum_consecutive_frames=1)
            >>> tracker.update_arrays(np.array([[0., 0., 10., 30.]]), np.array([0.8]))
            array([1])
        """
        with self._busy:
            prepared = self._prepare(xyxy, scores, embeddings, frame, class_id, None)
            tracked = self._commit(prepared, self._features(prepared))
        if not return_boxes:
            return tracked.ids
        if self.output_box == "kalman":
            return tracked.ids, tracked.track_xyxy
        return tracked.ids, np.array(prepared.xyxy, dtype=np.float64, copy=True)

    def prepare(self, detections: Any, frame: np.ndarray | None = None) -> PreparedFrame:
        """First half of an update: check the input and say which rows need features.

        For callers that embed the crops themselves, e.g. of many trackers in
        one batch (``MultiStreamTracker`` does): ``prepare`` -> embed
        ``prepared.embed_input`` -> :meth:`commit`. Nothing changes in the
        tracker until :meth:`commit`; a prepared frame not committed is simply
        dropped. ``update(d, f)`` runs ``p = prepare(d, f)``, ``commit(p,
        extract(p))`` and packages the result.

        Args:
            detections: ``sv.Detections`` as for :meth:`update`, or an ``(N, 4)``
                xyxy array (then use :meth:`prepare_arrays` for scores etc.).
            frame: as for :meth:`update`.

        Returns:
            A :class:`PreparedFrame`; ``embed_rows`` is empty when no features
            are needed (embeddings given, no extractor, or motion only).

        Raises:
            ValueError, TypeError: bad input (the tracker is unchanged).
            RuntimeError: Another thread is inside this tracker.

        Example:
            >>> import supervision as sv
            >>> tracker = DeepSORTTracker(minimum_consecutive_frames=1)
            >>> dets = sv.Detections(xyxy=np.array([[10., 20., 50., 120.]]), confidence=np.array([0.9]))
            >>> prepared = tracker.prepare(dets)
            >>> prepared.embed_rows.size, tracker.commit(prepared).ids
            (0, array([1]))
        """
        with self._busy:
            if is_detections(detections):
                return self._prepare(*detection_arguments(detections, frame), detections)
            return self._prepare(detections, None, None, frame, None, None)

    def prepare_arrays(
        self,
        xyxy: np.ndarray,
        scores: np.ndarray | None = None,
        embeddings: np.ndarray | None = None,
        frame: np.ndarray | None = None,
        class_id: np.ndarray | None = None,
    ) -> PreparedFrame:
        """:meth:`prepare` for plain arrays (the arguments of :meth:`update_arrays`)."""
        with self._busy:
            return self._prepare(xyxy, scores, embeddings, frame, class_id, None)

    def extract(self, prepared: PreparedFrame) -> np.ndarray | None:
        """This tracker's feature extractor on ``prepared.embed_input`` (None when no row needs features)."""
        with self._busy:
            return self._features(prepared)

    def commit(self, prepared: PreparedFrame, features: np.ndarray | None = None) -> FrameResult:
        """Second half of an update: track the prepared frame with the features of its rows.

        Args:
            prepared: from :meth:`prepare` / :meth:`prepare_arrays` of this
                tracker, since which the tracker has not changed.
            features: ``(M, D)`` raw features of ``prepared.embed_rows`` (in
                that order; normalised here), or None when no row needs them.

        Returns:
            A :class:`FrameResult` for every input row.

        Raises:
            ValueError: ``prepared`` is stale or from another tracker, the
                features do not fit, or (``on_invalid="raise"``) a row is
                invalid; the tracker is then unchanged.
            RuntimeError: Another thread is inside this tracker.
        """
        with self._busy:
            return self._commit(prepared, features)


    def _run_kernel(
        self,
        arrays: DetectionArrays,
        classes: np.ndarray,
        affine: np.ndarray | None,
        check: bool,
        frame_shape: tuple[int, ...] | None,
        given_scores: np.ndarray,
        as_given: bool,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
        """One call of the frame kernel; ids None when ``check`` found bad rows, or ``as_given`` scores
        outside [0, 1] (then nothing changed). The kernel keeps ``given_scores`` (the rows' scores as the
        detector gave them) in the score calibration's window."""
        store = self._store
        count = arrays.count
        embeddings = arrays.embeddings
        first_embeddings = embeddings is not None and count and not store.embedding_dim
        if embeddings is not None and count:
            store.set_embedding_dim(embeddings.shape[1])
        store.reserve(count)
        use_embeddings = embeddings is not None
        if not use_embeddings:
            embeddings = _NO_EMBEDDINGS
        problems = np.empty(count, dtype=np.uint8)
        unit = np.empty_like(embeddings) if check and use_embeddings else _NO_EMBEDDINGS
        ids = np.empty(count, dtype=np.int64)
        boxes = np.empty((count, 4))
        width, height = frame_size(frame_shape)
        kernel = track_frame if store.gallery_storage is np.float32 else track_frame_float16
        # Plain tuples in the orders of kernels.arguments' FrameInput, RowChecks and FrameOutput.
        detections = (arrays.xyxy, arrays.scores, embeddings, use_embeddings, np.ascontiguousarray(classes),
                      _IDENTITY if affine is None else np.ascontiguousarray(affine, dtype=np.float64),
                      affine is not None)
        settings = self._kernel_settings if use_embeddings else self._motion_kernel_settings
        if self._adapter is not None:
            settings = self._adapter.frame_settings(settings)
        window = self._scores
        done = kernel(store.arrays, detections, (check, width, height, MAX_COORDINATE, problems, unit),
                      (as_given, self._keeps_scores, given_scores, window.ring, window.state),
                      settings, (ids, boxes, True))
        if not done:
            if first_embeddings:
                store.clear_embedding_dim()  # a rejected call leaves the tracker as it was
            return None, boxes, problems, unit
        return ids, boxes, problems, unit


    def __repr__(self) -> str:
        confirmed = int((self._store.state[self._store.order] == CONFIRMED).sum())
        appearance = (
            f"gallery(nn_budget={self.nn_budget})" if self.appearance_mode == "gallery" else f"ema({self.ema_momentum})"
        )
        extractor = type(self.feature_extractor).__name__ if self.feature_extractor is not None else None
        return (
            f"DeepSORTTracker(tracks={len(self._store)}, confirmed={confirmed}, frame={self.frame_count}, "
            f"next_id={self._store.next_id}, appearance={appearance}, matching={self.matching!r}, "
            f"gating={self.gating!r}, max_age={self.maximum_frames_without_update}, preset={self.preset!r}, "
            f"feature_extractor={extractor})"
        )


