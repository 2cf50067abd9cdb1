"""Box format conversions.

Formats, each a float array of shape ``(N, 4)``:

- ``xyxy``: left, top, right, bottom (supervision's format).
- ``tlwh``: left, top, width, height (MOTChallenge files).
- ``xyah``: centre x, centre y, aspect ratio ``w / h``, height (the Kalman
  filter's measurement space, as in the DeepSORT paper).
"""

from __future__ import annotations

import numpy as np


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    """Convert ``(N, 4)`` xyxy boxes to xyah (float64)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    xyah = np.empty_like(xyxy)
    np.subtract(xyxy[:, 3], xyxy[:, 1], out=xyah[:, 3])
    np.subtract(xyxy[:, 2], xyxy[:, 0], out=xyah[:, 2])  # width, for now
    xyah[:, 0] = xyxy[:, 0] + 0.5 * xyah[:, 2]
    xyah[:, 1] = xyxy[:, 1] + 0.5 * xyah[:, 3]
    xyah[:, 2] /= xyah[:, 3]
    return xyah


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """Convert ``(N, 4)`` xyah boxes to xyxy (float64)."""
    xyah = np.asarray(xyah, dtype=np.float64).reshape(-1, 4)
    height = xyah[:, 3]
    width = xyah[:, 2] * height
    left = xyah[:, 0] - width / 2
    top = xyah[:, 1] - height / 2
    return np.stack([left, top, left + width, top + height], axis=1)


def tlwh_to_xyxy(tlwh: np.ndarray) -> np.ndarray:
    """Convert ``(N, 4)`` tlwh boxes to xyxy (float64)."""
    tlwh = np.asarray(tlwh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]], axis=1)


def xyxy_to_tlwh(xyxy: np.ndarray) -> np.ndarray:
    """Convert ``(N, 4)`` xyxy boxes to tlwh (float64)."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 4)`` against ``(M, 4)`` xyxy boxes, ``(N, M)`` (0 where the union is empty).

    The one IoU of the Python side (evaluation, NMS, quantisation checks);
    the kernels' per-pair IoU is ``kernels/boxes.py``.

    Example:
        >>> iou_matrix(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2], [5, 5, 6, 6]])).round(3)
        array([[0.333, 0.   ]])
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
