"""The matching cascade of DeepSORT: assignment by time since update.

Tracks seen more recently get first pick of the detections: level ``k``
solves an assignment between the tracks missed for exactly ``k`` frames and
the detections no earlier level took. The cost comes as sparse rows (see
``costs``); each level solves only its own rows' entries on the columns
still free, renumbered so the level sees exactly the sub-matrix a dense
cascade would.
"""

from __future__ import annotations

import numpy as np

from .costs import ASSIGNMENT_LIMIT
from .jit import kernel
from .lap import solve_sparse


@kernel
def matching_cascade(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int, levels: np.ndarray, max_level: int
) -> np.ndarray:
    """Return ``row_to_col (T,)`` for the CSR cost ``(T, n_cols)``; -1 where a track stays unmatched.

    ``levels (T,)`` holds each track's frames since its last update; levels
    outside ``1..max_level`` never match. Passing the same level for every
    track turns the cascade into one global assignment.
    """
    n_tracks = indptr.shape[0] - 1
    row_to_col = np.full(n_tracks, -1, dtype=np.intp)
    col_taken = np.zeros(n_cols, dtype=np.bool_)
    rank = np.empty(n_cols, dtype=np.intp)
    free_cols = np.empty(n_cols, dtype=np.intp)
    rows = np.empty(n_tracks, dtype=np.intp)
    n_free = n_cols
    # Levels present, so that a long max_age with few levels in use costs nothing.
    present = np.zeros(max_level + 1, dtype=np.bool_)
    for t in range(n_tracks):
        if 1 <= levels[t] <= max_level:
            present[levels[t]] = True
    for level in range(1, max_level + 1):
        if n_free == 0:
            break
        if not present[level]:
            continue
        n_rows = 0
        n_entries = 0
        for t in range(n_tracks):
            if levels[t] == level:
                rows[n_rows] = t
                n_rows += 1
                n_entries += indptr[t + 1] - indptr[t]
        f = 0
        for j in range(n_cols):
            if not col_taken[j]:
                rank[j] = f
                free_cols[f] = j
                f += 1
        sub_ptr = np.zeros(n_rows + 1, np.intp)
        sub_idx = np.empty(n_entries, np.intp)
        sub_val = np.empty(n_entries)
        e = 0
        for i in range(n_rows):
            t = rows[i]
            for k in range(indptr[t], indptr[t + 1]):
                j = indices[k]
                if not col_taken[j]:
                    sub_idx[e] = rank[j]
                    sub_val[e] = values[k]
                    e += 1
            sub_ptr[i + 1] = e
        sub_row_to_col, _ = solve_sparse(sub_ptr, sub_idx, sub_val, n_free, ASSIGNMENT_LIMIT)
        for i in range(n_rows):
            j = sub_row_to_col[i]
            if j >= 0:
                col = free_cols[j]
                row_to_col[rows[i]] = col
                col_taken[col] = True
                n_free -= 1
    return row_to_col
