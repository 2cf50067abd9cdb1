"""Raw detector outputs -> boxes, scores and classes, one function per output layout.

Every decoder returns ``(xyxy, scores, class_ids)``: ``(N, 4)`` float64 boxes
in model-input pixels, ``(N,)`` float64 scores and ``(N,)`` int64 classes,
one row per candidate (before the score threshold and NMS). The layouts:

==============  =======================  ==============================================
layout          output(s)                rows
==============  =======================  ==============================================
``yolov5``      ``[1, N, 5 + C]``        cx, cy, w, h, objectness, C class scores
``yolov8``      ``[1, 4 + C, N]``        cx, cy, w, h, C class scores (YOLOv8/11, transposed)
``end2end``     ``[1, N, 6]``            x1, y1, x2, y2, score, class (NMS-free exports)
``yolox``       ``[1, N, 5 + C]``        as yolov5; raw grid offsets + log sizes unless decoded
``detr``        ``[1, Q, 4]``,           normalised cx, cy, w, h; class logits
                ``[1, Q, C]``            (sigmoid: RT-DETR, D-FINE, RF-DETR; softmax: DETR)
==============  =======================  ==============================================

:func:`guess_layout` tells them apart from the output shapes (and the
ultralytics metadata); YOLOv5 and YOLOX share a shape and differ in the row
count: YOLOv5 has three anchors per grid cell, YOLOX one.

Example:
    >>> import numpy as np
    >>> raw = np.array([[[50.0, 40.0, 20.0, 10.0, 0.9, 0.1]]])  # one row, one class
    >>> decode_yolov5(raw)[0].tolist()
    [[40.0, 35.0, 60.0, 45.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "LAYOUTS",
    "Decoded",
    "decode_detr",
    "decode_end2end",
    "decode_yolov5",
    "decode_yolov8",
    "decode_yolox",
    "grid_cells",
    "guess_layout",
]

LAYOUTS = ("yolov5", "yolov8", "end2end", "yolox", "detr")
#: Strides of the three YOLO heads (P3-P5).
DEFAULT_STRIDES = (8, 16, 32)

Decoded = tuple[np.ndarray, np.ndarray, np.ndarray]


def _rows(output: np.ndarray, name: str, width: int | None = None) -> np.ndarray:
    """A ``[1, N, K]`` (or ``[N, K]``) output as ``(N, K)`` float64."""
    array = np.asarray(output, dtype=np.float64)
    if array.ndim == 3:
        if array.shape[0] != 1:
            raise ValueError(f"{name}: expected batch size 1, got output shape {array.shape}")
        array = array[0]
    if array.ndim != 2 or (width is not None and array.shape[1] != width):
        want = f"[1, N, {width}]" if width is not None else "[1, N, K]"
        raise ValueError(f"{name}: expected output {want}, got shape {np.shape(output)}")
    return array


def _cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] / 2.0
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def _best_class(class_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if class_scores.shape[1] == 0:
        raise ValueError("the output has no class columns")
    ids = class_scores.argmax(axis=1)
    return class_scores[np.arange(class_scores.shape[0]), ids], ids.astype(np.int64)


def decode_yolov5(output: np.ndarray) -> Decoded:
    """``[1, N, 5 + C]``: centre boxes, objectness, class scores; score = objectness x best class."""
    rows = _rows(output, "yolov5")
    if rows.shape[1] < 6:
        raise ValueError(f"yolov5: expected [1, N, 5 + C] with C >= 1, got shape {np.shape(output)}")
    best, ids = _best_class(rows[:, 5:])
    return _cxcywh_to_xyxy(rows[:, :4]), rows[:, 4] * best, ids


def decode_yolov8(output: np.ndarray) -> Decoded:
    """``[1, 4 + C, N]``: centre boxes and class scores, one column per candidate."""
    array = np.asarray(output, dtype=np.float64)
    if array.ndim != 3 or array.shape[0] != 1 or array.shape[1] < 5:
        raise ValueError(f"yolov8: expected output [1, 4 + C, N] with C >= 1, got shape {array.shape}")
    rows = array[0].T
    best, ids = _best_class(rows[:, 4:])
    return _cxcywh_to_xyxy(rows[:, :4]), best, ids


def decode_end2end(output: np.ndarray) -> Decoded:
    """``[1, N, 6]``: corner boxes, score, class (already suppressed by the model)."""
    rows = _rows(output, "end2end", 6)
    return rows[:, :4].copy(), rows[:, 4].copy(), np.rint(rows[:, 5]).astype(np.int64)


def grid_cells(input_size: tuple[int, int], strides: Sequence[int] = DEFAULT_STRIDES) -> np.ndarray:
    """``(N, 3)`` rows ``(x, y, stride)`` of every head cell, head by head, row-major within a head.

    This is the order YOLOX (and the YOLOv8 family) flatten their heads in.

    Example:
        >>> grid_cells((64, 32), strides=(32,)).tolist()
        [[0.0, 0.0, 32.0], [0.0, 1.0, 32.0]]
    """
    height, width = input_size
    parts = []
    for stride in strides:
        ys, xs = np.mgrid[0 : height // stride, 0 : width // stride]
        parts.append(np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, stride)], axis=1))
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 3))


def decode_yolox(
    output: np.ndarray,
    input_size: tuple[int, int],
    decoded: bool = False,
    strides: Sequence[int] = DEFAULT_STRIDES,
) -> Decoded:
    """``[1, N, 5 + C]`` of YOLOX: as yolov5, after grid decoding unless the export did it.

    YOLOX's ONNX export leaves the head raw by default (``--decode_in_inference``
    off): ``x = (tx + grid_x) * stride``, ``w = exp(tw) * stride``.
    """
    rows = _rows(output, "yolox")
    if rows.shape[1] < 6:
        raise ValueError(f"yolox: expected [1, N, 5 + C] with C >= 1, got shape {np.shape(output)}")
    if not decoded:
        cells = grid_cells(input_size, strides)
        if cells.shape[0] != rows.shape[0]:
            raise ValueError(
                f"yolox: {rows.shape[0]} rows but strides {tuple(strides)} on a {input_size[0]}x{input_size[1]} "
                f"input give {cells.shape[0]} cells (pass strides=, or decoded=True if the export decoded)"
            )
        rows = rows.copy()
        rows[:, :2] = (rows[:, :2] + cells[:, :2]) * cells[:, 2:3]
        rows[:, 2:4] = np.exp(rows[:, 2:4]) * cells[:, 2:3]
    return decode_yolov5(rows)


def decode_detr(
    boxes: np.ndarray, logits: np.ndarray, input_size: tuple[int, int], activation: str = "sigmoid"
) -> Decoded:
    """``[1, Q, 4]`` normalised centre boxes + ``[1, Q, C]`` logits (DETR family).

    Args:
        activation: ``"sigmoid"`` (RT-DETR, D-FINE, RF-DETR: independent class
            scores) or ``"softmax"`` (DETR: the last class is "no object" and
            is never reported).
    """
    box_rows = _rows(boxes, "detr boxes", 4)
    logit_rows = _rows(logits, "detr logits")
    if logit_rows.shape[0] != box_rows.shape[0]:
        raise ValueError(f"detr: {box_rows.shape[0]} boxes but {logit_rows.shape[0]} logit rows")
    if activation == "sigmoid":
        probabilities = 1.0 / (1.0 + np.exp(-logit_rows))
    elif activation == "softmax":
        shifted = np.exp(logit_rows - logit_rows.max(axis=1, keepdims=True))
        probabilities = (shifted / shifted.sum(axis=1, keepdims=True))[:, :-1]
    else:
        raise ValueError(f"activation must be 'sigmoid' or 'softmax', got {activation!r}")
    best, ids = _best_class(probabilities)
    height, width = input_size
    xyxy = _cxcywh_to_xyxy(box_rows) * np.array([width, height, width, height], dtype=np.float64)
    return xyxy, best, ids


def guess_layout(
    output_shapes: Sequence[Sequence[int]],
    input_size: tuple[int, int],
    metadata: Mapping[str, str] | None = None,
    strides: Sequence[int] = DEFAULT_STRIDES,
) -> str:
    """The layout of a detector from its output shapes (concrete ints) and metadata.

    Raises:
        ValueError: the shapes fit no layout, or fit several equally (name
            the layout with ``layout=``).

    Example:
        >>> guess_layout([[1, 84, 8400]], (640, 640))
        'yolov8'
        >>> guess_layout([[1, 25200, 85]], (640, 640))
        'yolov5'
    """
    metadata = metadata or {}
    shapes = [tuple(int(d) for d in shape) for shape in output_shapes]
    hint = "; name it with layout= (--detector-layout on the command line): one of " + ", ".join(LAYOUTS)
    if len(shapes) == 2 and all(len(s) == 3 for s in shapes):
        boxes = [i for i, s in enumerate(shapes) if s[2] == 4]
        if len(boxes) >= 1 and shapes[0][1] == shapes[1][1]:
            return "detr"
    if len(shapes) >= 1 and len(shapes[0]) == 3 and shapes[0][0] == 1:
        _, rows, width = shapes[0]
        cells = grid_cells(input_size, strides).shape[0]
        if str(metadata.get("end2end", "")).lower() == "true" and width == 6:
            return "end2end"
        if rows < width:  # [1, 4 + C, N]: the candidates run along the last axis
            return "yolov8"
        if width == 6 and rows not in (cells, 3 * cells):
            return "end2end"  # a one-class YOLOv5/YOLOX also has 6 columns, but one or three rows per cell
        if width >= 6:
            return "yolox" if rows == cells and "stride" not in metadata else "yolov5"
    raise ValueError(f"cannot tell the detector's output layout from output shapes {shapes}{hint}")
