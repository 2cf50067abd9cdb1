"""A saved scene adapter (``SceneAdapter.state_dict()``): its layout and its check.

A state file may come from a stranger, so :func:`check_adaptation_state`
trusts none of it: every number's type and range, every array's shape (from
those numbers), dtype and values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .evidence_pairs import PAIR_CAPACITY

# A saved adapter: these arrays, with (rows, columns) from its numbers: "C" pairs, "W" width,
# "N" tracks with a running average, "K" projection columns, "P" the running scatter's basis
# (0 before the first projection refit).
STATE_ARRAYS: dict[str, tuple[str, ...]] = {
    "same_a": ("C", "W"), "same_b": ("C", "W"), "different_a": ("C", "W"), "different_b": ("C", "W"),
    "same_keys": ("C",), "different_keys": ("C",),
    "average_ids": ("N",), "averages": ("N", "W"), "snapshots": ("N", "W"), "snapshot_frames": ("N",),
    "mean": ("W",), "weights": ("W", "K"),
    "basis": ("W", "P"), "scatter_mean": ("W",), "within": ("P", "P"), "between": ("P", "P"),
}
SCATTER_ARRAYS = ("basis", "scatter_mean", "within", "between")  # float64: the running sums stay exact
INTEGER_ARRAYS = ("same_keys", "different_keys", "average_ids", "snapshot_frames")
SCATTER_WEIGHTS = ("mean_weight", "within_weight", "between_weight")
STATE_NUMBERS = ("frames", "threshold", "same_total", "different_total", "width", "dims", "basis_dims",
                 *SCATTER_WEIGHTS)


def check_adaptation_state(state: object, embedding_dim: int) -> dict[str, Any]:
    """Check a :meth:`SceneAdapter.state_dict` from an untrusted source; ValueError naming the first bad field.

    Shapes must agree with the numbers (and the width with ``embedding_dim``,
    or be 0 before any evidence); stored features must be finite with norms
    at most 1 (unit rows, or zero rows of unfilled slots); ids positive and
    distinct; the threshold -1 (not calibrated) or in [0, 2].
    """
    if not isinstance(state, dict) or set(state) != {"numbers", "arrays"}:
        raise ValueError("state field 'adaptation' must hold 'numbers' and 'arrays'")
    numbers, arrays = state["numbers"], state["arrays"]
    if not isinstance(numbers, dict) or set(numbers) != set(STATE_NUMBERS):
        raise ValueError(f"state field 'adaptation.numbers' must hold exactly {list(STATE_NUMBERS)}")
    if not isinstance(arrays, dict) or set(arrays) != set(STATE_ARRAYS):
        raise ValueError(f"state field 'adaptation.arrays' must hold exactly {list(STATE_ARRAYS)}")
    checked: dict[str, Any] = {}
    for name in STATE_NUMBERS:
        value = numbers[name]
        if name == "threshold":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
                value == -1 or 0 <= value <= 2
            ):
                raise ValueError(f"state field 'adaptation.threshold' must be -1 or in [0, 2], got {value!r}")
            checked[name] = float(value)
        elif name in SCATTER_WEIGHTS:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
                0 <= value < 2**62
            ):
                raise ValueError(f"state field 'adaptation.{name}' must be a number in [0, 2**62), got {value!r}")
            checked[name] = float(value)
        elif isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**62:
            raise ValueError(f"state field 'adaptation.{name}' must be an integer in [0, 2**62), got {value!r}")
        else:
            checked[name] = int(value)
    width, dims, basis_dims = checked["width"], checked["dims"], checked["basis_dims"]
    if width not in (0, embedding_dim) or max(dims, basis_dims) > width:
        raise ValueError(
            f"state field 'adaptation.width' must be 0 or embedding_dim ({embedding_dim}) and at least dims and "
            f"basis_dims, got {width} (dims {dims}, basis_dims {basis_dims})"
        )
    sizes = {"C": PAIR_CAPACITY, "W": width, "K": dims, "P": basis_dims}
    out: dict[str, np.ndarray] = {}
    for name, axes in STATE_ARRAYS.items():
        try:
            array = np.asarray(arrays[name])
        except Exception:
            raise ValueError(f"state field 'adaptation.{name}' is not a rectangular array") from None
        if name == "average_ids":
            sizes["N"] = array.shape[0] if array.ndim == 1 else -1
        expected = tuple(sizes[a] for a in axes)
        integers = name in INTEGER_ARRAYS
        if array.shape != expected or array.dtype.kind not in ("iu" if integers else "iuf"):
            raise ValueError(f"state field 'adaptation.{name}' has shape {array.shape} and dtype {array.dtype}, "
                             f"expected shape {expected} of {'integers' if integers else 'numbers'}")
        if name == "average_ids":
            if (array <= 0).any() or np.unique(array).size != array.size:
                raise ValueError("state field 'adaptation.average_ids' must hold distinct positive track ids")
            if (np.diff(array) <= 0).any():
                raise ValueError("state field 'adaptation.average_ids' must be ascending")
        if integers:
            if (array < 0).any() or (name == "snapshot_frames" and (array > checked["frames"]).any()):
                raise ValueError(f"state field 'adaptation.{name}' must hold integers in [0, frames]"
                                 if name == "snapshot_frames" else
                                 f"state field 'adaptation.{name}' must hold track ids (integers >= 0)")
            out[name] = array.astype(np.int64)
            continue
        array = array.astype(np.float64 if name in SCATTER_ARRAYS else np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"state field 'adaptation.{name}' must be finite")
        if len(axes) == 2 and axes[0] in "CN" and (np.linalg.norm(array, axis=1) > 1 + 1e-3).any():
            raise ValueError(f"state field 'adaptation.{name}' rows must have norm at most 1")
        out[name] = array
    if max(checked["same_total"], checked["different_total"]) and width == 0:
        raise ValueError("state field 'adaptation.width' is 0, but evidence was recorded")
    return {"numbers": checked, "arrays": out}
