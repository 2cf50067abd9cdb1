"""Greedy non-maximum suppression, class-aware, in plain numpy.

Boxes are kept best score first; a box is dropped when its IoU with a kept box
of the same class exceeds ``iou_threshold`` (as ``cv2.dnn.NMSBoxes`` does,
with areas ``w * h``, no +1).

Example:
    >>> import numpy as np
    >>> boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], float)
    >>> nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5, class_ids=np.array([0, 0, 1])).tolist()
    [0, 2]
"""

from __future__ import annotations

import numpy as np

from deepsort_edge.tracking.boxes import iou_matrix

__all__ = ["nms"]


def _greedy(xyxy: np.ndarray, order: np.ndarray, iou_threshold: float, limit: int) -> list[int]:
    keep: list[int] = []
    while order.size and len(keep) < limit:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        iou = iou_matrix(xyxy[best : best + 1], xyxy[rest])[0]
        order = rest[iou <= iou_threshold]
    return keep


def nms(
    xyxy: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    class_ids: np.ndarray | None = None,
    max_detections: int | None = None,
) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, best score first.

    Args:
        xyxy: ``(N, 4)`` boxes ``(x1, y1, x2, y2)``.
        scores: ``(N,)`` scores.
        iou_threshold: boxes overlapping a kept box by more than this are dropped.
        class_ids: ``(N,)`` ints: boxes of different classes never suppress each
            other; ``None``: one class.
        max_detections: keep at most this many (``None``: all).

    Returns:
        ``(K,)`` int64 indices into the inputs, by descending score (ties: lower index first).
    """
    boxes = np.asarray(xyxy, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"xyxy must be (N, 4), got shape {boxes.shape}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"scores must be ({boxes.shape[0]},), got shape {scores.shape}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold!r}")
    limit = boxes.shape[0] if max_detections is None else int(max_detections)
    if limit < 0:
        raise ValueError(f"max_detections must be >= 0 or None, got {max_detections!r}")
    if boxes.shape[0] == 0 or limit == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    if class_ids is None:
        return np.asarray(_greedy(boxes, order, iou_threshold, limit), dtype=np.int64)
    classes = np.asarray(class_ids)
    if classes.shape != scores.shape:
        raise ValueError(f"class_ids must be ({boxes.shape[0]},), got shape {classes.shape}")
    kept: list[int] = []
    for value in np.unique(classes):
        of_class = order[classes[order] == value]
        kept.extend(_greedy(boxes, of_class, iou_threshold, limit))
    keep = np.sort(np.asarray(kept, dtype=np.int64))
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return keep[:limit]
