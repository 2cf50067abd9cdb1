"""Tracker settings: one schema for the constructor, the CLI, presets, saved state and docs.

Every setting is a field of :class:`TrackerSettings` (a frozen dataclass)
whose metadata says its kind, range or choices and a one-line help. The
tracker validates through it, ``deepsort-edge track`` builds one option per
field from it, presets are partial overrides of it, saved states store its
``asdict()``, and README's settings table is generated from it
(``python -m deepsort_edge.tracking.settings`` prints the table; a test checks that
README holds exactly that table).

Example:
    >>> s = TrackerSettings.from_preset("paper", frame_rate=7)
    >>> s.max_age_frames, s.appearance_weight
    (30, 1.0)
    >>> TrackerSettings(appearance_threshold=3.0)
    Traceback (most recent call last):
    ...
    ValueError: appearance_threshold must be in [0.0, 2.0], got 3.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ON_INVALID_CHOICES = ("drop", "raise")
# minimum_iou_threshold None: DeepSORT's 0.3 (max_iou_distance 0.7) in a frame with embeddings, 0.2 in a frame
# without them (chosen with tools/bench.py quality: every motion-only set but MOT17 gains, MOT17 -0.15 HOTA).
MINIMUM_IOU_WITH_APPEARANCE = 0.3
MINIMUM_IOU_MOTION_ONLY = 0.2
# appearance_adaptation's values (deepsort_edge.appearance.adaptation implements them).
ADAPTATION_MODES = ("none", "gate", "projection")


def _number(
    default: float | None, low: float, high: float, help: str, *, low_open: bool = False, optional: bool = False
) -> Any:
    meta = {"kind": "float", "range": (low, high, low_open), "optional": optional, "help": help}
    return field(default=default, metadata=meta)


# Upper bound of the integer settings: counts of frames and embeddings far
# beyond any real use, small enough for the kernels' int32/int64 arithmetic.
MAX_FRAMES_SETTING = 2**31 - 1
MAX_NN_BUDGET = 2**16


def _integer(default: int | None, low: int, help: str, *, high: int = MAX_FRAMES_SETTING, optional: bool = False) -> Any:
    meta = {"kind": "int", "low": low, "high": high, "optional": optional, "help": help}
    return field(default=default, metadata=meta)


def _choice(default: str, choices: tuple[str, ...], help: str) -> Any:
    return field(default=default, metadata={"kind": "choice", "choices": choices, "help": help})


def _flag(default: bool | None, help: str, *, optional: bool = False) -> Any:
    return field(default=default, metadata={"kind": "bool", "optional": optional, "help": help})


@dataclass(frozen=True)
class TrackerSettings:
    """Every tracker setting, validated on construction.

    The first eight fields are roboflow trackers 2.0.1's DeepSORT arguments,
    in its order and with its meaning; their default *values* are chosen by
    measurement (``python tools/bench.py quality``), see :data:`PRESETS` for
    roboflow's own values and the paper's.
    """

    lost_track_buffer: int = _integer(75, 0, "frames a lost track is kept, counted at 30 fps (scaled by frame_rate)")
    frame_rate: float = _number(30.0, 0.0, 1e6, "the video's frame rate; scales lost_track_buffer", low_open=True)
    track_activation_threshold: float = _number(
        0.3, -math.inf, math.inf,
        "minimum detection score (after score_calibration) for every matching stage and, with new_track_margin, to "
        "start a track (scaled by typical_score for a detector scoring low)",
    )
    minimum_consecutive_frames: int = _integer(
        3, 0, "matched frames before a track is confirmed and gets an id (0 behaves as 1, as in roboflow's)"
    )
    minimum_iou_threshold: float | None = _number(
        None, 0.0, 1.0, f"minimum IoU for a match by overlap (None: {MINIMUM_IOU_WITH_APPEARANCE} in a frame with "
        f"embeddings, {MINIMUM_IOU_MOTION_ONLY} in one without)", optional=True,
    )
    appearance_threshold: float = _number(0.25, 0.0, 2.0, "maximum appearance distance for a match")
    appearance_weight: float = _number(1.0, 0.0, 1.0, "weight of appearance against motion in the matching cost")
    distance_metric: str = _choice("cosine", ("cosine", "euclidean"), "appearance distance (on unit embeddings)")
    nn_budget: int = _integer(100, 1, "embeddings kept per track in gallery mode", high=MAX_NN_BUDGET)
    appearance_mode: str = _choice(
        "ema", ("gallery", "ema"), "gallery: nearest of the last nn_budget embeddings; ema: one smoothed embedding"
    )
    ema_momentum: float = _number(0.9, 0.0, 1.0, "weight of the old embedding in ema mode")
    gallery_dtype: str = _choice(
        "float32", ("float32", "float16"),
        "storage of the kept embeddings; float16 halves gallery mode's memory reads (distances within 1e-3)",
    )
    gating: str = _choice("full", ("full", "position"), "Mahalanobis gate: full (4 dof) or position (2 dof)")
    appearance_gate_scale: float = _number(
        6.0,
        1.0,
        1e6,
        "Mahalanobis gate of a pair that appearance also checks, in multiples of the motion-only gate",
    )
    matching: str = _choice("cascade", ("cascade", "global"), "matching cascade by track age, or one assignment")
    motion_cost: str = _choice(
        "iou", ("iou", "mahalanobis"), "motion term of the cost: 1 - IoU, or the Mahalanobis distance over the gate"
    )
    max_age: int | None = _integer(
        None, 0, "frames a lost track is kept, whatever the frame rate (overrides lost_track_buffer)", optional=True
    )
    lost_track_rule: str = _choice(
        "far",
        ("none", "overlap", "far"),
        "a track lost over a frame, on a detection its box misses, needs an appearance distance within half "
        "the threshold: for every such detection (overlap), only beyond the motion-only gate (far), or never",
    )
    recent_track_rule: str = _choice(
        "far",
        ("none", "far"),
        "a track matched in the previous frame, on a detection its box misses beyond the motion-only gate (a pair "
        "only appearance's wider gate lets in), needs an appearance distance within half the threshold (far), or not",
    )
    minimum_score: float | None = _number(
        None, -math.inf, math.inf, "detections scoring below this (after score_calibration) are ignored "
        "(None: keep all)", optional=True
    )
    iou_recovery_frames: int = _integer(
        2, 1, "a confirmed track the cascade left unmatched, missed for at most this many frames, may still "
        "continue by IoU (1: missed this frame only, as DeepSORT)",
    )
    occluded_fraction: float = _number(
        1.0, 0.0, 1.0, "a matched detection more than this fraction inside another detection does not update "
        "the track's appearance (1: every one does)",
    )
    low_score_matching: bool = _flag(
        True, "detections scoring below track_activation_threshold only continue tracks, by IoU (ByteTrack)"
    )
    new_track_margin: float = _number(
        0.1, 0.0, 1.0, "a detection needs track_activation_threshold + this to start a track; one scoring in "
        "between only continues tracks (ByteTrack's new-track threshold; scaled with the threshold by typical_score)",
    )
    score_calibration: str = _choice(
        "unit", ("unit", "rank", "none"),
        "what the score rules read: unit = the score, mapped onto [0, 1] by the range seen once one falls "
        "outside it; rank = its rank among the last 2048 scores seen; none = as given (refused outside "
        "[0, 1] by the confidence rules)",
    )
    typical_score: float | None = _number(
        0.5, 0.0, 1.0, "the median score (after score_calibration) track_activation_threshold is written for: "
        "below it, the threshold in force is scaled by median seen / typical_score, so a detector whose typical "
        "score is low (HOG) keeps its typical boxes out of the low-score stage (None: the threshold as given)",
        low_open=True, optional=True,
    )
    confidence_noise: bool = _flag(True, "Kalman measurement noise grows as the score falls: 1 + 2 (1 - score) times R")
    confidence_embedding: bool = _flag(True, "weigh embedding updates by detection score (low scores barely count)")
    coast_damping: float = _number(
        1.0, 0.0, 1.0, "factor on a lost track's velocity per missed frame (1: constant velocity)"
    )
    aspect_noise: float = _number(
        0.05, 0.0, 1.0, "Kalman process noise of the box's aspect ratio (width / height), standard deviation "
        "per frame: DeepSORT's 0.01 holds the width almost fixed to the height, more lets it follow the detector",
    )
    aspect_velocity_noise: float = _number(
        0.00625, 0.0, 1.0, "the same for the aspect ratio's velocity (DeepSORT's 1e-5: almost none; the default "
        "is the paper's ratio of velocity to position noise, 1/8, times aspect_noise)",
    )
    output_box: str = _choice(
        "kalman", ("kalman", "detection"),
        "box update_arrays(return_boxes=True) and MOT results give a tracked detection "
        "(update() keeps the detector's; the Kalman box is in data['track_xyxy'])",
    )
    camera_motion: str = _choice(
        "none", ("none", "affine"), "compensate camera motion from frames (optical flow + RANSAC affine)"
    )
    appearance_adaptation: str = _choice(
        "none", ADAPTATION_MODES,
        "learn from the tracker's own matches: gate (calibrate appearance_threshold) or projection (also a "
        "scene-specific LDA of the features, used when it separates held-back evidence better and the raw "
        "features do not separate like a ReID model's)",
    )
    adaptation_interval: int = _integer(50, 1, "frames between refits of appearance_adaptation")
    class_aware: bool = _flag(True, "a detection of another class_id never continues a track")
    use_appearance: bool | None = _flag(
        None, "None: use embeddings when a frame has them; True: require them; False: motion only", optional=True
    )
    on_invalid: str = _choice("drop", ON_INVALID_CHOICES, "invalid detections (NaN, empty boxes): drop with a warning, or raise")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check(f, getattr(self, f.name)))

    @property
    def max_age_frames(self) -> int:
        """Frames a lost track is kept: ``max_age``, else ``int(frame_rate / 30 * lost_track_buffer)``."""
        if self.max_age is not None:
            return self.max_age
        return int(self.frame_rate / 30.0 * self.lost_track_buffer)

    @classmethod
    def from_preset(cls, preset: str | None = None, **overrides: Any) -> TrackerSettings:
        """The ``preset``'s values (None: the defaults), then ``overrides`` on top."""
        values = dict(preset_values(preset))
        values.update(overrides)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrackerSettings:
        """Settings from a mapping; unknown names are a ``ValueError`` naming them."""
        unknown = sorted(set(values) - set(names()))
        if unknown:
            raise ValueError(f"unknown tracker settings {unknown}; known: {list(names())}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{name: value}`` (JSON-serialisable)."""
        return dataclasses.asdict(self)



@dataclass(frozen=True)
class IdentitySettings:
    """Settings of :class:`~deepsort_edge.streams.identities.IdentityRegistry` (global ids), validated on construction.

    Distances are cosine distances between unit embeddings (0 same
    direction, 2 opposite); times are seconds. The defaults are chosen by
    ``python tools/bench.py identities``: linking is kept strict (0.03) because on
    PETS09 with OSNet-x0.25 different people's tracks come as close as 0.004,
    so any looser bound links strangers there (docs/benchmarks.md).
    """

    min_frames: int = _integer(1, 1, "matched frames a confirmed track needs before it is linked or gets a new global id")
    link_threshold: float = _number(
        0.03, 0.0, 2.0, "largest appearance distance (cosine) at which a track joins an identity"
    )
    margin: float = _number(0.01, 0.0, 2.0, "a decision is revised only for an option this much closer (hysteresis)")
    revise_frames: int = _integer(
        40, 1, "a track's global id may change until it has this many matched frames (rechecked as its frames double)"
    )
    samples: int = _integer(4, 0, "diverse appearance samples kept per identity, beside its smoothed prototype")
    ema_momentum: float = _number(0.9, 0.0, 1.0, "weight of the old prototype per new embedding")
    expire_after: float = _number(600.0, 0.0, math.inf, "seconds an unseen identity is kept", low_open=True)
    max_identities: int = _integer(10000, 1, "identities kept at most; beyond, the longest unseen one is dropped")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check(f, getattr(self, f.name)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> IdentitySettings:
        """Settings from a mapping; unknown names are a ``ValueError`` naming them."""
        known = tuple(f.name for f in dataclasses.fields(cls))
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown identity settings {unknown}; known: {list(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{name: value}`` (JSON-serialisable)."""
        return dataclasses.asdict(self)


def _check(f: dataclasses.Field, value: Any) -> Any:
    meta, name = f.metadata, f.name
    if value is None and meta.get("optional"):
        return None
    kind = meta["kind"]
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            allowed = "None, True or False" if meta.get("optional") else "True or False"
            raise ValueError(f"{name} must be {allowed}, got {value!r}")
        return bool(value)
    if kind == "choice":
        if value not in meta["choices"]:
            raise ValueError(f"{name} must be one of {meta['choices']}, got {value!r}")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        expected = "an int" if kind == "int" else "a number"
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
    if kind == "int":
        if not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < meta["low"]:
            raise ValueError(f"{name} must be >= {meta['low']}, got {value}")
        if value > meta["high"]:
            raise ValueError(f"{name} must be <= {meta['high']}, got {value}")
        return int(value)
    low, high, low_open = meta["range"]
    number = float(value)
    if not math.isfinite(number) or number < low or number > high or (low_open and number == low):
        bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        if math.isinf(low) and math.isinf(high):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return number


def names() -> tuple[str, ...]:
    """Setting names in schema order."""
    return tuple(f.name for f in dataclasses.fields(TrackerSettings))


def fields() -> tuple[dataclasses.Field, ...]:
    """The schema's fields (name, default, metadata with kind / range / choices / help)."""
    return dataclasses.fields(TrackerSettings)


# Partial overrides of the defaults. "default" is the empty override: the
# dataclass defaults are the measured choice. "paper" runs DeepSORT as nwojke's
# deep_sort does (max_cosine_distance 0.2, nn_budget 100, max_age 30 frames,
# n_init 3, max_iou_distance 0.7, lambda 0: appearance only, Mahalanobis gate,
# every detection matched and every one with a score >= 0 may start a track). "roboflow-2.0.1"
# is that release's DeepSORTTracker defaults, with none of the additions.
_PLAIN_DEEPSORT: dict[str, Any] = {
    "score_calibration": "none",
    "typical_score": None,
    "lost_track_rule": "none",
    "recent_track_rule": "none",
    "low_score_matching": False,
    "new_track_margin": 0.0,
    "confidence_noise": False,
    "confidence_embedding": False,
    "coast_damping": 1.0,
    "aspect_noise": 0.01,
    "aspect_velocity_noise": 1e-5,
    "appearance_gate_scale": 1.0,
    "iou_recovery_frames": 1,
    "output_box": "detection",
    "camera_motion": "none",
}
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {
        **_PLAIN_DEEPSORT,
        "max_age": 30,
        # nwojke's Tracker starts a track from every unmatched detection; its
        # demo app drops detections below min_confidence first: minimum_score.
        "minimum_score": None,
        "track_activation_threshold": 0.0,
        "minimum_consecutive_frames": 3,
        "minimum_iou_threshold": 0.3,
        "appearance_threshold": 0.2,
        "appearance_weight": 1.0,
        "nn_budget": 100,
        "appearance_mode": "gallery",
        "motion_cost": "mahalanobis",
        "class_aware": False,
    },
    "roboflow-2.0.1": {
        **_PLAIN_DEEPSORT,
        "lost_track_buffer": 30,
        "track_activation_threshold": 0.25,
        "minimum_consecutive_frames": 3,
        "minimum_iou_threshold": 0.3,
        "appearance_threshold": 0.7,
        "appearance_weight": 0.5,
        "appearance_mode": "gallery",
        "motion_cost": "iou",
        "class_aware": False,
    },
}


def preset_values(preset: str | None) -> dict[str, Any]:
    """The overrides a preset makes (``None`` and ``"default"``: none)."""
    if preset is None:
        return {}
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    return dict(PRESETS[preset])


def markdown_table() -> str:
    """README's settings table, generated from the schema."""
    rows = ["| setting | default | values | meaning |", "|---|---|---|---|"]
    for f in fields():
        meta = f.metadata
        if meta["kind"] == "choice":
            values = " / ".join(f"`{c}`" for c in meta["choices"])
        elif meta["kind"] == "bool":
            values = "None / True / False" if meta.get("optional") else "True / False"
        elif meta["kind"] == "int":
            values = f"[{meta['low']}, {meta['high']}]"
        else:
            low, high, low_open = meta["range"]
            values = "any finite" if math.isinf(low) and math.isinf(high) else (
                f"{'(' if low_open else '['}{low:g}, {high:g}]"
            )
        if meta.get("optional") and meta["kind"] != "bool":
            values += " or None"
        rows.append(f"| `{f.name}` | `{f.default!r}` | {values} | {meta['help']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
