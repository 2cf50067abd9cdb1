"""deepsort-edge as the ``deepsort`` tracker of roboflow ``trackers`` >= 2.6.

roboflow's trackers 2.6 dropped DeepSORT. Their trackers subclass
``trackers.core.base.BaseTracker``; a subclass that names a ``tracker_id``
registers itself, and their CLI (``trackers track``, ``trackers tune``) and
``trackers.tune.Tuner`` find trackers in that registry, read their options
from ``__init__`` and tune the ranges in ``search_space``.

Importing this module with ``trackers`` >= 2.6 installed defines and
registers :class:`DeepSORTBaseTracker` under the name ``deepsort``; without
it the module still imports, and :func:`register` says what to install.
roboflow's CLI has no plugin hook, so run it through this module, which
registers first::

    python -m deepsort_edge.integrations.roboflow track --source video.mp4 --tracker deepsort
    python -m deepsort_edge.integrations.roboflow tune --tracker deepsort --gt-dir gt --detections-dir det

(``trackers eval`` scores MOT files and needs no tracker.)

Example:
    >>> from deepsort_edge.integrations.roboflow import register  # doctest: +SKIP
    >>> from trackers.core.base import BaseTracker  # doctest: +SKIP
    >>> tracker = BaseTracker._lookup_tracker("deepsort").tracker_class(  # doctest: +SKIP
    ...     feature_extractor="none")
    >>> tracker.update(detections).tracker_id  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import supervision as sv

    from deepsort_edge.tracking.tracker import DeepSORTTracker

__all__ = ["MIN_TRACKERS_VERSION", "REGISTRY_NAME", "SEARCH_SPACE", "main", "register"]

#: The registry name roboflow's CLI and tuner use.
REGISTRY_NAME = "deepsort"
#: The oldest roboflow trackers release with BaseTracker's registry and search_space.
MIN_TRACKERS_VERSION = (2, 6)
#: Ranges roboflow's tuner samples (their format: randint/uniform ranges, choice options).
SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "lost_track_buffer": {"type": "randint", "range": [10, 121]},
    "track_activation_threshold": {"type": "uniform", "range": [0.1, 0.9]},
    "minimum_consecutive_frames": {"type": "randint", "range": [1, 5]},
    "minimum_iou_threshold": {"type": "uniform", "range": [0.05, 0.7]},
    "appearance_threshold": {"type": "uniform", "range": [0.05, 0.6]},
    "appearance_weight": {"type": "uniform", "range": [0.0, 1.0]},
}

_registered: type | None = None


def _trackers_version() -> tuple[int, ...] | None:
    try:
        text = metadata.version("trackers")
    except metadata.PackageNotFoundError:
        return None
    numbers = []
    for part in text.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def register() -> type:
    """Define and register the ``deepsort`` ``BaseTracker`` subclass (once); return it.

    Raises:
        ImportError: if roboflow ``trackers`` >= 2.6 is not installed.

    Example:
        >>> register().tracker_id  # doctest: +SKIP
        'deepsort'
    """
    global _registered
    if _registered is not None:
        return _registered
    version = _trackers_version()
    if version is None or version < MIN_TRACKERS_VERSION:
        found = "not installed" if version is None else "version " + ".".join(map(str, version))
        raise ImportError(
            "deepsort_edge.integrations.roboflow needs roboflow trackers >= "
            f"{'.'.join(map(str, MIN_TRACKERS_VERSION))} ({found}): pip install \"trackers>=2.6\""
        )
    _registered = _define()
    return _registered


class _DeepSORTBehaviour:
    """What :class:`DeepSORTBaseTracker` does, apart from roboflow's base class.

    Kept at module level (the base class exists only where roboflow trackers
    is installed, so the registered class is built in :func:`_define`); it
    relies on ``BaseTracker``'s timestamp helpers.
    """

    def _setup(self, feature_extractor: str, device: str, settings: dict[str, Any]) -> None:
        """Choose the extractor and build the wrapped tracker (the body of ``__init__``)."""
        from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor, default_model_path
        from deepsort_edge.tracking.tracker import DeepSORTTracker

        if not isinstance(feature_extractor, str):
            raise TypeError(
                "feature_extractor must be 'auto', 'default', 'none' or a model path, "
                f"got {type(feature_extractor).__name__}"
            )
        self._settings = settings
        self._choice = feature_extractor
        self._device = device
        if feature_extractor == "none" or feature_extractor == "auto":
            self._extractor: Any = None  # "auto" decides at the first update of a sequence
        elif feature_extractor == "default":
            self._extractor = DeepSORTFeatureExtractor(default_model_path(), device)
        else:
            self._extractor = DeepSORTFeatureExtractor(feature_extractor, device)
        self._tracker = DeepSORTTracker(feature_extractor=self._extractor, **self._settings)
        self.maximum_frames_without_update = int(self._tracker.settings.max_age_frames)
        self.maximum_time_without_update = float(settings["lost_track_buffer"]) / 30.0
        self._init_timestamp_state(settings["frame_rate"])  # type: ignore[attr-defined]
        self._decided = feature_extractor != "auto"

    @property
    def deepsort(self) -> DeepSORTTracker:
        """The wrapped :class:`deepsort_edge.DeepSORTTracker`."""
        return self._tracker

    @property
    def tracks(self) -> list[Any]:
        """Live tracks (tentative ones with ``tracker_id == -1``), in birth order.

        :class:`deepsort_edge.tracking.tracks.TrackView` snapshots, which satisfy
        roboflow's ``TrackletProtocol`` (``tracker_id``, ``get_state_bbox()``).
        """
        return self._tracker.tracks

    def _decide(self, frame: np.ndarray | None) -> None:
        """"auto": appearance when the sequence's first update brings a frame."""
        from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor, default_model_path
        from deepsort_edge.tracking.tracker import DeepSORTTracker

        self._decided = True
        if frame is None:
            return
        if self._extractor is None:
            self._extractor = DeepSORTFeatureExtractor(default_model_path(), self._device)
        self._tracker = DeepSORTTracker(feature_extractor=self._extractor, **self._settings)

    def update(
        self,
        detections: sv.Detections,
        frame: np.ndarray | None = None,
        timestamp: float | None = None,
    ) -> sv.Detections:
        """Track one frame; every input row comes back with ``tracker_id`` (-1: not confirmed).

        Args:
            detections: This frame's detections.
            frame: The BGR image; needed when an appearance model is in use.
            timestamp: Capture time in seconds, or None (orders the calls only).

        Returns:
            A new sv.Detections; the input is not modified.
        """
        timing = self._predict_timing(timestamp)  # type: ignore[attr-defined]
        if timing.skip_update:
            return self._detections_for_skipped_update(detections)  # type: ignore[attr-defined]
        if not self._decided:
            self._decide(frame)
        uses_frame = self._tracker.feature_extractor is not None or (
            self._tracker.settings.camera_motion != "none"
        )
        if not uses_frame:
            self._warn_if_frame_unused(frame)  # type: ignore[attr-defined]
            frame = None
        return self._tracker.update(detections, frame)

    def reset(self) -> None:
        """Forget every track and restart ids; "auto" decides again at the next update."""
        from deepsort_edge.tracking.tracker import DeepSORTTracker

        self._last_timestamp = None
        if self._choice == "auto":
            self._decided = False
            self._tracker = DeepSORTTracker(feature_extractor=None, **self._settings)
        else:
            self._tracker.reset()


