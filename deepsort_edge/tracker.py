"""DeepSORTTracker: coordination only; the math lives in ``kernels``."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .kernels.gallery import METRIC_COSINE, METRIC_EUCLIDEAN
from .aot import frame_kernel
from .kernels.frame import FrameSettings
from .kernels.gating import CHI2_095
from .kernels.half import check_float16
from .optional import import_supervision
from .settings import TrackerSettings, preset_values
from .state import (
    DEFAULT_MAX_BYTES,
    STATE_FORMAT,
    STATE_VERSION,
    check_state,
    read_state_file,
    write_state_file,
)
from .tracks import CONFIRMED, TrackStore, TrackView
from .validation import MAX_COORDINATE, DetectionArrays, check_frame, check_rows, detection_arrays, frame_size

_METRICS = {"cosine": METRIC_COSINE, "euclidean": METRIC_EUCLIDEAN}
_GATING_DOF = {"full": 4, "position": 2}
_DEFAULTS = TrackerSettings()
_NO_EMBEDDINGS = np.zeros((0, 1), dtype=np.float32)
_NO_BOXES = np.zeros((0, 4))
_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# The frame kernel per gallery storage: compiled ahead of time when the wheel ships it
# (aot.py), else the JIT dispatcher (one for both). Module globals, so tools can wrap them.
track_frame = frame_kernel("float32")
track_frame_float16 = frame_kernel("float16")


class FeatureExtractor(Protocol):
    """Anything with ``extract_features(frame, boxes_or_detections) -> (N, D)``."""

    def extract_features(self, frame: np.ndarray, detections: Any) -> np.ndarray: ...


class DeepSORTTracker:
    """DeepSORT (Wojke et al., 2017) on Numba kernels, API-compatible with roboflow trackers 2.0.1.

    Each frame: Kalman predict for every track; a matching cascade over
    confirmed tracks (appearance cost, gated by the chi-square 0.95 quantile
    of the Mahalanobis distance, ``appearance_gate_scale`` times wider where
    appearance also gates the pair, and by ``appearance_threshold``); IoU
    matching for tentative tracks and tracks missed for one frame; with
    ``low_score_matching``, IoU matching of the remaining just-seen tracks
    to the low-score detections; Kalman update of matched tracks; new
    tentative tracks from unmatched detections scoring at least
    ``track_activation_threshold``. A tentative track is confirmed after
    ``minimum_consecutive_frames`` hits and deleted at its first miss; a
    confirmed track is deleted after ``max_age`` frames without a match
    (``int(frame_rate / 30 * lost_track_buffer)`` unless ``max_age`` is set).

    Call :meth:`update` once per frame, also when there are no detections.
    Every setting is described in :class:`~deepsort_edge.settings.TrackerSettings`
    (README has the table). The first arguments are roboflow's, in its order
    and meaning; their defaults are chosen by measurement. ``preset="paper"``
    runs DeepSORT as nwojke/deep_sort does and ``preset="roboflow-2.0.1"``
    with that release's values; arguments you pass that differ from the
    defaults override the preset.

    Args:
        feature_extractor: a ``DeepSORTFeatureExtractor``, a path to an ONNX
            model, or None (then give embeddings in
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
        lost_track_buffer: int = _DEFAULTS.lost_track_buffer,
        frame_rate: float = _DEFAULTS.frame_rate,
        track_activation_threshold: float = _DEFAULTS.track_activation_threshold,
        minimum_consecutive_frames: int = _DEFAULTS.minimum_consecutive_frames,
        minimum_iou_threshold: float = _DEFAULTS.minimum_iou_threshold,
        appearance_threshold: float = _DEFAULTS.appearance_threshold,
        appearance_weight: float = _DEFAULTS.appearance_weight,
        distance_metric: str = _DEFAULTS.distance_metric,
        *,
        preset: str | None = None,
        **settings: Any,
    ) -> None:
        given = dict(
            lost_track_buffer=lost_track_buffer,
            frame_rate=frame_rate,
            track_activation_threshold=track_activation_threshold,
            minimum_consecutive_frames=minimum_consecutive_frames,
            minimum_iou_threshold=minimum_iou_threshold,
            appearance_threshold=appearance_threshold,
            appearance_weight=appearance_weight,
            distance_metric=distance_metric,
            **settings,
        )
        values = preset_values(preset)
        defaults = _DEFAULTS.to_dict()
        for name, value in given.items():
            if name not in values or name not in defaults or value != defaults[name]:
                values[name] = value
        self.preset = preset
        self._apply_settings(TrackerSettings.from_dict(values))
        self.feature_extractor = _load_extractor(feature_extractor, device)
        self._busy = threading.Lock()  # detects concurrent update calls (see update_arrays)
        self.reset()

    # ------------------------------------------------------------------ setup
    def _apply_settings(self, settings: TrackerSettings) -> None:
        self.settings = settings
        for name, value in settings.to_dict().items():
            setattr(self, name, value)
        self.maximum_frames_without_update = settings.max_age_frames
        self._gallery_size = self.nn_budget if self.appearance_mode == "gallery" else 1
        self._gate = CHI2_095[_GATING_DOF[self.gating]]
        if self.gallery_dtype == "float16":
            check_float16()
        self._metric = _METRICS[self.distance_metric]
        # Plain numbers of fixed types, so the frame kernel compiles once for every configuration.
        self._frame_settings = tuple(FrameSettings(
            gate=float(self._gate),
            appearance_gate=float(self._gate * self.appearance_gate_scale),
            position_only=self.gating == "position",
            metric=int(self._metric),
            appearance_threshold=float(self.appearance_threshold),
            appearance_weight=float(self.appearance_weight),
            motion_from_iou=self.motion_cost == "iou",
            minimum_iou=float(self.minimum_iou_threshold),
            lost_needs_overlap=self.lost_track_rule == "overlap",
            class_aware=bool(self.class_aware),
            cascade=self.matching == "cascade",
            max_age=int(self.maximum_frames_without_update),
            activation_threshold=float(self.track_activation_threshold),
            low_score_matching=bool(self.low_score_matching),
            minimum_score=-np.inf if self.minimum_score is None else float(self.minimum_score),
            confidence_noise=bool(self.confidence_noise),
            gallery_mode=self.appearance_mode == "gallery",
            ema_momentum=float(self.ema_momentum),
            confidence_embedding=bool(self.confidence_embedding),
            coast_damping=float(self.coast_damping),
            n_init=int(self.minimum_consecutive_frames),
        ))

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._store = TrackStore(self._gallery_size, gallery_dtype=self.gallery_dtype)
        self.frame_count = 0
        self._camera = None
        if self.camera_motion == "affine":
            from .camera_motion import CameraMotionEstimator

            self._camera = CameraMotionEstimator()

    def warmup(self) -> DeepSORTTracker:
        """Compile (or load from cache) every kernel now rather than on the first frame."""
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
        if self.camera_motion == "affine":
            from .camera_motion import CameraMotionEstimator

            CameraMotionEstimator.warmup()
        return self

    # ------------------------------------------------------------------ update
    def update(self, detections: Any, frame: np.ndarray | None = None) -> Any:
        """Track one frame of ``supervision.Detections``.

        Args:
            detections: this frame's detections. Appearance embeddings may be
                given as ``detections.data["embeddings"]`` ``(N, D)``;
                ``class_id`` is used when ``class_aware``.
            frame: the BGR image ``(H, W, 3)`` uint8; needed when the tracker
                has a feature extractor and no embeddings are given, and for
                ``camera_motion="affine"``.

        Returns:
            A new ``sv.Detections`` with every input row, in input order, and
            ``tracker_id`` set (-1 where the row did not join a confirmed
            track). With ``output_box="kalman"`` the boxes of tracked rows
            are the filter's corrected boxes. The input object is not modified.
        """
        sv = import_supervision("DeepSORTTracker.update")
        if not isinstance(detections, sv.Detections):
            raise TypeError(f"detections must be supervision.Detections, got {type(detections).__name__}")
        embeddings = detections.data.get("embeddings") if detections.data else None
        ids, boxes = self.update_arrays(
            detections.xyxy, detections.confidence, embeddings, frame, detections.class_id, return_boxes=True
        )
        result = copy.copy(detections)
        result.tracker_id = ids
        if self.output_box == "kalman" and len(ids):
            result.xyxy = boxes.astype(np.asarray(detections.xyxy).dtype, copy=False)
        return result

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
                None) and for camera-motion compensation.
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
        # Not a lock to wait on: two threads updating one tracker is a bug in the
        # caller (frames would interleave), so the second call fails at once.
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                f"DeepSORTTracker at {id(self):#x} is already being updated from another thread; "
                "a tracker holds one stream's state: use one tracker per thread (or a lock)"
            )
        try:
            return self._update_arrays(xyxy, scores, embeddings, frame, class_id, return_boxes)
        finally:
            self._busy.release()

    def _update_arrays(
        self,
        xyxy: np.ndarray,
        scores: np.ndarray | None,
        embeddings: np.ndarray | None,
        frame: np.ndarray | None,
        class_id: np.ndarray | None,
        return_boxes: bool,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        frame_shape = check_frame(frame).shape if frame is not None else None
        store = self._store
        arrays = detection_arrays(xyxy, scores, embeddings, embedding_dim=store.embedding_dim)
        classes = _classes(class_id, arrays.count)
        if self.use_appearance is False:
            arrays.embeddings = None
        extract = arrays.embeddings is None and self.feature_extractor is not None and self.use_appearance is not False
        if arrays.embeddings is None and not extract and self.use_appearance is True and arrays.count:
            raise ValueError(
                "use_appearance=True needs embeddings: pass detections.data['embeddings'] "
                "or give the tracker a feature_extractor and the frame"
            )
        # The kernel checks the rows itself and changes nothing when one is bad. Rows are
        # checked first instead when something must happen between the checks and tracking:
        # crops for the feature extractor, the camera-motion estimate.
        if not (extract or self._camera is not None):
            result = self._track(arrays, classes, None, True, frame_shape, return_boxes)
            if result is not None:
                return result
        # Checked here (again, after a bad row): warns about the bad rows or raises.
        kept, unit = check_rows(arrays, frame_shape=frame_shape, on_invalid=self.on_invalid)
        clean = DetectionArrays(arrays.xyxy[kept], arrays.scores[kept], unit)
        if self.minimum_score is not None and not (clean.scores >= self.minimum_score).all():
            usable = np.flatnonzero(clean.scores >= self.minimum_score)  # no crops for unused rows
            kept = kept[usable]
            clean = DetectionArrays(
                clean.xyxy[usable], clean.scores[usable],
                clean.embeddings[usable] if clean.embeddings is not None else None,
            )
        if extract:
            clean.embeddings = self._extract(clean.xyxy, frame)
        affine = self._camera.estimate(frame) if self._camera is not None and frame is not None else None
        # Everything above may raise; nothing below does, so a rejected call
        # leaves the tracker exactly as it was.
        result = self._track(clean, classes[kept], affine, False, None, return_boxes)
        all_ids = np.full(arrays.count, -1, dtype=np.int64)
        if not return_boxes:
            all_ids[kept] = result
            return all_ids
        all_ids[kept], boxes = result
        out = np.array(arrays.xyxy, copy=True)
        out[kept] = boxes
        return all_ids, out

    def _track(
        self,
        arrays: DetectionArrays,
        classes: np.ndarray,
        affine: np.ndarray | None,
        check_rows: bool,
        frame_shape: tuple[int, ...] | None,
        return_boxes: bool,
    ) -> tuple[np.ndarray, np.ndarray] | np.ndarray | None:
        """One call of the frame kernel; None when ``check_rows`` found bad rows (nothing changed)."""
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
        unit = np.empty_like(embeddings) if check_rows and use_embeddings else _NO_EMBEDDINGS
        ids = np.empty(count, dtype=np.int64)
        corrected = return_boxes and self.output_box == "kalman"
        boxes = np.empty((count, 4)) if corrected else _NO_BOXES
        width, height = frame_size(frame_shape)
        kernel = track_frame if store.gallery_storage is np.float32 else track_frame_float16
        done = kernel(
            store.mean, store.covariance, store.track_id, store.state, store.hits, store.age,
            store.time_since_update, store.gallery, store.gallery_count, store.gallery_head, store.class_id,
            store.order_buffer, store.free, store.counts,
            arrays.xyxy, arrays.scores, embeddings, use_embeddings, np.ascontiguousarray(classes),
            _IDENTITY if affine is None else np.ascontiguousarray(affine, dtype=np.float64), affine is not None,
            check_rows, width, height, MAX_COORDINATE, problems, unit,
            self._frame_settings, ids, boxes, corrected,
        )
        if not done:
            if first_embeddings:
                store.clear_embedding_dim()  # a rejected call leaves the tracker as it was
            return None
        self.frame_count += 1
        if not return_boxes:
            return ids
        return ids, (boxes if corrected else arrays.xyxy.copy())

    def _extract(self, boxes: np.ndarray, frame: np.ndarray | None) -> np.ndarray | None:
        """Unit embeddings of ``boxes`` from the feature extractor (None for no boxes)."""
        if not boxes.shape[0]:
            return None
        if frame is None:
            raise ValueError(
                "frame is required: the tracker has a feature_extractor and no embeddings "
                "were given (pass frame=..., or detections.data['embeddings'])"
            )
        raw = np.asarray(self.feature_extractor.extract_features(frame, boxes), dtype=np.float32)
        if raw.ndim != 2 or raw.shape[0] != boxes.shape[0]:
            raise ValueError(f"feature_extractor returned shape {raw.shape}, expected ({boxes.shape[0]}, D)")
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

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: settings, counters, tracks and galleries.

        The feature extractor is not included (pass it again when resuming).
        See :mod:`deepsort_edge.state` for the fields.
        """
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "settings": self.settings.to_dict(),
            "frame_count": self.frame_count,
            "next_id": self._store.next_id,
            "embedding_dim": self._store.embedding_dim,
            "tracks": self._store.to_arrays(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`, after checking every field of it.

        Settings go through the same checks as the constructor's (unknown
        names are an error, missing ones take their defaults); ids, counters,
        gallery indices, state codes, means, covariances and gallery rows are
        checked against the invariants the tracker keeps (see
        :func:`deepsort_edge.state.check_state`), so a state from an
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
        self._busy = threading.Lock()  # locks do not pickle: a fresh one
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


def _load_extractor(feature_extractor: object, device: str | None) -> FeatureExtractor | None:
    if device is not None and not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {type(device).__name__}")
    if feature_extractor is None:
        return None
    if isinstance(feature_extractor, (str, Path)):
        from .embedder import DeepSORTFeatureExtractor, providers_for_device

        return DeepSORTFeatureExtractor.from_onnx(feature_extractor, providers_for_device(device))
    if not callable(getattr(feature_extractor, "extract_features", None)):
        raise TypeError(
            "feature_extractor must be a DeepSORTFeatureExtractor, a path to an ONNX model, "
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
