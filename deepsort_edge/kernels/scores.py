"""The score calibration's per-frame work (``tracking.score_calibration``), in one pass each.

The window of recent finite scores is a ring ``(W,)`` float64 and a
``state (4,)`` int64 indexed by :data:`HEAD` (where the next score goes),
:data:`COUNT` (scores kept), :data:`OUTSIDE` (kept scores outside [0, 1])
and :data:`SEEN` (finite scores ever kept: changes whenever the window
does). While the window is not full the kept scores are ``ring[:COUNT]``;
once full, the oldest one is at ``HEAD``. The frame kernel runs both
functions inline, so an update with a live calibration costs no extra call.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel

# Entries of the window's ``state``.
HEAD = 0
COUNT = 1
OUTSIDE = 2
SEEN = 3


@kernel(inline=True)
def finite_in_unit_range(scores: np.ndarray) -> bool:
    """True when every finite one of ``scores (N,)`` lies in [0, 1] (``"unit"`` then reads them as given)."""
    for i in range(scores.shape[0]):
        s = scores[i]
        if np.isfinite(s) and not (0.0 <= s <= 1.0):
            return False
    return True


@kernel(inline=True)
def keep_scores(ring: np.ndarray, state: np.ndarray, scores: np.ndarray) -> bool:
    """Keep the finite ``scores (N,)`` in the window, the oldest kept ones making room; True if any was kept."""
    size = ring.shape[0]
    head, count, outside = state[HEAD], state[COUNT], state[OUTSIDE]
    kept = 0
    for i in range(scores.shape[0]):
        s = scores[i]
        if not np.isfinite(s):
            continue
        if count == size:
            old = ring[head]
            if old < 0.0 or old > 1.0:
                outside -= 1
        else:
            count += 1
        ring[head] = s
        if s < 0.0 or s > 1.0:
            outside += 1
        head = (head + 1) % size
        kept += 1
    state[HEAD], state[COUNT], state[OUTSIDE] = head, count, outside
    state[SEEN] += kept
    return kept > 0
