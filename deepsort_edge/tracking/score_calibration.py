"""Live score calibration: what the tracker's score rules read, whatever the detector's scale.

Detectors spread their scores in their own way: in [0, 1], in 0-100, as
logits, bunched into a narrow band. Five rules read a score:
``track_activation_threshold``, the low-score stage (``low_score_matching``),
``confidence_noise``, ``confidence_embedding`` and ``minimum_score``; the two
confidence rules need a number in [0, 1]. ``score_calibration`` says what
they read:

- ``"unit"`` (the default): the score as given while every score seen lies
  in [0, 1] (most deep detectors; nothing changes for them); once one does
  not, every score is mapped linearly onto [0, 1] by the smallest and largest
  score seen, with 0 and 1 in that range: ``(s - lo) / (hi - lo)`` for
  ``lo = min(0, min seen)``, ``hi = max(1, max seen)``. A 0-100 detector is
  then read as ``s / 100``, MOT15's raw ACF scores (-0.5 to 139) about as
  ``s / 139``. Nothing is clipped: ``lo`` and ``hi`` include this frame.
- ``"rank"``: the score's *rank*, the fraction of the scores seen (this
  frame's included) at or below it, in (0, 1]; no increasing change of the
  detector's scale changes it, so a threshold of 0.1 says "not among the
  lowest tenth of this detector's scores". It also evens out a detector whose
  scores bunch together, at the price of reading a sure detector's typical
  score as middling (docs/detectors.md has the measurements).
- ``"none"``: the score as given; the confidence rules then refuse a finite
  score outside [0, 1] with a ``ValueError`` (:func:`check_given_scores`)
  rather than clip it.

The scores seen are kept in a window of the last :data:`WINDOW` finite scores
(bounded memory, first in first out), saved with the tracker's state.
Deterministic: the same scores in the same order give the same result.
Warm-up: on the first frame the window is empty and a score is read against
that frame's scores alone; the window fills over the next frames (a few
hundred detections). ``reset()`` empties the window with the tracks: a reset
tracker is a new one. NaN and infinite scores are never calibrated or kept:
the row checks drop (or refuse) such rows.

Example:
    >>> calibration = ScoreCalibration()
    >>> calibration.calibrate(np.array([10.0, 50.0, 90.0, 70.0]), "rank")
    array([0.25, 0.5 , 1.  , 0.75])
    >>> calibration.calibrate(np.array([10.0, 50.0, 90.0, 70.0]), "unit")  # lo = 0, hi = 90
    array([0.11111111, 0.55555556, 1.        , 0.77777778])
    >>> calibration.observe(np.array([10.0, 50.0, 90.0, 70.0]))
    >>> calibration.calibrate(np.array([60.0]), "rank")  # 3 of the 5 scores are at or below 60
    array([0.6])
    >>> calibration.calibrate(np.array([0.2, 0.9]), "unit")  # read against the 0-90 seen before
    array([0.00222222, 0.01      ])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels.scores import COUNT, HEAD, OUTSIDE, SEEN, keep_scores

__all__ = ["WINDOW", "ScoreCalibration", "check_given_scores"]

# Scores kept for ranking: a few hundred frames of a busy scene, 16 KiB.
WINDOW = 2048


class ScoreCalibration:
    """The window of recent scores and the calibration it gives (see the module docstring).

    Args:
        window: how many of the latest finite scores are kept (>= 1).
    """

    __slots__ = ("ring", "state", "_sorted", "_sorted_at")

    def __init__(self, window: int = WINDOW) -> None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        #: The kept scores and the window's counters (``kernels.scores``): the frame kernel keeps
        #: each frame's scores in them in place.
        self.ring = np.zeros(int(window))
        self.state = np.zeros(4, dtype=np.int64)
        self._sorted = np.zeros(0)  # the kept scores, sorted, as they were when SEEN was _sorted_at
        self._sorted_at = 0

    @property
    def window(self) -> int:
        """Scores kept at most."""
        return int(self.ring.shape[0])

    @property
    def all_in_unit_range(self) -> bool:
        """Every kept score lies in [0, 1] (``"unit"`` reads a frame as given when its scores do too)."""
        return not self.state[OUTSIDE]

    def __len__(self) -> int:
        return int(self.state[COUNT])

    @property
    def kept(self) -> np.ndarray:
        """A view of the kept scores in ring order (oldest first only until the window is full)."""
        return self.ring[: len(self)]

    def calibrate(self, scores: np.ndarray, mode: str) -> np.ndarray:
        """``(N,)`` float64 calibrated ``scores`` of one frame (``mode`` ``"unit"`` or ``"rank"``; the window
        is not changed).

        Both read the kept scores and this frame's finite ones (see the module
        docstring). Non-finite scores stay as they are (the row checks deal with them).
        """
        if mode not in ("unit", "rank"):
            raise ValueError(f"mode must be 'unit' or 'rank', got {mode!r}")
        raw = np.asarray(scores, dtype=np.float64).reshape(-1)
        finite = np.isfinite(raw)
        values = raw[finite]
        if not values.size:
            return raw.copy()
        if mode == "unit":
            lo, hi = min(0.0, float(values.min())), max(1.0, float(values.max()))
            if self.state[OUTSIDE]:
                kept = self.kept
                lo, hi = min(lo, float(kept.min())), max(hi, float(kept.max()))
            if lo == 0.0 and hi == 1.0:
                return raw  # every score seen is in [0, 1]: as given (the common case, one pass)
            out = raw.copy()
            out[finite] = (values - lo) / (hi - lo)
            return out
        out = raw.copy()
        kept = self._kept_sorted()
        frame = np.sort(values)
        out[finite] = (np.searchsorted(kept, values, side="right")
                       + np.searchsorted(frame, values, side="right")) / (kept.size + frame.size)
        return out

    def observe(self, scores: np.ndarray) -> None:
        """Keep this frame's finite ``scores`` (the oldest kept ones make room)."""
        keep_scores(self.ring, self.state, np.ascontiguousarray(scores, dtype=np.float64).reshape(-1))

    def clear(self) -> None:
        """Forget every kept score."""
        self.state[:] = 0
        self._sorted, self._sorted_at = np.zeros(0), 0

    def to_array(self) -> np.ndarray:
        """``(K,)`` float64 kept scores, oldest first (what a saved state holds)."""
        if len(self) < self.window:
            return self.kept.copy()
        return np.roll(self.ring, -int(self.state[HEAD]))

    @classmethod
    def from_array(cls, kept: object, window: int = WINDOW) -> ScoreCalibration:
        """A calibration holding ``kept`` (oldest first), as :meth:`to_array` gave it.

        Raises:
            ValueError: ``kept`` is not a 1-d array of at most ``window`` finite numbers.
        """
        array = np.asarray(kept)
        if array.size == 0:
            return cls(window)
        if array.ndim != 1 or array.dtype.kind not in "iuf":
            raise ValueError(f"kept scores must be a 1-d array of numbers, got shape {array.shape} dtype {array.dtype}")
        if array.shape[0] > window or not np.isfinite(array).all():
            raise ValueError(f"kept scores must be at most {window} finite numbers, got {array.shape[0]}")
        calibration = cls(window)
        count = array.shape[0]
        calibration.ring[:count] = array
        outside = np.count_nonzero((array < 0.0) | (array > 1.0))
        calibration.state[:] = (count % window, count, outside, count)  # as keep_scores leaves them
        return calibration

    def _kept_sorted(self) -> np.ndarray:
        if self._sorted_at != self.state[SEEN]:
            self._sorted, self._sorted_at = np.sort(self.kept), int(self.state[SEEN])
        return self._sorted