def _define() -> type:
    from trackers.core.base import BaseTracker

    from deepsort_edge.tracking.settings import TrackerSettings

    defaults = TrackerSettings()

    class DeepSORTBaseTracker(_DeepSORTBehaviour, BaseTracker):
        """DeepSORT (deepsort-edge: Numba kernels, ONNX Runtime appearance) for roboflow trackers.

        Wraps :class:`deepsort_edge.DeepSORTTracker`; each frame's Kalman
        step is one frame (timestamps only order the calls: a backwards or
        non-finite timestamp skips the update, as in roboflow's trackers).

        Args:
            lost_track_buffer: Frames (at 30 FPS) a lost track is kept.
            frame_rate: Video frame rate; scales lost_track_buffer.
            track_activation_threshold: Minimum detection confidence for every matching stage;
                starting a track takes ``new_track_margin`` (default 0.1) more.
            minimum_consecutive_frames: Matched frames before a track gets an id.
            minimum_iou_threshold: Minimum IoU for a match by overlap (default:
                0.3 in frames with embeddings, 0.2 in frames without).
            appearance_threshold: Maximum appearance (cosine) distance for a match.
            appearance_weight: Weight of appearance against motion in the cascade cost.
            class_aware: Keep each track to one class_id. Off by default, as in
                roboflow's trackers (MOT detection files often carry no real
                class in column 8).
            feature_extractor: "auto" (the shipped model when update() gets
                frames, motion only when it does not), "default" (the shipped
                model), "none" (motion only), or the path of an ONNX or torch
                (.pt/.pth) appearance model.
            device: Where the appearance model runs: auto, cpu, cuda, cuda:1.
            preset: deepsort-edge preset: default, paper or roboflow-2.0.1.
        """

        tracker_id = REGISTRY_NAME
        search_space = SEARCH_SPACE

        def __init__(
            self,
            lost_track_buffer: int = defaults.lost_track_buffer,
            frame_rate: float = defaults.frame_rate,
            track_activation_threshold: float = defaults.track_activation_threshold,
            minimum_consecutive_frames: int = defaults.minimum_consecutive_frames,
            minimum_iou_threshold: float | None = defaults.minimum_iou_threshold,
            appearance_threshold: float = defaults.appearance_threshold,
            appearance_weight: float = defaults.appearance_weight,
            class_aware: bool = False,
            feature_extractor: str = "auto",
            device: str = "auto",
            preset: str = "default",
        ) -> None:
            settings = dict(
                lost_track_buffer=lost_track_buffer,
                frame_rate=frame_rate,
                track_activation_threshold=track_activation_threshold,
                minimum_consecutive_frames=minimum_consecutive_frames,
                minimum_iou_threshold=minimum_iou_threshold,
                appearance_threshold=appearance_threshold,
                appearance_weight=appearance_weight,
                class_aware=class_aware,
                preset=preset,
            )
            self._setup(feature_extractor, device, settings)

    DeepSORTBaseTracker.__module__ = __name__
    return DeepSORTBaseTracker


