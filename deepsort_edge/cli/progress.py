"""Progress of many inputs on one bar: workers send frame counts, the parent's bar shows them.

A worker (a process, a Ray task, or the parent itself) gets a progress
factory; :func:`deepsort_edge.cli.track_one.track_input` calls it with the
input's frame count and updates the bar-like :class:`QueueBar` it returns,
which batches frame counts into ``("total", n)`` and ``("frames", n)``
messages at most every :data:`REPORT_EVERY_S` seconds; the parent applies
them to its bar with :func:`apply_progress`.
"""

from __future__ import annotations

import queue as queue_module
import time
from collections.abc import Callable
from typing import Any

__all__ = ["REPORT_EVERY_S", "BarProgress", "QueueBar", "QueueProgress", "apply_progress", "drain_progress"]

REPORT_EVERY_S = 0.2  # workers batch progress messages this often


class QueueBar:
    """A bar-like object in a worker: sends its frame counts to the parent through a queue."""

    def __init__(self, send: Callable[[tuple], None], total: int | None) -> None:
        self._send = send
        self._pending = 0
        self._last = time.monotonic()
        send(("total", total or 0))

    def update(self, n: int = 1) -> None:
        self._pending += n
        if time.monotonic() - self._last >= REPORT_EVERY_S:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._send(("frames", self._pending))
            self._pending = 0
        self._last = time.monotonic()

    def close(self) -> None:
        self._flush()


class QueueProgress:
    """Picklable progress factory for :func:`deepsort_edge.cli.track_one.track_input`."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def __call__(self, total: int | None, name: str) -> QueueBar:
        return QueueBar(self._put, total)

    def _put(self, message: tuple) -> None:
        try:
            self.queue.put(message)
        except Exception:  # noqa: BLE001  (progress is cosmetic: a queue lost with its node must not fail the input)
            pass


class BarProgress:
    """In-process progress factory: the parent's bar itself."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, total: int | None, name: str) -> QueueBar:
        return QueueBar(lambda message: apply_progress(self.bar, message), total)


def apply_progress(bar: Any, message: tuple) -> None:
    """Apply one worker message to the parent's bar: ``("total", n)`` adds to its total, ``("frames", n)`` advances it."""
    kind, n = message
    if kind == "total":
        bar.total = (bar.total or 0) + n
        bar.refresh()
    else:
        bar.update(n)


def drain_progress(get: Callable[[], tuple], bar: Any) -> None:
    """Apply every message ``get`` has ready (it raises ``queue.Empty`` when none is left)."""
    while True:
        try:
            message = get()
        except queue_module.Empty:
            return
        apply_progress(bar, message)
