"""Tracker state: checking a state before it is loaded.

A state may come from anywhere (an old run, another machine, a stranger), so
:func:`check_state` trusts nothing in it: the kernels index galleries with
``gallery_head`` and ``gallery_count`` and do no bounds checks, so one bad
counter would write past an array or into another track's gallery. Every
field is checked for type, dtype, shape and range, and the track arrays for
the invariants the tracker itself keeps; the first failure raises a
``ValueError`` naming the field.

The state file (``.npz``) that holds it: :mod:`~deepsort_edge.tracking.state_file`.

Example:
    >>> from deepsort_edge import DeepSORTTracker
    >>> tracker = DeepSORTTracker()
    >>> state = check_state(tracker.state_dict())
    >>> state.next_id, state.frame_count
    (1, 0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..appearance.adaptation_state import check_adaptation_state
from .score_calibration import ScoreCalibration
from .settings import TrackerSettings, preset_values
from .settings import names as settings_names
from .state_tracks import check_track_arrays
from .tracks import TRACK_FIELDS

STATE_FORMAT = "deepsort-edge.tracker-state"
STATE_VERSION = 2

# Ids and the frame counter stay far below int64 overflow (2**63 - 1). A loaded
# state may hold at most MAX_LOADED of either, so tracking on from it keeps 2**61
# frames and ids of headroom before MAX_ID (73,000 years at a million fps).
MAX_ID = 2**62
MAX_LOADED = 2**61
# Largest embedding dimension and per-track gallery a state may ask for: a
# small file must not make the tracker allocate gigabytes.
MAX_EMBEDDING_DIM = 65536
MAX_GALLERY_VALUES = 2**24  # float32 values per track (64 MiB)

#: The fields every state has, those an older state may lack (empty / taken from the window), and its arrays.
REQUIRED_FIELDS = ("format", "version", "settings", "frame_count", "next_id", "embedding_dim", "tracks")
OPTIONAL_FIELDS = ("score_window", "activation_threshold")
ARRAY_NAMES = (*TRACK_FIELDS, "gallery")


@dataclass(frozen=True)
class CheckedState:
    """A state that passed :func:`check_state`: safe to hand to the tracker.

    Attributes:
        settings: Every tracker setting, normalised by the settings check.
        tracks: Track arrays with the tracker's dtypes, in birth order;
            gallery rows past ``gallery_count`` are zero.
        frame_count: Frames tracked so far.
        next_id: The id the next confirmed track gets.
        embedding_dim: Embedding dimension held (0: none yet).
        score_window: ``(K,)`` float64 scores the score calibration keeps, oldest first.
        activation_threshold: The activation threshold in force, or None (then derived from the window).
        adaptation: The scene adapter's state (``appearance_adaptation``), or None.
    """

    settings: TrackerSettings
    tracks: dict[str, np.ndarray]
    frame_count: int
    next_id: int
    embedding_dim: int
    score_window: np.ndarray = field(default_factory=lambda: np.zeros(0))
    adaptation: dict[str, Any] | None = None
    activation_threshold: float | None = None


def check_settings(raw: object, version: int = 2) -> TrackerSettings:
    """A saved state's settings, checked by the settings schema.

    Unknown names are an error; missing ones take the defaults (version 2)
    or, in a version-1 state (written before they existed), the values that
    keep its old behaviour.

    Raises:
        ValueError: Naming the setting.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"state field 'settings' must be a mapping, got {type(raw).__name__}")
    known = set(settings_names())
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ValueError(f"state field 'settings' has unknown setting(s) {unknown}")
    base = {**preset_values("roboflow-2.0.1"), "max_age": None} if version == 1 else {}
    try:
        return TrackerSettings.from_dict({**base, **raw})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"state field 'settings': {exc}") from None


