"""Gathering rows and entries by index or mask, in plain loops (the frame kernel's bookkeeping).

Plain loops over 1-d ``intp``/``bool`` arrays and C-contiguous 2-d ones:
they compile in a fraction of the time numpy's fancy indexing takes inside
Numba, and a frame holds at most a few thousand rows.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel


@kernel
def select(mask: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``items[mask]`` for 1-d intp arrays (order kept)."""
    count = 0
    for i in range(mask.shape[0]):
        if mask[i]:
            count += 1
    out = np.empty(count, np.intp)
    k = 0
    for i in range(mask.shape[0]):
        if mask[i]:
            out[k] = items[i]
            k += 1
    return out


@kernel
def flatnonzero(mask: np.ndarray) -> np.ndarray:
    """Indices where ``mask`` is True (``np.flatnonzero``)."""
    return select(mask, np.arange(mask.shape[0]))


@kernel
def take_rows(rows: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``source[rows]`` for a 2-d array, C-contiguous."""
    out = np.empty((rows.shape[0], source.shape[1]), source.dtype)
    for i in range(rows.shape[0]):
        for k in range(source.shape[1]):
            out[i, k] = source[rows[i], k]
    return out


@kernel
def take(rows: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``source[rows]`` for a 1-d array."""
    out = np.empty(rows.shape[0], source.dtype)
    for i in range(rows.shape[0]):
        out[i] = source[rows[i]]
    return out


@kernel
def concatenate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` then ``b`` (1-d intp)."""
    out = np.empty(a.shape[0] + b.shape[0], np.intp)
    for i in range(a.shape[0]):
        out[i] = a[i]
    for i in range(b.shape[0]):
        out[a.shape[0] + i] = b[i]
    return out
