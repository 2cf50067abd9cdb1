"""DeepSORTTracker: coordination only; the math lives in ``kernels``."""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..appearance.adaptation import SceneAdapter
from ..kernels.gallery import METRIC_COSINE, METRIC_EUCLIDEAN
from ..kernels.aot import frame_kernel
from ..kernels.frame import FrameSettings
from ..kernels.gating import CHI2_095
from ..kernels.half import check_float16
from ..optional import import_supervision, is_detections
from .settings import TrackerSettings, preset_values
from .settings import names as setting_names
from .state import (
    DEFAULT_MAX_BYTES,
    STATE_FORMAT,
    STATE_VERSION,
    check_state,
    read_state_file,
    write_state_file,
)
from .tracks import CONFIRMED, TrackStore, TrackView
from .validation import (
    MAX_COORDINATE,
    DetectionArrays,
    check_frame,
    check_rows,
    detection_arrays,
    frame_size,
    kept_rows,
)

__all__ = [
    "DeepSORTTracker", "FeatureExtractor", "FrameResult", "PreparedFrame", "detached_result", "detection_arguments",
    "SingleCaller",
]

_METRICS = {"cosine": METRIC_COSINE, "euclidean": METRIC_EUCLIDEAN}
_GATING_DOF = {"full": 4, "position": 2}
_NO_EMBEDDINGS = np.zeros((0, 1), dtype=np.float32)
_NO_BOXES = np.zeros((0, 4))
_NO_ROWS = np.zeros(0, dtype=np.intp)
_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# The frame kernel per gallery storage: compiled ahead of time when the wheel ships it
# (aot.py), else the JIT dispatcher (one for both). Module globals, so tools can wrap them.
track_frame = frame_kernel("float32")
track_frame_float16 = frame_kernel("float16")
# Settings that shape the track store: they change only while it holds no track.
_STORE_SHAPING = ("appearance_mode", "nn_budget", "gallery_dtype", "appearance_adaptation")
# warnings.warn's stacklevel from kept_rows in _commit to the caller of update/commit.
_USER_STACKLEVEL = 4


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

    @property
    def count(self) -> int:
        """Rows given (N)."""
        return int(self.xyxy.shape[0])


class FeatureExtractor(Protocol):
    """Anything with ``extract_features(frame, boxes_or_detections) -> (N, D)``."""

    def extract_features(self, frame: np.ndarray, detections: Any) -> np.ndarray: ...


