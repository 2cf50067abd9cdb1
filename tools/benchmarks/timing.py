"""Timing loops: CPU time of each tracker update, repeats, and the kernel's share."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .common import progress as with_progress


def time_updates(
    update: Callable[[Any], object],
    inputs: Iterable[Any],
    *,
    total: int,
    desc: str,
    progress: bool,
    before: Callable[[], object] | None = None,
    after: Callable[[Any, object], object] | None = None,
) -> np.ndarray:
    """CPU milliseconds (``time.thread_time_ns``) of ``update(x)`` for each input.

    ``before()`` runs untimed ahead of each update, ``after(x, result)`` untimed
    behind it (e.g. to count ids).
    """
    times = []
    clock = time.thread_time_ns
    for x in with_progress(inputs, total, desc, progress):
        if before is not None:
            before()
        t0 = clock()
        result = update(x)
        times.append((clock() - t0) / 1e6)
        if after is not None:
            after(x, result)
    return np.array(times)


class Loop:
    """Per-update times of the repeats of one timing loop."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.runs: list[np.ndarray] = []
        self.extra: dict = {}

    def add(self, times_ms: np.ndarray) -> None:
        self.runs.append(np.asarray(times_ms))

    def median(self, start: int = 0, stop: int | None = None) -> float:
        """Median over the repeats of each repeat's median update (updates ``start:stop``)."""
        return float(np.median([np.median(r[start:stop]) for r in self.runs]))

    def p95(self, start: int = 0) -> float:
        """Median over the repeats of each repeat's 95th-percentile update."""
        return float(np.median([np.percentile(r[start:], 95) for r in self.runs]))

    def summary(self, start: int = 0, keep_times: bool = False) -> dict:
        out = {
            "label": self.label,
            "repeats": len(self.runs),
            "updates": int(self.runs[0].size) if self.runs else 0,
            "from_update": start + 1,
            "median_ms": self.median(start),
            "p95_ms": self.p95(start),
            "repeat_medians_ms": [float(np.median(r[start:])) for r in self.runs],
            **self.extra,
        }
        if keep_times:
            out["times_ms"] = [r.tolist() for r in self.runs]
        return out


class KernelClock:
    """CPU milliseconds spent inside the frame kernel, per call, while installed.

    Swaps the tracker module's ``track_frame`` for a timing wrapper (about
    0.3 us a call), so an update's time splits into the kernel's and the
    Python glue's.
    """

    def __init__(self) -> None:
        self.times_ms: list[float] = []

    def __enter__(self) -> KernelClock:
        from deepsort_edge import DeepSORTTracker

        self._module = sys.modules[DeepSORTTracker.__module__]
        self._kernel = self._module.track_frame
        kernel, times, clock = self._kernel, self.times_ms, time.thread_time_ns

        def timed(*args: object) -> object:
            t0 = clock()
            done = kernel(*args)
            times.append((clock() - t0) / 1e6)
            return done

        self._module.track_frame = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self._module.track_frame = self._kernel