def __getattr__(name: str) -> Any:
    if name == "DeepSORTBaseTracker":
        return register()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _with_deepsort_defaults(argv: list[str]) -> list[str]:
    """``argv`` plus ``--tracker.NAME DEFAULT`` for each deepsort option it does not set.

    roboflow's ``track`` command adds one ``--tracker.NAME`` flag per name for
    all registered trackers, with the default of the first tracker (in name
    order) that has it, so ``--tracker deepsort`` would otherwise run with
    BoT-SORT's ``lost_track_buffer``, ``track_activation_threshold`` and
    ``minimum_consecutive_frames``.
    """
    import inspect

    chosen = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--tracker"]
    chosen += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--tracker=")]
    if not argv or argv[0] != "track" or chosen[-1:] != [REGISTRY_NAME]:
        return argv
    given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--tracker.")}
    extra = []
    for name, param in inspect.signature(register().__init__).parameters.items():
        flag = f"--tracker.{name}"
        if name == "self" or flag in given or isinstance(param.default, bool):
            continue  # flags of bools are switches, and their defaults are ours already
        extra += [flag, str(param.default)]
    return [*argv, *extra]


def main(argv: list[str] | None = None) -> int:
    """Run roboflow's ``trackers`` CLI with ``deepsort`` registered (and its own defaults).

    Example:
        >>> main(["track", "--detections", "det.txt", "--tracker", "deepsort",
        ...       "--mot-output", "out.txt"])  # doctest: +SKIP
    """
    try:
        register()
    except ImportError as exc:
        print(f"deepsort-edge roboflow: error: {exc}", file=sys.stderr)
        return 2
    from trackers.scripts.__main__ import main as trackers_main

    saved = sys.argv
    sys.argv = ["trackers", *_with_deepsort_defaults(sys.argv[1:] if argv is None else list(argv))]
    try:
        return int(trackers_main() or 0)
    finally:
        sys.argv = saved


try:  # registering on import is what roboflow's registry expects
    register()
except ImportError:
    pass

if __name__ == "__main__":
    sys.exit(main())