def check_state(state: object) -> CheckedState:
    """Check everything in a ``DeepSORTTracker.state_dict()``-style mapping.

    Args:
        state: The mapping; track arrays may be numpy arrays or nested lists
            (as from JSON).

    Returns:
        The checked, normalised state.

    Raises:
        ValueError: The first problem found, naming the field (and the track
            row for per-track fields).
    """
    settings, gallery_size, embedding_dim = check_header(state)
    version = int(state["version"])  # type: ignore[index]  (a mapping: check_header saw to it)
    frame_count = _integer("frame_count", state["frame_count"], 0, MAX_LOADED)
    next_id = _integer("next_id", state["next_id"], 1, MAX_LOADED)
    raw_tracks = state["tracks"]
    if version == 1 and isinstance(raw_tracks, Mapping) and "class_id" not in raw_tracks and "mean" in raw_tracks:
        # Version 1 had no classes: every track was of one class.
        raw_tracks = {**raw_tracks, "class_id": np.zeros(len(raw_tracks["mean"]), dtype=np.int64)}
    tracks = _check_tracks(raw_tracks, gallery_size, embedding_dim, frame_count, next_id)
    try:
        scores = ScoreCalibration.from_array(state.get("score_window", ())).to_array()  # type: ignore[union-attr]
    except ValueError as exc:
        raise ValueError(f"state field 'score_window': {exc}") from None
    activation = state.get("activation_threshold")  # type: ignore[union-attr]
    if activation is not None:
        # The rule only lowers the threshold: a larger or non-finite one is no state the tracker writes.
        if isinstance(activation, bool) or not isinstance(activation, (int, float, np.floating, np.integer)) \
                or not -math.inf < float(activation) <= settings.track_activation_threshold:
            raise ValueError(
                "state field 'activation_threshold' must be a finite number <= the settings' "
                f"track_activation_threshold ({settings.track_activation_threshold}), got {activation!r}"
            )
        activation = float(activation)
    adaptation = None
    if "adaptation" in state:  # type: ignore[operator]
        if settings.appearance_adaptation == "none":
            raise ValueError("state field 'adaptation' is present, but the settings' appearance_adaptation is 'none'")
        adaptation = check_adaptation_state(state["adaptation"], embedding_dim)  # type: ignore[index]
    return CheckedState(settings, tracks, frame_count, next_id, embedding_dim, scores, adaptation, activation)


def check_header(state: object) -> tuple[TrackerSettings, int, int]:
    """Format, version, field names and the declared sizes (settings, gallery, embedding_dim)."""
    if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"state is not a deepsort-edge tracker state (expected format {STATE_FORMAT!r})")
    version = state.get("version")
    if isinstance(version, bool) or version not in (1, STATE_VERSION):  # True == 1, but is no version
        raise ValueError(
            f"tracker state version {state.get('version')!r} is not supported "
            f"(this deepsort-edge reads version {STATE_VERSION})"
        )
    _check_keys(state, REQUIRED_FIELDS + (("adaptation",) if "adaptation" in state else ()), "tracker state",
                optional=OPTIONAL_FIELDS)
    return _declared_sizes(state)


def _declared_sizes(state: Mapping) -> tuple[TrackerSettings, int, int]:
    """Settings, gallery rows per track and embedding dimension, each within its limit.

    Checked before anything of those sizes is allocated: a gallery of
    ``gallery_size x max(embedding_dim, 1)`` values per track is at most
    :data:`MAX_GALLERY_VALUES`.
    """
    settings = check_settings(state["settings"], int(state["version"]))
    gallery_size = settings.nn_budget if settings.appearance_mode == "gallery" else 1
    embedding_dim = _integer("embedding_dim", state["embedding_dim"], 0, MAX_EMBEDDING_DIM)
    if gallery_size * max(embedding_dim, 1) > MAX_GALLERY_VALUES:
        raise ValueError(
            f"state asks for galleries of {gallery_size} x {embedding_dim} values per track "
            f"(nn_budget x embedding_dim), more than the limit of {MAX_GALLERY_VALUES}"
        )
    return settings, gallery_size, embedding_dim


def _check_keys(mapping: Mapping, names: tuple[str, ...], where: str, optional: tuple[str, ...] = ()) -> None:
    """``mapping`` holds ``names`` and perhaps ``optional``; else a ValueError saying which are missing or unknown."""
    missing = [k for k in names if k not in mapping]
    if missing:
        raise ValueError(f"{where} lacks {missing}")
    unknown = sorted(str(k) for k in mapping if k not in names and k not in optional)
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {unknown}")


def _integer(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"state field {name!r} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"state field {name!r} must be in [{low}, {high}], got {value}")
    return int(value)


def _check_tracks(
    raw: object, gallery_size: int, embedding_dim: int, frame_count: int, next_id: int
) -> dict[str, np.ndarray]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"state field 'tracks' must be a mapping of arrays, got {type(raw).__name__}")
    _check_keys(raw, ARRAY_NAMES, "state field 'tracks'")
    return check_track_arrays(raw, gallery_size, embedding_dim, frame_count, next_id)


_MOVED = {"read_state_file": "state_file", "write_state_file": "state_file", "DEFAULT_MAX_BYTES": "state_file",
          "MAX_META_BYTES": "state_file", "MAX_JSON_DEPTH": "state_file", "MAX_TRACKS": "state_tracks"}


def __getattr__(name: str) -> Any:
    """Names that lived here before the state file got its own module: old imports keep working."""
    if name in _MOVED:
        import importlib  # noqa: PLC0415  (state_file imports this module: only on first use)

        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
