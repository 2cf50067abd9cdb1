"""A tracker's settings in force: checked changes, the kernel's plain-number copy, the objects they build.

Mixed into :class:`~deepsort_edge.tracking.tracker.DeepSORTTracker`: :meth:`TrackerConfiguration.configure`
changes settings from the next update (store-shaping ones only while no track
is held); every setting is an attribute whose assignment calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..appearance.adaptation import SceneAdapter
from ..kernels.arguments import FrameSettings
from ..kernels.gallery import METRIC_COSINE, METRIC_EUCLIDEAN
from ..kernels.gating import CHI2_095
from ..kernels.half import check_float16
from .score_split import start_threshold, threshold_in_force
from .settings import MINIMUM_IOU_MOTION_ONLY, MINIMUM_IOU_WITH_APPEARANCE, TrackerSettings
from .settings import names as setting_names
from .tracks import TrackStore

if TYPE_CHECKING:  # typing.Self is Python 3.11+; annotations are strings here (PEP 563)
    from typing import Self

__all__ = ["TrackerConfiguration", "camera_estimator", "overlap_rule_beyond"]


_METRICS = {"cosine": METRIC_COSINE, "euclidean": METRIC_EUCLIDEAN}
_GATING_DOF = {"full": 4, "position": 2}
# Settings that shape the track store: they change only while it holds no track.
_STORE_SHAPING = ("appearance_mode", "nn_budget", "gallery_dtype", "appearance_adaptation")
_ACTIVATION_FIELD = FrameSettings._fields.index("activation_threshold")
_MINIMUM_IOU_FIELD = FrameSettings._fields.index("minimum_iou")


def camera_estimator(camera_motion: str) -> Any:
    """The camera-motion estimator a ``camera_motion`` setting asks for (None: none)."""
    if camera_motion != "affine":
        return None
    from .camera_motion import CameraMotionEstimator

    return CameraMotionEstimator()


def scene_adapter(settings: TrackerSettings) -> SceneAdapter | None:
    """The scene adapter an ``appearance_adaptation`` setting asks for (None: none)."""
    if settings.appearance_adaptation == "none":
        return None
    return SceneAdapter(settings.appearance_adaptation, settings.adaptation_interval, settings.ema_momentum)


def overlap_rule_beyond(rule: str, gate: float) -> float:
    """The squared gate distance beyond which a ``lost_track_rule`` or ``recent_track_rule`` value holds.

    ``FrameSettings.lost_overlap_beyond`` and ``recent_overlap_beyond``: -1 for
    every pair (``overlap``), the motion-only gate (``far``), inf for none.

    Raises:
        ValueError: ``rule`` is none of those three.

    Example:
        >>> overlap_rule_beyond("far", 9.4877), overlap_rule_beyond("overlap", 9.4877)
        (9.4877, -1.0)
    """
    beyond = {"none": np.inf, "overlap": -1.0, "far": gate}
    if rule not in beyond:
        raise ValueError(f"rule must be one of {sorted(beyond)}, got {rule!r}")
    return beyond[rule]


class TrackerConfiguration:
    """The settings of a tracker: in force, changed, and as the kernel reads them.

    Every setting is also an attribute (a property installed below) whose
    assignment calls :meth:`configure`.
    """

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
            minimum_iou=float(MINIMUM_IOU_WITH_APPEARANCE if settings.minimum_iou_threshold is None
                              else settings.minimum_iou_threshold),
            lost_overlap_beyond=overlap_rule_beyond(settings.lost_track_rule, float(gate)),
            recent_overlap_beyond=overlap_rule_beyond(settings.recent_track_rule, float(gate)),
            class_aware=bool(settings.class_aware),
            cascade=settings.matching == "cascade",
            max_age=int(settings.max_age_frames),
            activation_threshold=float(settings.track_activation_threshold),
            start_threshold=start_threshold(float(settings.track_activation_threshold), settings),
            low_score_matching=bool(settings.low_score_matching),
            minimum_score=-np.inf if settings.minimum_score is None else float(settings.minimum_score),
            confidence_noise=bool(settings.confidence_noise),
            gallery_mode=settings.appearance_mode == "gallery",
            ema_momentum=float(settings.ema_momentum),
            confidence_embedding=bool(settings.confidence_embedding),
            coast_damping=float(settings.coast_damping),
            aspect_noise=float(settings.aspect_noise),
            aspect_velocity_noise=float(settings.aspect_velocity_noise),
            n_init=int(settings.minimum_consecutive_frames),
            iou_recovery_frames=int(settings.iou_recovery_frames),
            occluded_fraction=float(settings.occluded_fraction),
        ))
        # The kernel keeps each frame's scores in the window for the calibration and the split (typical_score).
        self._keeps_scores = settings.score_calibration != "none" or settings.typical_score is not None
        scores = getattr(self, "_scores", None)  # None while the constructor runs (reset() follows)
        self._set_activation(settings.track_activation_threshold if scores is None
                             else threshold_in_force(settings, scores))

    def _set_activation(self, threshold: float) -> None:
        """Run the kernel with this activation threshold in force (``typical_score``)."""
        self._activation = float(threshold)
        settings = self._frame_settings
        if self._activation != settings[_ACTIVATION_FIELD]:
            settings = tuple(FrameSettings(*settings)._replace(
                activation_threshold=self._activation, start_threshold=start_threshold(self._activation, self._settings)
            ))
        self._kernel_settings = settings
        # A frame without embeddings (motion only) runs with its own minimum IoU unless one was set.
        if self._settings.minimum_iou_threshold is None:
            settings = (*settings[:_MINIMUM_IOU_FIELD], MINIMUM_IOU_MOTION_ONLY, *settings[_MINIMUM_IOU_FIELD + 1:])
        self._motion_kernel_settings = settings

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

    def configure(self, **changes: Any) -> Self:
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
            >>> from deepsort_edge import DeepSORTTracker
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
                self._camera = camera_estimator(new.camera_motion)
            if reshaped:
                self._adapter = scene_adapter(new)
            elif self._adapter is not None:  # evidence and the space in use are kept
                self._adapter.interval, self._adapter.momentum = new.adaptation_interval, new.ema_momentum
        return self


def _setting_property(name: str) -> property:
    def get(self: Any) -> Any:
        return getattr(self._settings, name)

    def set(self: Any, value: Any) -> None:
        self.configure(**{name: value})

    return property(get, set, doc=f"The ``{name}`` setting; assigning it calls :meth:`DeepSORTTracker.configure`.")


for _name in setting_names():
    setattr(TrackerConfiguration, _name, _setting_property(_name))
del _name
