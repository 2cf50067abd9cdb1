"""Offline gap filling: linear interpolation of each track's box over missed frames.

A track that is lost for a few frames and then found again leaves a gap in
the results; offline (the whole sequence known) those frames can be filled
by linear interpolation between the boxes on either side, which recovers
true positives hidden by short occlusions. Published ablations (ByteTrack,
StrongSORT) report +1 to +2 HOTA from it. Used by
``deepsort-edge track --interpolate N``.

Example:
    >>> from deepsort_edge.io.mot import MOTData
    >>> res = MOTData.from_arrays([1, 4], [7, 7], [[0, 0, 10, 20], [30, 0, 40, 20]])
    >>> filled = interpolate_gaps(res, max_gap=5)
    >>> filled.frames.tolist(), filled.xyxy[:, 0].tolist()
    ([1, 2, 3, 4], [0.0, 10.0, 20.0, 30.0])
"""

from __future__ import annotations

import numpy as np

from ..io.mot import MOTData


def interpolate_gaps(results: MOTData, max_gap: int) -> MOTData:
    """Fill gaps of at most ``max_gap`` missing frames in every track, linearly in tlwh.

    Args:
        results: MOT results (one row per id and frame).
        max_gap: the longest run of missing frames that is filled; longer
            gaps (the track was really gone) stay empty. 0 changes nothing.

    Returns:
        The results with the new rows added (score column 1, as written by
        the tracker), sorted by frame then id.
    """
    if isinstance(max_gap, bool) or not isinstance(max_gap, (int, np.integer)) or max_gap < 0:
        raise ValueError(f"max_gap must be an int >= 0, got {max_gap!r}")
    table = results.table
    if max_gap == 0 or len(results) == 0:
        return results
    order = np.lexsort((table[:, 0], table[:, 1]))  # by id, then frame
    rows = table[order]
    same_track = rows[1:, 1] == rows[:-1, 1]
    step = rows[1:, 0] - rows[:-1, 0]
    gaps = np.flatnonzero(same_track & (step > 1) & (step <= max_gap + 1))
    if gaps.size == 0:
        return results
    added = []
    for g in gaps:
        before, after = rows[g], rows[g + 1]
        frames = np.arange(before[0] + 1, after[0])
        t = ((frames - before[0]) / (after[0] - before[0]))[:, None]
        new = np.repeat(before[None, :], frames.size, axis=0)
        new[:, 0] = frames
        new[:, 2:6] = (1 - t) * before[2:6] + t * after[2:6]
        added.append(new)
    merged = np.concatenate([table, *added])
    return MOTData(merged[np.lexsort((merged[:, 1], merged[:, 0]))])