class DeepSORTTracker:
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
    ``track_activation_threshold``. A tentative track is confirmed after
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
        track_activation_threshold: minimum score for a detection to start a
            track, compared with the score as given (any finite scale).
        minimum_consecutive_frames: hits before a track is confirmed and gets an id.
        minimum_iou_threshold: minimum IoU for a match by overlap.
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
        self.feature_extractor = _load_extractor(feature_extractor, device)
        self._busy = _update_guard(self)  # detects concurrent update calls
        self.reset()

    # ------------------------------------------------------------------ setup
    def _apply_settings(self, settings: TrackerSettings) -> None:
        self._settings = settings
        self._gallery_size = settings.nn_budget if settings.appearance_mode == "gallery" else 1
        gate = CHI2_095[_GATING_DOF[settings.gating]]
        if settings.gallery_dtype == "float16":
            check_float16()
        # Plain numbers of fixed types, so the frame kernel compiles once for every configuration.
        self._frame_settings = tuple(FrameSettings(
            gate=float(gate),
            appearance_gate=float(gate * settings.appearance_gate_scale),
            position_only=settings.gating == "position",
            metric=int(_METRICS[settings.distance_metric]),
            appearance_threshold=float(settings.appearance_threshold),
            appearance_weight=float(settings.appearance_weight),
            motion_from_iou=settings.motion_cost == "iou",
            minimum_iou=float(settings.minimum_iou_threshold),
            lost_needs_overlap=settings.lost_track_rule == "overlap",
            class_aware=bool(settings.class_aware),
            cascade=settings.matching == "cascade",
            max_age=int(settings.max_age_frames),
            activation_threshold=float(settings.track_activation_threshold),
            low_score_matching=bool(settings.low_score_matching),
            minimum_score=-np.inf if settings.minimum_score is None else float(settings.minimum_score),
            confidence_noise=bool(settings.confidence_noise),
            gallery_mode=settings.appearance_mode == "gallery",
            ema_momentum=float(settings.ema_momentum),
            confidence_embedding=bool(settings.confidence_embedding),
            coast_damping=float(settings.coast_damping),
            n_init=int(settings.minimum_consecutive_frames),
            iou_recovery_frames=int(settings.iou_recovery_frames),
            occluded_fraction=float(settings.occluded_fraction),
        ))

    @property
    def settings(self) -> TrackerSettings:
        """The settings in force (what the next update runs with)."""
        return self._settings

    @property
    def maximum_frames_without_update(self) -> int:
        """Frames a lost track is kept (roboflow's name; see ``TrackerSettings.max_age_frames``).

        Assigning it sets ``max_age``.
        """
        return self._settings.max_age_frames

    @maximum_frames_without_update.setter
    def maximum_frames_without_update(self, value: int) -> None:
        self.configure(max_age=value)

    def configure(self, **changes: Any) -> DeepSORTTracker:
        """Change settings from the next update on; tracks and ids are kept.

        Every setting is also an attribute, and assigning it calls this:
        ``tracker.track_activation_threshold = 0.95`` is
        ``tracker.configure(track_activation_threshold=0.95)``. The new values
        are checked by the schema first, so a bad value raises and changes
        nothing; ``settings``, ``state_dict()``, ``save()`` and ``repr``
        report them at once. ``appearance_mode``, ``nn_budget`` and
        ``gallery_dtype`` shape the track store, so they change only while
        it holds no track (before the first update or after :meth:`reset`).

        Raises:
            ValueError, TypeError: an unknown name or a bad value (nothing changed).
            RuntimeError: Another thread is inside this tracker.

        Example:
            >>> tracker = DeepSORTTracker()
            >>> tracker.track_activation_threshold = 0.95
            >>> tracker.settings.track_activation_threshold
            0.95
        """
        new = TrackerSettings.from_dict({**self._settings.to_dict(), **changes})
        old = self._settings
        reshaped = any(getattr(new, name) != getattr(old, name) for name in _STORE_SHAPING)
        with self._busy:
            if reshaped and len(self._store):
                raise ValueError(
                    f"{', '.join(_STORE_SHAPING)} shape the track store and change only while it holds no "
                    "track: call reset() first"
                )
            self._apply_settings(new)
            self._epoch += 1
            if reshaped:
                next_id = self._store.next_id
                self._store = TrackStore(self._gallery_size, gallery_dtype=new.gallery_dtype)
                self._store.next_id = next_id
            if new.camera_motion != old.camera_motion:
                self._camera = _camera_estimator(new.camera_motion)
            if reshaped:
                self._adapter = _scene_adapter(new)
            elif self._adapter is not None:  # evidence and the space in use are kept
                self._adapter.interval, self._adapter.momentum = new.adaptation_interval, new.ema_momentum
        return self

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._store = TrackStore(self._gallery_size, gallery_dtype=self.gallery_dtype)
        self.frame_count = 0
        self._epoch += 1
        self._camera = _camera_estimator(self.camera_motion)
        self._adapter = _scene_adapter(self._settings)

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
               "use_appearance": None, "camera_motion": "none"}
        )
        boxes = np.array([[10.0, 10.0, 50.0, 110.0], [200.0, 40.0, 240.0, 140.0]])
        embeddings = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
        high = max(self.track_activation_threshold, 0.9)
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
        _check_timestamp(timestamp)
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
            scores: ``(N,)`` confidences, any finite value (compared as given
                with ``track_activation_threshold``); None means all 1.
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
        frame_shape = check_frame(frame).shape if frame is not None else None
        arrays = detection_arrays(xyxy, scores, embeddings, embedding_dim=self._store.embedding_dim)
        classes = _classes(class_id, arrays.count)
        if settings.use_appearance is False:
            arrays.embeddings = None
        extract = arrays.embeddings is None and self.feature_extractor is not None and settings.use_appearance is not False
        if arrays.embeddings is None and not extract and settings.use_appearance is True and arrays.count:
            raise ValueError(
                "use_appearance=True needs embeddings: pass detections.data['embeddings'] "
                "or give the tracker a feature_extractor and the frame"
            )
        token = (self, self._epoch)
        if not (extract or self._camera is not None):
            # The frame kernel checks the rows itself (one pass) and changes nothing when one is bad.
            return PreparedFrame(arrays.xyxy, _NO_ROWS, _NO_BOXES, _NO_BOXES, frame, arrays, classes, None,
                                 frame_shape, token)
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
                             frame_shape, token)

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
        ids, boxes, problems, unit = self._run_kernel(arrays, classes, affine, kept is None, prepared._frame_shape)
        tracked = arrays
        if ids is None:
            # The kernel found bad rows and changed nothing: drop them (or raise) and track the rest.
            kept = kept_rows(problems, self.on_invalid, stacklevel=_USER_STACKLEVEL)
            clean = DetectionArrays(
                arrays.xyxy[kept], arrays.scores[kept], unit[kept] if arrays.embeddings is not None else None
            )
            classes = classes[kept]
            ids, boxes, _, _ = self._run_kernel(clean, classes, affine, False, None)
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

    def _run_kernel(
        self,
        arrays: DetectionArrays,
        classes: np.ndarray,
        affine: np.ndarray | None,
        check: bool,
        frame_shape: tuple[int, ...] | None,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
        """One call of the frame kernel; ids None when ``check`` found bad rows (then nothing changed)."""
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
        done = kernel(
            store.mean, store.covariance, store.track_id, store.state, store.hits, store.age,
            store.time_since_update, store.gallery, store.gallery_count, store.gallery_head, store.class_id,
            store.order_buffer, store.free, store.counts,
            arrays.xyxy, arrays.scores, embeddings, use_embeddings, np.ascontiguousarray(classes),
            _IDENTITY if affine is None else np.ascontiguousarray(affine, dtype=np.float64), affine is not None,
            check, width, height, MAX_COORDINATE, problems, unit,
            self._frame_settings if self._adapter is None else self._adapter.frame_settings(self._frame_settings),
            ids, boxes, True,
        )
        if not done:
            if first_embeddings:
                store.clear_embedding_dim()  # a rejected call leaves the tracker as it was
            return None, boxes, problems, unit
        return ids, boxes, problems, unit

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

    # ------------------------------------------------------------------ state
    @property
    def tracks(self) -> list[TrackView]:
        """Snapshots of the live tracks (tentative and confirmed), in birth order."""
        return self._store.views()

    def track_embeddings(self, track_ids: Any) -> np.ndarray | None:
        """``(N, D)`` float32 unit appearance embeddings of live confirmed tracks, by id; None when
        the tracker holds no embeddings (motion only). What global ids are matched on
        (:meth:`deepsort_edge.streams.identities.IdentityRegistry.update`).

        Raises:
            KeyError: An id is not a live confirmed track.
        """
        if not self._store.embedding_dim:
            return None
        return self._store.latest_embeddings(np.asarray(track_ids, dtype=np.int64).reshape(-1))

    @property
    def trackers(self) -> list[TrackView]:
        """roboflow trackers 2.0.1's name for :attr:`tracks`.

        Each item has ``tracker_id`` (-1 while tentative),
        ``number_of_successful_updates`` and ``get_state_bbox()``.
        """
        return self._store.views()

    @property
    def tracked_objects(self) -> list[TrackView]:
        """The confirmed live tracks (those that give ids), in birth order (roboflow trackers 2.6's name)."""
        return [track for track in self._store.views() if track.confirmed]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: settings, counters, tracks and galleries.

        The feature extractor is not included (pass it again when resuming).
        See :mod:`deepsort_edge.tracking.state` for the fields.
        """
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "settings": self.settings.to_dict(),
            "frame_count": self.frame_count,
            "next_id": self._store.next_id,
            "embedding_dim": self._store.embedding_dim,
            "tracks": self._store.to_arrays(),
            **({} if self._adapter is None else {"adaptation": self._adapter.state_dict()}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`, after checking every field of it.

        Settings go through the same checks as the constructor's (unknown
        names are an error, missing ones take their defaults); ids, counters,
        gallery indices, state codes, means, covariances and gallery rows are
        checked against the invariants the tracker keeps (see
        :func:`deepsort_edge.tracking.state.check_state`), so a state from an
        untrusted source cannot make the kernels read or write out of bounds.

        Raises:
            ValueError: Naming the first bad field; the tracker is unchanged.
        """
        checked = check_state(state)
        store = TrackStore.from_arrays(
            checked.tracks, checked.tracks["gallery"].shape[1], checked.embedding_dim,
            checked.settings.gallery_dtype,
        )
        self._apply_settings(checked.settings)
        self.reset()
        self._store = store
        store.next_id = checked.next_id
        self.frame_count = checked.frame_count
        if checked.adaptation is not None:
            self._adapter.load_state_dict(checked.adaptation)  # type: ignore[union-attr]

    def save(self, path: str | Path) -> Path:
        """Write the tracker's state to a file (pickle-free ``.npz``, versioned).

        Safe to share: :meth:`load` reads it without unpickling and checks
        every field. The feature extractor is not saved. The file is written
        under a temporary name and then renamed, so it is never half-written.

        Example:
            >>> import tempfile
            >>> tracker = DeepSORTTracker(minimum_consecutive_frames=1)
            >>> _ = tracker.update_arrays(np.array([[0., 0., 10., 30.]]))
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     path = tracker.save(Path(folder) / "tracker.npz")
            ...     DeepSORTTracker.load(path).tracks[0].track_id
            1
        """
        return write_state_file(self.state_dict(), path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        feature_extractor: FeatureExtractor | str | Path | None = None,
        device: str | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> DeepSORTTracker:
        """A tracker resumed from a :meth:`save` file (settings come from the file).

        Args:
            path: The state file.
            feature_extractor: As in the constructor (the file holds none).
            device: As in the constructor.
            max_bytes: Refuse files whose arrays are larger than this.

        Raises:
            FileNotFoundError: No such file.
            ValueError: Not a state file, or a field fails its checks.
        """
        tracker = cls(feature_extractor=feature_extractor, device=device)
        tracker.load_state_dict(read_state_file(path, max_bytes=max_bytes))
        return tracker

    # Pickle is for trusted use only (unpickling runs code); share save() files instead.
    def __getstate__(self) -> dict[str, Any]:
        return {"state": self.state_dict(), "feature_extractor": self.feature_extractor}

    def __setstate__(self, pickled: dict[str, Any]) -> None:
        self.feature_extractor = pickled["feature_extractor"]
        self.preset = None
        self._epoch = 0
        self._busy = _update_guard(self)  # locks do not pickle: a fresh one
        self.load_state_dict(pickled["state"])

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


class SingleCaller:
    """``with guard:`` holds the guard's lock, or raises ``RuntimeError`` at once if another thread holds it.

    Not a lock to wait on: two threads updating one tracker is a bug in the
    caller (frames would interleave), so the second call fails loudly. A
    class rather than a generator context manager: it runs every frame.

    Args:
        owner: names the guarded object in the error.
        advice: what to do instead, appended to the error.
    """

    __slots__ = ("_lock", "_message")

    def __init__(self, owner: str, advice: str) -> None:
        self._lock = threading.Lock()
        self._message = f"{owner} is already being updated from another thread; {advice}"

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(self._message)

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _update_guard(tracker: DeepSORTTracker) -> SingleCaller:
    return SingleCaller(
        f"DeepSORTTracker at {id(tracker):#x}", "a tracker holds one stream's state: use one tracker per thread (or a lock)"
    )


def _setting_property(name: str) -> property:
    def get(self: DeepSORTTracker) -> Any:
        return getattr(self._settings, name)

    def set(self: DeepSORTTracker, value: Any) -> None:
        self.configure(**{name: value})

    return property(get, set, doc=f"The ``{name}`` setting; assigning it calls :meth:`DeepSORTTracker.configure`.")


for _name in setting_names():
    setattr(DeepSORTTracker, _name, _setting_property(_name))
del _name


def _scene_adapter(settings: TrackerSettings) -> SceneAdapter | None:
    if settings.appearance_adaptation == "none":
        return None
    return SceneAdapter(settings.appearance_adaptation, settings.adaptation_interval, settings.ema_momentum)


def _camera_estimator(camera_motion: str) -> Any:
    if camera_motion != "affine":
        return None
    from .camera_motion import CameraMotionEstimator

    return CameraMotionEstimator()


def _check_timestamp(timestamp: object) -> None:
    if timestamp is None:
        return
    if isinstance(timestamp, (bool, np.bool_)) or not isinstance(timestamp, (int, float, np.integer, np.floating)):
        raise TypeError(f"timestamp must be a number or None, got {type(timestamp).__name__}")
    if not math.isfinite(timestamp):
        raise ValueError(f"timestamp must be finite, got {timestamp!r}")


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


def _load_extractor(feature_extractor: object, device: str | None) -> FeatureExtractor | None:
    if device is not None and not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {type(device).__name__}")
    if feature_extractor is None:
        return None
    from ..appearance.export.torch_module import is_torch_module  # imports no torch

    if isinstance(feature_extractor, (str, Path)) or is_torch_module(feature_extractor):
        from ..appearance.embedder import DeepSORTFeatureExtractor

        # An ONNX file, or a torch module / .pt / .pth file exported to ONNX once (cached).
        return DeepSORTFeatureExtractor(feature_extractor, device)
    if not callable(getattr(feature_extractor, "extract_features", None)):
        raise TypeError(
            "feature_extractor must be a DeepSORTFeatureExtractor, a path to an ONNX or torch model, "
            "a torch.nn.Module, "
            f"or have an extract_features(frame, detections) method; got {type(feature_extractor).__name__}"
        )
    return feature_extractor  # type: ignore[return-value]


def _classes(class_id: object, count: int) -> np.ndarray:
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
