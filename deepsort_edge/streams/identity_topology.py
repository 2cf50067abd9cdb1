"""Where one person may be next: which streams' views overlap, and the travel time between streams.

The registry (:mod:`deepsort_edge.streams.identities`) forbids a tracklet to join an
identity that was seen, since the tracklet began, in a stream whose view does not
overlap the tracklet's (one person is not in two places at once), or that was last
seen in a stream the topology does not connect to this one, or too soon or too
late for the travel time between the two. This module checks the user's
``overlaps`` and ``topology`` and turns them into per-stream-pair tables for the
kernels (:func:`deepsort_edge.kernels.registry.forbidden_pair`).

Example:
    >>> busy, lo, hi = pair_tables(("a", "b"), check_overlaps([("b", "a")]), None)
    >>> busy.tolist(), float(lo[0, 1]), float(hi[0, 1])
    ([[True, False], [False, True]], -inf, inf)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["check_overlaps", "check_stream", "check_topology", "pair_tables"]


def check_stream(stream_id: object) -> str:
    """``stream_id`` if it is a str (a ``TypeError`` naming it otherwise)."""
    if not isinstance(stream_id, str):
        raise TypeError(f"stream_id must be a str, got {type(stream_id).__name__}")
    return stream_id


def check_overlaps(overlaps: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """The pairs of streams whose views overlap, each as ``(min, max)``; a ``ValueError`` for a bad pair."""
    pairs = set()
    for pair in overlaps:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise ValueError(f"overlaps must hold pairs of stream ids (str, str), got {pair!r}")
        a, b = pair
        pairs.add((min(a, b), max(a, b)))
    return frozenset(pairs)


def check_topology(
    topology: Mapping[tuple[str, str], tuple[float, float]] | None,
) -> dict[tuple[str, str], tuple[float, float]] | None:
    """``{(a, b): (min_s, max_s)}`` with each pair as ``(min, max)``, checked; None stays None."""
    if topology is None:
        return None
    if not isinstance(topology, Mapping):
        raise TypeError(
            f"topology must be a mapping {{(stream_a, stream_b): (min_s, max_s)}}, got {type(topology).__name__}")
    out = {}
    for pair, window in topology.items():
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise ValueError(f"topology keys must be pairs of stream ids (str, str), got {pair!r}")
        try:
            lo, hi = (float(v) for v in window)
        except (TypeError, ValueError):
            raise ValueError(f"topology[{pair!r}] must be (min_s, max_s), got {window!r}") from None
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ValueError(f"topology[{pair!r}] must be (min_s, max_s) with min_s <= max_s, got {window!r}")
        out[(min(pair), max(pair))] = (lo, hi)
    return out


def pair_tables(
    streams: tuple[str, ...], overlaps: frozenset, topology: dict | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per stream pair: "busy" (one person cannot be in both at once) and the travel-time window."""
    n = len(streams)
    busy = np.ones((n, n), dtype=bool)
    lo = np.full((n, n), -np.inf)
    hi = np.full((n, n), np.inf)
    for i, a in enumerate(streams):
        for j, b in enumerate(streams):
            key = (min(a, b), max(a, b))
            if i != j and key in overlaps:
                busy[i, j] = False
            if topology is not None and i != j:
                lo[i, j], hi[i, j] = topology.get(key, (np.inf, -np.inf))  # not connected: no gap fits
            if i != j and key in overlaps:
                lo[i, j] = -np.inf  # seen in both at once is fine there
    return busy, lo, hi
