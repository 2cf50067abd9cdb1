"""Per-row checks of one frame's detections, in one pass each (validation's hot part).

``row_problems`` sets one bit per problem of a box row; ``unit_rows``
normalises embeddings with float64 sums (squares of very large or tiny
float32 entries stay finite and non-zero) and flags rows that cannot be.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel

NOT_FINITE = 1
BEYOND_RANGE = 2
EMPTY_BOX = 4
BAD_SCORE = 8
OUTSIDE_FRAME = 16
BAD_EMBEDDING = 32


@kernel
def row_problems(
    boxes: np.ndarray, scores: np.ndarray, width: float, height: float, limit: float, out: np.ndarray
) -> bool:
    """Write each row's problem bits into ``out (N,)`` uint8; True when no row has any.

    ``width``/``height`` <= 0 means no frame (nothing is outside it). A box
    is outside the frame only when it is otherwise valid.
    """
    clean = True
    for i in range(boxes.shape[0]):
        bits = 0
        finite = True
        inside_range = True
        for k in range(4):
            v = boxes[i, k]
            if not np.isfinite(v):
                finite = False
            elif abs(v) > limit:
                inside_range = False
        if not finite:
            bits |= NOT_FINITE
        elif not inside_range:
            bits |= BEYOND_RANGE
        elif not (boxes[i, 2] > boxes[i, 0] and boxes[i, 3] > boxes[i, 1]):
            bits |= EMPTY_BOX
        elif width > 0.0 and not (
            boxes[i, 2] > 0.0 and boxes[i, 3] > 0.0 and boxes[i, 0] < width and boxes[i, 1] < height
        ):
            bits |= OUTSIDE_FRAME
        if not np.isfinite(scores[i]):
            bits |= BAD_SCORE
        out[i] = bits
        if bits:
            clean = False
    return clean


@kernel(fastmath=True)
def unit_rows(embeddings: np.ndarray, out: np.ndarray, problems: np.ndarray) -> bool:
    """L2-normalise float32 rows into ``out``; set ``BAD_EMBEDDING`` in ``problems`` where impossible.

    Returns True when every row could be normalised.
    """
    clean = True
    for i in range(embeddings.shape[0]):
        total = 0.0
        for k in range(embeddings.shape[1]):
            v = np.float64(embeddings[i, k])
            total += v * v
        if not (np.isfinite(total) and total > 0.0):
            problems[i] |= BAD_EMBEDDING
            clean = False
            continue
        scale = 1.0 / np.sqrt(total)
        for k in range(embeddings.shape[1]):
            out[i, k] = np.float32(embeddings[i, k] * scale)
    return clean
