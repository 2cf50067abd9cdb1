"""DeepSORTTracker: coordination only; the math lives in ``kernels``."""

from __future__ import annotations

import copy
import math
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import association
from .boxes import xyxy_to_xyah
from .kernels.distance import METRIC_COSINE, METRIC_EUCLIDEAN, gallery_append, gallery_ema
from .kernels.gating import CHI2_095
from .kernels.kalman import kalman_initiate, kalman_predict, kalman_update
from .state import (
    DEFAULT_MAX_BYTES,
    STATE_FORMAT,
    STATE_VERSION,
    check_state,
    read_state_file,
    write_state_file,
)
from .tracks import CONFIRMED, TENTATIVE, TrackStore, TrackView
from .validation import ON_INVALID_CHOICES, check_frame, validate_detections

_METRICS = {"cosine": METRIC_COSINE, "euclidean": METRIC_EUCLIDEAN}
_GATING_DOF = {"full": 4, "position": 2}


class FeatureExtractor(Protocol):
    """Anything with ``extract_features(frame, boxes_or_detections) -> (N, D)``."""

    def extract_features(self, frame: np.ndarray, detections: Any) -> np.ndarray: ...


class DeepSORTTracker:
    """DeepSORT (Wojke et al., 2017) on Numba kernels, API-compatible with roboflow trackers 2.0.1.

    Each frame: Kalman predict for every track; a matching cascade over
    confirmed tracks (appearance cost, gated by the chi-square 0.95 quantile
    of the Mahalanobis distance and by ``appearance_threshold``); IoU
    matching for tentative tracks and tracks missed for one frame; Kalman
    update of matched tracks; new tentative tracks from unmatched detections
    scoring at least ``track_activation_threshold``. A tentative track is
    confirmed after ``minimum_consecutive_frames`` hits and deleted at its
    first miss; a confirmed track is deleted after
    ``int(frame_rate / 30 * lost_track_buffer)`` frames without a match.

    Call :meth:`update` once per frame, also when there are no detections.

    Args:
        feature_extractor: a ``DeepSORTFeatureExtractor``, a path to an ONNX
            model, or None (then give embeddings in
            ``detections.data["embeddings"]``, or track on motion alone).
        device: where a feature extractor given as a path runs (roboflow's
            argument: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default the
            best available). An extractor object keeps its own providers.
        lost_track_buffer: frames (at 30 fps) a lost track is kept.
        frame_rate: the video's frame rate; scales ``lost_track_buffer``.
        track_activation_threshold: minimum score for a detection to start a track.
        minimum_consecutive_frames: hits before a track is confirmed and gets an id.
        minimum_iou_threshold: minimum IoU for a match in the IoU stage.
        appearance_threshold: maximum appearance distance for a cascade match.
        appearance_weight: weight of appearance against motion (see
            ``motion_cost``) in the cascade cost, in [0, 1].
        distance_metric: ``"cosine"`` or ``"euclidean"`` (on unit embeddings).
        nn_budget: embeddings kept per track in ``"gallery"`` mode (ring buffer).
        appearance_mode: ``"gallery"`` (nearest of the last ``nn_budget``
            embeddings, as in the paper) or ``"ema"`` (one exponentially
            smoothed embedding per track; faster).
        ema_momentum: weight of the old embedding in ``"ema"`` mode.
        gating: ``"full"`` (4 dof, 9.4877) or ``"position"`` (2 dof, 5.9915).
        matching: ``"cascade"`` (the paper) or ``"global"`` (one assignment
            over all confirmed tracks).
        motion_cost: the cascade's motion term: ``"iou"`` (``1 - IoU`` of
            the predicted box, roboflow's meaning of ``appearance_weight``;
            without appearance a match also needs ``minimum_iou_threshold``)
            or ``"mahalanobis"`` (squared distance over the gate, the
            paper's d1). Either way every match lies inside the chi-square gate.
        use_appearance: None (use embeddings whenever a frame has them),
            True (require them) or False (motion only).
        on_invalid: what to do with detections holding invalid values (NaN,
            inverted boxes, coordinates beyond ``MAX_COORDINATE``, non-finite
            scores, ...): ``"drop"`` them with a warning (their id is -1) or ``"raise"``.

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
        lost_track_buffer: int = 30,
        frame_rate: float = 30.0,
        track_activation_threshold: float = 0.25,
        minimum_consecutive_frames: int = 3,
        minimum_iou_threshold: float = 0.3,
        appearance_threshold: float = 0.7,
        appearance_weight: float = 0.5,
        distance_metric: str = "cosine",
        *,
        nn_budget: int = 100,
        appearance_mode: str = "gallery",
        ema_momentum: float = 0.9,
        gating: str = "full",
        matching: str = "cascade",
        motion_cost: str = "iou",
        use_appearance: bool | None = None,
        on_invalid: str = "drop",
    ) -> None:
        settings = dict(
            lost_track_buffer=lost_track_buffer,
            frame_rate=frame_rate,
            track_activation_threshold=track_activation_threshold,
            minimum_consecutive_frames=minimum_consecutive_frames,
            minimum_iou_threshold=minimum_iou_threshold,
            appearance_threshold=appearance_threshold,
            appearance_weight=appearance_weight,
            distance_metric=distance_metric,
            nn_budget=nn_budget,
            appearance_mode=appearance_mode,
            ema_momentum=ema_momentum,
            gating=gating,
            matching=matching,
            motion_cost=motion_cost,
            use_appearance=use_appearance,
            on_invalid=on_invalid,
        )
        self._apply_settings(_check_settings(settings))
        self.feature_extractor = _load_extractor(feature_extractor, device)
        self._busy = threading.Lock()  # detects concurrent update calls (see update_arrays)
        self.reset()

    # ------------------------------------------------------------------ setup
    def _apply_settings(self, settings: dict[str, Any]) -> None:
        self._settings = settings
        for name, value in settings.items():
            setattr(self, name, value)
        self.maximum_frames_without_update = int(self.frame_rate / 30.0 * self.lost_track_buffer)
        self._gallery_size = self.nn_budget if self.appearance_mode == "gallery" else 1
        self._gate = CHI2_095[_GATING_DOF[self.gating]]
        self._metric = _METRICS[self.distance_metric]

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._store = TrackStore(self._gallery_size)
        self._next_id = 1
        self.frame_count = 0

    def warmup(self) -> DeepSORTTracker:
        """Compile (or load from cache) every kernel now rather than on the first frame."""
        # Two hits to confirm: frame 2 runs the IoU stage, frames 3-4 the cascade
        # with and without embeddings, so every kernel compiles here.
        probe = DeepSORTTracker(
            **{**self._settings, "minimum_consecutive_frames": 2, "on_invalid": "raise", "use_appearance": None}
        )
        boxes = np.array([[10.0, 10.0, 50.0, 110.0], [200.0, 40.0, 240.0, 140.0]])
        embeddings = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
        for step in range(3):
            probe.update_arrays(boxes + 2.0 * step, np.array([0.9, 0.8]), embeddings)
        probe.update_arrays(boxes + 6.0, np.array([0.9, 0.8]), None)
        return self

    # ------------------------------------------------------------------ update
    def update(self, detections: Any, frame: np.ndarray | None = None) -> Any:
        """Track one frame of ``supervision.Detections``.

        Args:
            detections: this frame's detections. Appearance embeddings may be
                given as ``detections.data["embeddings"]`` ``(N, D)``.
            frame: the BGR image ``(H, W, 3)`` uint8; needed when the tracker
                has a feature extractor and no embeddings are given.

        Returns:
            A new ``sv.Detections`` with every input row, in input order, and
            ``tracker_id`` set (-1 where the row did not join a confirmed
            track). The input object is not modified.
        """
        import supervision as sv

        if not isinstance(detections, sv.Detections):
            raise TypeError(f"detections must be supervision.Detections, got {type(detections).__name__}")
        embeddings = detections.data.get("embeddings") if detections.data else None
        ids = self.update_arrays(detections.xyxy, detections.confidence, embeddings, frame)
        result = copy.copy(detections)
        result.tracker_id = ids
        return result

    def update_arrays(
        self,
        xyxy: np.ndarray,
        scores: np.ndarray | None = None,
        embeddings: np.ndarray | None = None,
        frame: np.ndarray | None = None,
    ) -> np.ndarray:
        """Track one frame given plain arrays; the path for edge callers.

        Args:
            xyxy: ``(N, 4)`` boxes (left, top, right, bottom) in pixels.
            scores: ``(N,)`` confidences, any finite value (compared as given
                with ``track_activation_threshold``); None means all 1.
            embeddings: ``(N, D)`` appearance vectors (normalised here), or None.
            frame: BGR image for the feature extractor, if embeddings are None.

        Returns:
            ``(N,)`` int64 track ids, -1 where a row did not join a confirmed track.

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
            return self._update_arrays(xyxy, scores, embeddings, frame)
        finally:
            self._busy.release()

    def _update_arrays(
        self,
        xyxy: np.ndarray,
        scores: np.ndarray | None,
        embeddings: np.ndarray | None,
        frame: np.ndarray | None,
    ) -> np.ndarray:
        frame_shape = check_frame(frame).shape if frame is not None else None
        clean = validate_detections(
            xyxy,
            scores,
            embeddings,
            frame_shape=frame_shape,
            embedding_dim=self._store.embedding_dim,
            on_invalid=self.on_invalid,
        )
        features = self._appearance(clean.xyxy, clean.embeddings, frame)
        # Everything above may raise; nothing below does, so a rejected call
        # leaves the tracker exactly as it was.
        ids = np.full(clean.num_input, -1, dtype=np.int64)
        ids[clean.kept] = self._step(clean.xyxy, clean.scores, features)
        return ids

    def _appearance(
        self, boxes: np.ndarray, embeddings: np.ndarray | None, frame: np.ndarray | None
    ) -> np.ndarray | None:
        """This frame's unit embeddings, or None when tracking on motion alone."""
        if self.use_appearance is False:
            return None
        if embeddings is None and self.feature_extractor is not None and boxes.shape[0]:
            if frame is None:
                raise ValueError(
                    "frame is required: the tracker has a feature_extractor and no embeddings "
                    "were given (pass frame=..., or detections.data['embeddings'])"
                )
            raw = np.asarray(self.feature_extractor.extract_features(frame, boxes), dtype=np.float32)
            if raw.ndim != 2 or raw.shape[0] != boxes.shape[0]:
                raise ValueError(
                    f"feature_extractor returned shape {raw.shape}, expected ({boxes.shape[0]}, D)"
                )
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            if not np.isfinite(raw).all() or (norms == 0).any():
                raise ValueError("feature_extractor returned non-finite or all-zero embeddings")
            if self._store.embedding_dim and raw.shape[1] != self._store.embedding_dim:
                raise ValueError(
                    f"feature_extractor returned {raw.shape[1]}-d embeddings, this tracker holds "
                    f"{self._store.embedding_dim}-d ones; call reset() to change models"
                )
            embeddings = np.ascontiguousarray(raw / norms)
        if embeddings is None and self.use_appearance is True and boxes.shape[0]:
            raise ValueError(
                "use_appearance=True needs embeddings: pass detections.data['embeddings'] "
                "or give the tracker a feature_extractor and the frame"
            )
        return embeddings

    def _step(self, xyxy: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None) -> np.ndarray:
        """Advance every track one frame and associate; returns ids per detection."""
        store = self._store
        if embeddings is not None and embeddings.shape[0]:
            store.set_embedding_dim(embeddings.shape[1])
        self.frame_count += 1
        order = store.order
        kalman_predict(store.mean, store.covariance, order)
        store.age[order] += 1
        store.time_since_update[order] += 1

        measurements = xyxy_to_xyah(xyxy)
        det_to_slot = self._associate(order, measurements, xyxy, embeddings)

        matched = np.flatnonzero(det_to_slot >= 0)
        slots = det_to_slot[matched]
        kalman_update(store.mean, store.covariance, slots, measurements[matched])
        store.hits[slots] += 1
        store.time_since_update[slots] = 0
        if embeddings is not None:
            self._remember(slots, embeddings[matched])
        self._confirm(slots)
        self._drop_missed(order, slots)
        self._start_tracks(det_to_slot, measurements, scores, embeddings)

        ids = np.full(xyxy.shape[0], -1, dtype=np.int64)
        has_track = det_to_slot >= 0
        slot_of = det_to_slot[has_track]
        confirmed = store.state[slot_of] == CONFIRMED
        ids[np.flatnonzero(has_track)[confirmed]] = store.track_id[slot_of[confirmed]]
        return ids

    def _associate(
        self, order: np.ndarray, measurements: np.ndarray, xyxy: np.ndarray, embeddings: np.ndarray | None
    ) -> np.ndarray:
        """Run both stages; returns the track slot joined by each detection (-1: none)."""
        store = self._store
        n_dets = measurements.shape[0]
        det_to_slot = np.full(n_dets, -1, dtype=np.intp)
        if n_dets == 0 or order.size == 0:
            return det_to_slot
        is_confirmed = store.state[order] == CONFIRMED
        confirmed = order[is_confirmed]
        unconfirmed = order[~is_confirmed]

        leftover = confirmed
        if confirmed.size:
            cost = association.appearance_motion_cost(
                store,
                confirmed,
                measurements,
                xyxy,
                embeddings,
                gate=self._gate,
                position_only=self.gating == "position",
                metric=self._metric,
                appearance_threshold=self.appearance_threshold,
                appearance_weight=self.appearance_weight,
                motion_from_iou=self.motion_cost == "iou",
                minimum_iou=self.minimum_iou_threshold,
            )
            row_to_col = association.cascade_match(
                cost,
                store.time_since_update[confirmed],
                self.maximum_frames_without_update,
                cascade=self.matching == "cascade",
            )
            hit = row_to_col >= 0
            det_to_slot[row_to_col[hit]] = confirmed[hit]
            leftover = confirmed[~hit]

        # Stage 2: IoU for tentative tracks and tracks lost only this frame.
        recent = leftover[store.time_since_update[leftover] == 1]
        candidates = np.concatenate([unconfirmed, recent])
        free = np.flatnonzero(det_to_slot < 0)
        if candidates.size and free.size:
            row_to_col = association.iou_match(store, candidates, xyxy[free], self.minimum_iou_threshold)
            hit = row_to_col >= 0
            det_to_slot[free[row_to_col[hit]]] = candidates[hit]
        return det_to_slot

    def _remember(self, slots: np.ndarray, embeddings: np.ndarray) -> None:
        store = self._store
        if self.appearance_mode == "gallery":
            gallery_append(store.gallery, store.gallery_count, store.gallery_head, slots, embeddings)
        else:
            gallery_ema(store.gallery, store.gallery_count, slots, embeddings, self.ema_momentum)

    def _confirm(self, slots: np.ndarray) -> None:
        """Confirm tentative tracks with enough hits; ids follow birth order."""
        store = self._store
        ready = slots[(store.state[slots] == TENTATIVE) & (store.hits[slots] >= self.minimum_consecutive_frames)]
        if ready.size == 0:
            return
        ready = store.order[store.mask(ready)[store.order]]
        store.state[ready] = CONFIRMED
        store.track_id[ready] = np.arange(self._next_id, self._next_id + ready.size)
        self._next_id += int(ready.size)

    def _drop_missed(self, order: np.ndarray, matched_slots: np.ndarray) -> None:
        store = self._store
        missed = order[~store.mask(matched_slots)[order]]
        gone = missed[
            (store.state[missed] == TENTATIVE)
            | (store.time_since_update[missed] > self.maximum_frames_without_update)
        ]
        store.release(gone)

    def _start_tracks(
        self,
        det_to_slot: np.ndarray,
        measurements: np.ndarray,
        scores: np.ndarray,
        embeddings: np.ndarray | None,
    ) -> None:
        store = self._store
        new = np.flatnonzero((det_to_slot < 0) & (scores >= self.track_activation_threshold))
        if new.size == 0:
            return
        slots = store.allocate(new.size)
        kalman_initiate(measurements[new], slots, store.mean, store.covariance)
        store.hits[slots] = 1
        store.age[slots] = 1
        store.state[slots] = TENTATIVE
        if embeddings is not None:
            self._remember(slots, embeddings[new])
        det_to_slot[new] = slots
        self._confirm(slots)

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
            "settings": dict(self._settings),
            "frame_count": self.frame_count,
            "next_id": self._next_id,
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
            checked.tracks, checked.tracks["gallery"].shape[1], checked.embedding_dim
        )
        self._apply_settings(checked.settings)
        self._store = store
        self._next_id = checked.next_id
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
        self._settings = {}
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
            f"next_id={self._next_id}, appearance={appearance}, matching={self.matching!r}, "
            f"gating={self.gating!r}, max_age={self.maximum_frames_without_update}, feature_extractor={extractor})"
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


