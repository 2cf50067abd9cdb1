"""Occlusion between a frame's detections: how much of each box other boxes cover.

A crop that another person covers shows part of that person too, so its
embedding is a blend of two identities; teaching it to a track drags the
track's appearance towards its neighbour. ``covered`` measures this per
detection so that such crops can be kept out of the appearance update.
"""

from __future__ import annotations

import numpy as np

from .costs import window
from .jit import kernel


@kernel
def covered(boxes: np.ndarray, by_x: np.ndarray, xs: np.ndarray, half_width: float) -> np.ndarray:
    """``(N,)`` largest fraction of each xyxy box's area inside one other box of ``boxes``.

    ``by_x``/``xs`` sort the boxes by centre x (``costs.sort_by_x`` on xyah
    rows) and ``half_width`` is the largest half width, so only boxes whose
    centres are close enough to overlap are visited.

    Example: two 10x10 boxes shifted by 5 px cover half of each other (0.5 each).
    """
    n = boxes.shape[0]
    out = np.zeros(n)
    for i in range(n):
        ax1, ay1, ax2, ay2 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        area = (ax2 - ax1) * (ay2 - ay1)
        if area <= 0.0:
            continue
        start, stop = window(xs, ax1 - half_width, ax2 + half_width)
        for p in range(start, stop):
            j = by_x[p]
            if j == i:
                continue
            iw = min(ax2, boxes[j, 2]) - max(ax1, boxes[j, 0])
            ih = min(ay2, boxes[j, 3]) - max(ay1, boxes[j, 1])
            if iw > 0.0 and ih > 0.0:
                out[i] = max(out[i], iw * ih / area)
    return out
