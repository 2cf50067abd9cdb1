"""Live score calibration: every score rule reads a detection's rank among the scores seen.

Detectors spread their scores in their own way: in [0, 1], in 0-100, as
logits, bunched into a narrow band. The tracker's score rules
(``track_activation_threshold``, the low-score stage, ``confidence_noise``,
``confidence_embedding``, ``minimum_score``) are set for one scale, so on raw
scores they mean something different for every detector. With
``score_calibration="rank"`` (the default) the tracker replaces each score by
its *rank*: the fraction of the recently seen scores (this frame's included)
at or below it, a number in (0, 1] that no monotone change of the detector's
scale changes. A threshold of 0.1 then says "not among the lowest tenth of
this detector's scores", whatever its scale.

The scores seen are kept in a window of the last :data:`WINDOW` finite scores
(bounded memory, first in first out), saved with the tracker's state.
Deterministic: the same scores in the same order give the same ranks.

Warm-up: on the first frame the window is empty and a score is ranked among
that frame's scores alone; the window fills over the next frames (a few
hundred detections), so early ranks are coarse but never undefined.
``reset()`` empties the window with the tracks: a reset tracker is a new one.

With ``score_calibration="none"`` scores are used as given; the two rules
that need a score in [0, 1] (``confidence_noise``, ``confidence_embedding``)
then refuse a finite score outside it with a ``ValueError`` rather than
clip it. NaN and infinite scores are never ranked or kept: the row checks
drop (or refuse) such rows.

Example:
    >>> calibration = ScoreCalibration()
    >>> calibration.calibrate(np.array([10.0, 50.0, 90.0, 70.0]))
    array([0.25, 0.5 , 1.  , 0.75])
    >>> calibration.observe(np.array([10.0, 50.0, 90.0, 70.0]))
    >>> calibration.calibrate(np.array([60.0]))  # 3 of the 5 scores are at or below 60
    array([0.6])
"""

from __future__ import annotations

import numpy as np

__all__ = ["CALIBRATION_MODES", "WINDOW", "ScoreCalibration", "check_unit_scores"]

CALIBRATION_MODES = ("none", "rank")
# Scores kept for ranking: a few hundred frames of a busy scene, 16 KiB.
WINDOW = 2048


class ScoreCalibration:
    """The window of recent scores and the ranks it gives (see the module docstring).

    Args:
        window: how many of the latest finite scores are kept (>= 1).
    """

    __slots__ = ("_ring", "_head", "_count", "_sorted")

    def __init__(self, window: int = WINDOW) -> None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        self._ring = np.zeros(int(window))
        self._head = 0  # where the next score goes
        self._count = 0
        self._sorted: np.ndarray | None = np.zeros(0)  # the kept scores, sorted (None: out of date)

    @property
    def window(self) -> int:
        """Scores kept at most."""
        return int(self._ring.shape[0])

    def __len__(self) -> int:
        return self._count

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """``(N,)`` float64 ranks in (0, 1] of one frame's ``scores`` (the window is not changed).

        A score's rank is the fraction of the kept scores and this frame's
        finite scores that are at or below it. Non-finite scores stay as
        they are (the row checks deal with them).
        """
        raw = np.asarray(scores, dtype=np.float64).reshape(-1)
        finite = np.isfinite(raw)
        frame = np.sort(raw[finite])
        kept = self._kept_sorted()
        total = kept.size + frame.size
        out = raw.copy()
        if total:
            values = raw[finite]
            out[finite] = (np.searchsorted(kept, values, side="right")
                           + np.searchsorted(frame, values, side="right")) / total
        return out

    def observe(self, scores: np.ndarray) -> None:
        """Keep this frame's finite ``scores`` (the oldest kept ones make room)."""
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        values = values[np.isfinite(values)]
        size = self.window
        if values.size >= size:
            self._ring[:] = values[-size:]
            self._head, self._count = 0, size
        elif values.size:
            positions = (self._head + np.arange(values.size)) % size
            self._ring[positions] = values
            self._head = int((self._head + values.size) % size)
            self._count = min(self._count + values.size, size)
        else:
            return
        self._sorted = None

    def clear(self) -> None:
        """Forget every kept score."""
        self._head = self._count = 0
        self._sorted = np.zeros(0)

    def to_array(self) -> np.ndarray:
        """``(K,)`` float64 kept scores, oldest first (what a saved state holds)."""
        if self._count < self.window:
            return self._ring[: self._count].copy()
        return np.roll(self._ring, -self._head)

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
        calibration.observe(array.astype(np.float64))
        return calibration

    def _kept_sorted(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.sort(self._ring[: self._count])
        return self._sorted


def check_unit_scores(scores: np.ndarray, rules: str) -> None:
    """Refuse finite scores outside [0, 1] where ``rules`` (named in the error) need them there.

    Raises:
        ValueError: naming the range found and the way out (``score_calibration="rank"``).
    """
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(
            f"scores must lie in [0, 1] for {rules} with score_calibration='none', got range "
            f"[{values.min():g}, {values.max():g}]; use score_calibration='rank' (any scale) or turn those off"
        )
