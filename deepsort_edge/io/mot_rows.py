"""The MOTChallenge row layout: ten columns, the frame limit, the format error, rows as text.

Every MOTChallenge text file holds one box per line::

    frame, id, left, top, width, height, score_or_flag, x/class, y/visibility, z

Shared by the reader (:mod:`deepsort_edge.io.mot`), the streaming writer
(:mod:`deepsort_edge.io.mot_writer`) and the sequence folders
(:mod:`deepsort_edge.io.sequences`).

Example:
    >>> import numpy as np
    >>> print(format_rows(np.array([[1, 7, 10, 20, 30, 60, 0.9, -1, -1, -1]])), end="")
    1,7,10.00,20.00,30.00,60.00,0.9,-1,-1,-1
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_FRAME", "NUM_COLUMNS", "MOTFormatError", "format_rows"]

# Files are padded to this many columns so that class/visibility are always there.
NUM_COLUMNS = 10
# Largest frame number accepted: 10 million frames is 3.8 days at 30 fps. A
# larger one is a broken file, and a tracker would have to step through every
# frame before it.
MAX_FRAME = 10_000_000


class MOTFormatError(ValueError):
    """A MOTChallenge text file that cannot be parsed (names the file and line)."""


def format_rows(table: np.ndarray) -> str:
    """``(N, 10)`` rows as MOTChallenge text, one line each (boxes with 2 decimals, scores with 4 digits)."""
    lines = []
    for row in table:
        lines.append(
            f"{int(row[0])},{int(row[1])},{row[2]:.2f},{row[3]:.2f},{row[4]:.2f},{row[5]:.2f},"
            f"{row[6]:.4g},{row[7]:.6g},{row[8]:.6g},{row[9]:.6g}\n"
        )
    return "".join(lines)
