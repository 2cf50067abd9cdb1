"""Where the low-score band ends: an activation threshold read against the detector's typical score.

``track_activation_threshold`` splits a frame's detections in two: at or above
it a detection takes part in every matching stage (and starts a track from
``new_track_margin`` above it: :func:`start_threshold`, scaled alike);
below it (with ``low_score_matching``) it only continues a track seen last
frame, by IoU, and never confirms a new one. That split assumes the low band is
mostly noise, which holds for a detector whose score says how sure it is (on
PETS09, 21 % of the ACF boxes scoring below 0.3 are people, 90 % of those
above) and not for one whose score barely tracks correctness (OpenCV's HOG
people detector: 51 % below 0.3, 66 % above; its median score is 0.41 of its
range). Such a detector puts many of its *typical* boxes, real people, in the
low band, where they can neither start nor confirm a track.

The rule (``typical_score``, a score ``m0``): a threshold is written for a
detector whose median score is at least ``m0``. The threshold in force is

    ``threshold * min(1, median / m0)``

with ``median`` the median of the calibrated scores seen (the score
calibration's window, the last 2048). Every deep detector measured here and
ACF have a median of 0.5 or more and keep the threshold as given; a detector
whose typical score is lower has its threshold lowered in proportion, so its
low band again holds only its scores well below its typical one. The scale
enters only through the ratio: multiplying every score by a constant moves
the split with it.

The median is taken every :data:`EVERY` frames (an O(window) selection,
amortised), from the window as it stands before that frame; until the window
holds :data:`MINIMUM_SCORES` scores the threshold is as given. The threshold
in force is saved with the tracker's state, so a resumed tracker goes on
exactly as an uninterrupted one. A threshold <= 0 is left as it is.

Example:
    >>> round(split_threshold(0.3, 0.5, window_median(np.array([0.2, 0.4, 0.41, 0.5, 0.6]))), 6)  # median 0.41
    0.246
    >>> split_threshold(0.3, 0.5, 0.7)  # a typical score of 0.7: as given
    0.3
    >>> split_threshold(0.3, None, 0.41)  # the rule off
    0.3
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .score_calibration import ScoreCalibration

__all__ = ["EVERY", "MINIMUM_SCORES", "split_threshold", "start_threshold", "threshold_in_force", "window_median"]

# Frames between two medians: copy, select and calibrate (~40 us on a loaded 2-core machine) every 32 frames.
EVERY = 32
# Scores the window must hold before the rule moves the threshold: a few dozen frames of a busy scene.
MINIMUM_SCORES = 256


def window_median(kept: np.ndarray) -> float:
    """The median of ``kept`` scores (the upper one of an even count: one selection, no average).

    Raises:
        ValueError: ``kept`` is empty.

    Example:
        >>> window_median(np.array([3.0, 1.0, 2.0, 10.0]))
        3.0
    """
    values = np.asarray(kept, dtype=np.float64).reshape(-1)
    if not values.size:
        raise ValueError("kept must hold at least one score")
    middle = values.size // 2
    return float(np.partition(values, middle)[middle])


def split_threshold(threshold: float, typical: float | None, median: float) -> float:
    """The activation threshold in force: ``threshold * min(1, median / typical)`` (see the module docstring).

    Args:
        threshold: ``track_activation_threshold`` (<= 0: returned as it is).
        typical: ``typical_score`` (None: ``threshold`` as given).
        median: the median of the scores seen, as the score rules read them (after ``score_calibration``).

    Raises:
        ValueError: ``typical`` is not None and not a number in (0, 1].
    """
    if typical is None:
        return float(threshold)
    if isinstance(typical, bool) or not isinstance(typical, (int, float)) or not 0.0 < typical <= 1.0:
        raise ValueError(f"typical must be a number in (0, 1] or None, got {typical!r}")
    if threshold <= 0.0 or not math.isfinite(median) or median >= typical:
        return float(threshold)
    return float(threshold) * max(float(median), 0.0) / typical


def threshold_in_force(settings: Any, calibration: ScoreCalibration) -> float:
    """``settings``' activation threshold under the rule, from the scores ``calibration`` keeps.

    As given while the rule is off or fewer than :data:`MINIMUM_SCORES` scores are kept.
    The window holds the scores as given; the calibration is increasing, so the median
    of the calibrated scores is the calibrated median.

    Example:
        >>> from deepsort_edge.tracking.settings import TrackerSettings
        >>> calibration = ScoreCalibration()
        >>> calibration.observe(np.linspace(0.0, 0.8, 301))  # median 0.4
        >>> round(threshold_in_force(TrackerSettings(), calibration), 6)  # 0.3 * 0.4 / 0.5
        0.24
    """
    threshold = float(settings.track_activation_threshold)
    if settings.typical_score is None or len(calibration) < MINIMUM_SCORES:
        return threshold
    median = window_median(calibration.kept)  # the median needs no order: no oldest-first copy
    if settings.score_calibration != "none":
        median = float(calibration.calibrate(np.array([median]), settings.score_calibration)[0])
    return split_threshold(threshold, settings.typical_score, median)


def start_threshold(activation: float, settings: Any) -> float:
    """The score a detection needs to start a track, given the activation threshold in force.

    ``activation`` plus ``settings.new_track_margin``, the margin scaled as the threshold is
    (``activation / track_activation_threshold``; a threshold <= 0 leaves it as given), so
    the band between the two moves with the detector's typical score as the split does.

    Example:
        >>> from deepsort_edge.tracking.settings import TrackerSettings
        >>> round(start_threshold(0.3, TrackerSettings()), 6)  # 0.3 + 0.1
        0.4
        >>> round(start_threshold(0.24, TrackerSettings()), 6)  # median 0.4: (0.3 + 0.1) * 0.4 / 0.5
        0.32
    """
    threshold = float(settings.track_activation_threshold)
    scale = activation / threshold if threshold > 0.0 else 1.0
    return float(activation + settings.new_track_margin * scale)
