"""Box kernels: IoU of two xyxy boxes, xyxy rows to xyah."""

from __future__ import annotations

import numpy as np

from .jit import kernel


@kernel(inline=True)
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


@kernel
def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    """Measurements ``(N, 4)`` xyah of xyxy rows (the same arithmetic as ``deepsort_edge.tracking.boxes.xyxy_to_xyah``)."""
    out = np.empty((xyxy.shape[0], 4))
    for n in range(xyxy.shape[0]):
        h = xyxy[n, 3] - xyxy[n, 1]
        w = xyxy[n, 2] - xyxy[n, 0]
        out[n, 0] = xyxy[n, 0] + 0.5 * w
        out[n, 1] = xyxy[n, 1] + 0.5 * h
        out[n, 2] = w / h
        out[n, 3] = h
    return out
