"""Checks of a saved tracker state's track arrays: types, shapes and the tracker's invariants.

A state may come from anywhere, and the kernels index galleries with
``gallery_head`` and ``gallery_count`` without bounds checks, so every track
array is checked for dtype kind, shape and range, and for the invariants the
tracker itself keeps (id order, ring-buffer heads, finite positive-definite
covariances, unit-norm gallery rows) before a state is loaded.
:func:`deepsort_edge.tracking.state.check_state` calls
:func:`check_track_arrays` once the state's header is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .tracks import CONFIRMED, TENTATIVE, TRACK_FIELDS

_INT32_MAX = 2**31 - 1
# Largest magnitude of a mean entry and of a covariance entry: far beyond any
# real track (pixels, pixels squared), small enough that predicting and
# updating for millions of frames stays finite.
MAX_MEAN_MAGNITUDE = 1e30
MAX_COVARIANCE_MAGNITUDE = 1e60
# Gallery rows must have unit norm (or be all zero) to this tolerance.
_NORM_TOLERANCE = 1e-3
# Relative asymmetry allowed in a covariance (the filter keeps them symmetric).
_SYMMETRY_TOLERANCE = 1e-9
# Most live tracks a state may hold (a real scene holds hundreds).
MAX_TRACKS = 2**20


def _array(name: str, value: object, count: int | None, shape: tuple[int, ...], integer: bool) -> np.ndarray:
    """``value`` as an array of trailing ``shape`` (and ``count`` rows), dtype kind checked."""
    field = f"tracks.{name}"
    try:
        array = np.asarray(value)
    except Exception:  # ragged lists and the like
        raise ValueError(f"state field {field!r} is not a rectangular array") from None
    if array.size == 0 and count in (None, 0):
        return np.zeros((0, *shape), dtype=np.int64 if integer else np.float64)  # no tracks ([] from JSON)
    kinds = "iu" if integer else "iuf"
    if array.dtype.kind not in kinds:
        wanted = "integers" if integer else "real numbers"
        raise ValueError(f"state field {field!r} must hold {wanted}, got dtype {array.dtype}")
    expected = (array.shape[0] if count is None else count, *shape)
    if array.ndim != len(expected) or array.shape != expected:
        raise ValueError(f"state field {field!r} has shape {array.shape}, expected {expected}")
    return array


def check_track_arrays(
    raw: Mapping[str, object], gallery_size: int, embedding_dim: int, frame_count: int, next_id: int
) -> dict[str, np.ndarray]:
    """Check a saved state's track arrays and cast them to the tracker's dtypes.

    Args:
        raw: One array (or nested list) per name of
            :data:`~deepsort_edge.tracking.tracks.TRACK_FIELDS` plus ``gallery``;
            the caller has checked that exactly those names are present.
        gallery_size: Gallery rows per track (``nn_budget`` in gallery mode, else 1).
        embedding_dim: Embedding dimension the state declares (0: none yet).
        frame_count: Frames tracked so far (bounds ``age``).
        next_id: The id the next confirmed track gets (bounds ``track_id``).

    Returns:
        The arrays with the tracker's dtypes, ``gallery`` rows past
        ``gallery_count`` zeroed.

    Raises:
        ValueError: The first problem found, naming the field and track rows.

    Example:
        >>> import numpy as np
        >>> from deepsort_edge.tracking.tracks import TRACK_FIELDS
        >>> empty = {name: np.zeros((0, *shape)) for name, (_, shape) in TRACK_FIELDS.items()}
        >>> empty["gallery"] = np.zeros((0, 1, 0))
        >>> check_track_arrays(empty, 1, 0, 0, 1)["mean"].shape
        (0, 8)
    """

    mean = _array("mean", raw["mean"], None, (8,), integer=False)
    count = int(mean.shape[0])
    if count > MAX_TRACKS:
        raise ValueError(f"state field 'tracks' holds {count} tracks, more than the limit of {MAX_TRACKS}")
    arrays = {"mean": mean}
    for name, (dtype, shape) in TRACK_FIELDS.items():
        if name != "mean":
            arrays[name] = _array(name, raw[name], count, shape, integer=np.issubdtype(dtype, np.integer))
    arrays["gallery"] = _array("gallery", raw["gallery"], count, (gallery_size, embedding_dim), integer=False)

    def fail(name: str, bad: np.ndarray, rule: str) -> None:
        rows = np.flatnonzero(bad)
        if rows.size:
            values = arrays[name][rows[:3]].tolist() if arrays[name].ndim == 1 else None
            shown = f" (values {values})" if values is not None else ""
            raise ValueError(
                f"state field 'tracks.{name}' at track row(s) {rows[:5].tolist()}{shown}: {rule}"
            )

    def within(name: str, low: Any, high: Any, rule: str) -> None:
        value = arrays[name]
        fail(name, (value < low) | (value > high), rule)

    # Integer fields first, compared as given (before any cast could wrap them).
    state = arrays["state"]
    fail("state", (state != TENTATIVE) & (state != CONFIRMED),
         f"unknown state code (known: {TENTATIVE} tentative, {CONFIRMED} confirmed)")
    confirmed = state == CONFIRMED
    ids = arrays["track_id"]
    fail("track_id", ~confirmed & (ids != 0), "a tentative track has id 0")
    fail("track_id", confirmed & ((ids < 1) | (ids >= next_id)), f"a confirmed id must be in [1, next_id={next_id})")
    confirmed_ids = ids[confirmed]
    if np.unique(confirmed_ids).size != confirmed_ids.size:
        values, counts = np.unique(confirmed_ids, return_counts=True)
        raise ValueError(f"state field 'tracks.track_id' repeats id(s) {values[counts > 1][:5].tolist()}")
    within("age", 1, min(frame_count, _INT32_MAX), f"age must be in [1, frame_count={frame_count}]")
    within("hits", 1, _INT32_MAX, "hits must be >= 1")
    fail("hits", arrays["hits"] > arrays["age"], "hits must not exceed age")
    within("time_since_update", 0, _INT32_MAX, "time_since_update must be >= 0")
    fail("time_since_update", arrays["time_since_update"] >= arrays["age"], "time_since_update must be < age")

    counts, heads = arrays["gallery_count"], arrays["gallery_head"]
    within("gallery_count", 0, gallery_size if embedding_dim else 0,
           f"gallery_count must be in [0, {gallery_size if embedding_dim else 0}] "
           f"(gallery size {gallery_size}, embedding_dim {embedding_dim})")
    within("gallery_head", 0, gallery_size - 1, f"gallery_head must be in [0, {gallery_size - 1}]")
    # The ring buffer fills rows 0, 1, ... in turn, so until it is full the
    # head is the count; EMA mode (one row) never moves it.
    fail("gallery_head", (counts < gallery_size) & (heads != counts),
         "gallery_head must equal gallery_count until the gallery is full")

    with np.errstate(all="ignore"):  # out-of-range floats become inf and fail below
        out = {name: arrays[name].astype(dtype) for name, (dtype, _) in TRACK_FIELDS.items()}
        gallery = arrays["gallery"].astype(np.float32)

    mean = out["mean"]
    fail("mean", ~np.isfinite(mean).all(axis=1), "not finite")
    fail("mean", (np.abs(mean) > MAX_MEAN_MAGNITUDE).any(axis=1), f"magnitude beyond {MAX_MEAN_MAGNITUDE:g}")
    cov = out["covariance"]
    fail("covariance", ~np.isfinite(cov).all(axis=(1, 2)), "not finite")
    fail("covariance", (np.abs(cov) > MAX_COVARIANCE_MAGNITUDE).any(axis=(1, 2)),
         f"magnitude beyond {MAX_COVARIANCE_MAGNITUDE:g}")
    scale = np.abs(cov).max(axis=(1, 2), initial=0.0)
    asymmetry = np.abs(cov - cov.transpose(0, 2, 1)).max(axis=(1, 2), initial=0.0)
    fail("covariance", asymmetry > _SYMMETRY_TOLERANCE * scale, "not symmetric")
    diagonal = np.diagonal(cov, axis1=1, axis2=2)
    fail("covariance", ~(diagonal > 0).all(axis=1), "not positive definite (diagonal <= 0)")
    fail("covariance", ~_positive_definite(cov, diagonal), "not positive definite")

    used = np.arange(gallery_size)[None, :] < counts[:, None]  # (T, G)
    gallery[~used] = 0.0  # never read; zeroed so that equal states compare equal
    fail("gallery", ~np.isfinite(gallery).all(axis=(1, 2)), "not finite")
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.sqrt(np.einsum("tgd,tgd->tg", gallery.astype(np.float64), gallery.astype(np.float64)))
    bad_norm = used & (norms != 0) & (np.abs(norms - 1.0) > _NORM_TOLERANCE)
    fail("gallery", bad_norm.any(axis=1), "rows must have unit norm (or be all zero)")
    out["gallery"] = np.ascontiguousarray(gallery)
    return out


def _positive_definite(cov: np.ndarray, diagonal: np.ndarray) -> np.ndarray:
    """Per-track flag: Cholesky succeeds on the unit-diagonal (correlation) form.

    Scaling to unit diagonal first removes the spread between position
    variances (pixels squared) and aspect-ratio variances (about 1e-10), which
    would otherwise make healthy covariances look singular.
    """
    scale = 1.0 / np.sqrt(diagonal)
    correlation = cov * scale[:, :, None] * scale[:, None, :]
    try:
        np.linalg.cholesky(correlation)  # all at once; one by one only to find the culprit
        return np.ones(cov.shape[0], dtype=bool)
    except np.linalg.LinAlgError:
        pass
    ok = np.ones(cov.shape[0], dtype=bool)
    for t in range(cov.shape[0]):
        try:
            np.linalg.cholesky(correlation[t])
        except np.linalg.LinAlgError:
            ok[t] = False
    return ok
