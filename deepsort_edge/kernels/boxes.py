"""Box kernels: IoU of two xyxy boxes."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def iou(a: tuple, b: tuple) -> float:
    """Intersection over union of two xyxy boxes given as 4-tuples (0 when disjoint or degenerate).

    Tuples, not arrays: arrays handed to a helper in a per-pair loop cost atomic reference counting.
    """
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0.0 or ih <= 0.0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0.0 else 0.0
