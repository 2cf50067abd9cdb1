"""The matching cascade of DeepSORT: assignment by time since update.

Tracks seen more recently get first pick of the detections: level ``k``
solves an assignment between the tracks missed for exactly ``k`` frames and
the detections no earlier level took. Run as one kernel so a frame with many
levels costs one call, not one per level.
"""

from __future__ import annotations

import numba
import numpy as np

from .costs import ASSIGNMENT_LIMIT
from .lap import solve_assignment


@numba.njit(cache=True, nogil=True)
def matching_cascade(cost: np.ndarray, levels: np.ndarray, max_level: int) -> np.ndarray:
    """Return ``row_to_col (T,)`` for ``cost (T, N)``; -1 where a track stays unmatched.

    ``levels (T,)`` holds each track's frames since its last update; levels
    outside ``1..max_level`` never match. Passing the same level for every
    track turns the cascade into one global assignment.
    """
    n_tracks, n_dets = cost.shape
    row_to_col = np.full(n_tracks, -1, dtype=np.intp)
    col_taken = np.zeros(n_dets, dtype=np.bool_)
    rows = np.empty(n_tracks, dtype=np.intp)
    cols = np.empty(n_dets, dtype=np.intp)
    n_free_cols = n_dets
    for level in range(1, max_level + 1):
        if n_free_cols == 0:
            break
        n_rows = 0
        for t in range(n_tracks):
            if levels[t] == level:
                rows[n_rows] = t
                n_rows += 1
        if n_rows == 0:
            continue
        n_cols = 0
        for n in range(n_dets):
            if not col_taken[n]:
                cols[n_cols] = n
                n_cols += 1
        sub = np.empty((n_rows, n_cols))
        for i in range(n_rows):
            for j in range(n_cols):
                sub[i, j] = cost[rows[i], cols[j]]
        sub_row_to_col, _ = solve_assignment(sub, ASSIGNMENT_LIMIT)
        for i in range(n_rows):
            j = sub_row_to_col[i]
            if j >= 0:
                row_to_col[rows[i]] = cols[j]
                col_taken[cols[j]] = True
                n_free_cols -= 1
    return row_to_col