def check_given_scores(settings: Any, scores: np.ndarray) -> None:
    """Refuse what ``settings`` cannot read: under ``score_calibration="none"``, finite scores outside
    [0, 1] while ``confidence_noise`` or ``confidence_embedding`` is on (never clipped).

    Args:
        settings: a :class:`~deepsort_edge.tracking.settings.TrackerSettings` (or anything with its three fields).
        scores: ``(N,)`` scores as the detector gave them.

    Raises:
        ValueError: naming the range found and the way out (``score_calibration="rank"``).

    Example:
        >>> from deepsort_edge.tracking.settings import TrackerSettings
        >>> check_given_scores(TrackerSettings(score_calibration="rank"), np.array([3.0, 97.0]))  # any scale
        >>> check_given_scores(TrackerSettings(score_calibration="none"), np.array([3.0, 97.0]))
        Traceback (most recent call last):
        ...
        ValueError: scores must lie in [0, 1] for confidence_noise / confidence_embedding with score_calibration='none', got range [3, 97]; use score_calibration='rank' (any scale) or turn those off
    """
    if settings.score_calibration != "none" or not (settings.confidence_noise or settings.confidence_embedding):
        return
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(
            "scores must lie in [0, 1] for confidence_noise / confidence_embedding with score_calibration='none', "
            f"got range [{values.min():g}, {values.max():g}]; use score_calibration='rank' (any scale) "
            "or turn those off"
        )