def _check_settings(s: dict[str, Any]) -> dict[str, Any]:
    """Validate tracker settings; returns them with numbers normalised."""

    def number(name: str, low: float, high: float, *, low_open: bool = False) -> float:
        value = s[name]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
            raise ValueError(f"{name} must be in {bound}, got {s[name]!r}")
        return value

    def integer(name: str, low: int) -> int:
        value = s[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
        return int(value)

    def choice(name: str, options: tuple[str, ...]) -> str:
        if s[name] not in options:
            raise ValueError(f"{name} must be one of {options}, got {s[name]!r}")
        return s[name]

    out = dict(s)
    out["lost_track_buffer"] = integer("lost_track_buffer", 0)
    out["frame_rate"] = number("frame_rate", 0.0, 1e6, low_open=True)
    out["track_activation_threshold"] = number("track_activation_threshold", 0.0, 1.0)
    out["minimum_consecutive_frames"] = integer("minimum_consecutive_frames", 1)
    out["minimum_iou_threshold"] = number("minimum_iou_threshold", 0.0, 1.0)
    out["appearance_threshold"] = number("appearance_threshold", 0.0, 2.0)
    out["appearance_weight"] = number("appearance_weight", 0.0, 1.0)
    out["ema_momentum"] = number("ema_momentum", 0.0, 1.0)
    out["nn_budget"] = integer("nn_budget", 1)
    choice("distance_metric", tuple(_METRICS))
    choice("appearance_mode", ("gallery", "ema"))
    choice("gating", tuple(_GATING_DOF))
    choice("matching", ("cascade", "global"))
    choice("motion_cost", ("iou", "mahalanobis"))
    choice("on_invalid", ON_INVALID_CHOICES)
    if s["use_appearance"] not in (None, True, False):
        raise ValueError(f"use_appearance must be None, True or False, got {s['use_appearance']!r}")
    return out
