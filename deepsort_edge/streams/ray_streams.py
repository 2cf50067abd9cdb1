"""Where each stream of the distributed tracker lives, and its state: placement, moves, state dicts.

A mixin of :class:`~deepsort_edge.streams.distributed.RayMultiStreamTracker`.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Iterator
from typing import Any

from .multistream import (
    check_stream_id,
)

__all__ = ["RayStreams", "stable_worker_index"]


def stable_worker_index(stream_id: str, num_workers: int) -> int:
    """The tracker actor a stream lives on: CRC-32 of its UTF-8 id, modulo ``num_workers``.

    Stable across processes and runs (unlike Python's salted ``hash``).

    Example:
        >>> stable_worker_index("cam0", 4)
        0
    """
    return zlib.crc32(check_stream_id(stream_id).encode("utf-8")) % num_workers


class RayStreams:
    """The streams of a distributed tracker: where each lives, and its state.

    A stream lives on the tracker actor :func:`stable_worker_index` names unless
    :meth:`move` put it elsewhere; setting a stream's state (load, reset, move)
    also makes it the driver's recovery snapshot.
    """

    # ------------------------------------------------------------------ streams
    def worker_of(self, stream_id: str) -> int:
        """Index of the tracker actor holding (or that will hold) ``stream_id``."""
        check_stream_id(stream_id)
        if stream_id in self._placement:
            return self._placement[stream_id]
        return stable_worker_index(stream_id, self.num_workers)

    @property
    def workers(self) -> tuple[Any, ...]:
        """The tracker actor handles, by index (see :meth:`worker_of`)."""
        return tuple(self._workers)

    @property
    def embedders(self) -> tuple[Any, ...]:
        """The embedder actor handles (empty without a feature extractor)."""
        return tuple(self._embedders)

    @property
    def streams(self) -> tuple[str, ...]:
        """Stream ids, in the order they first appeared."""
        return tuple(self._streams)

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def __iter__(self) -> Iterator[str]:
        return iter(self.streams)

    def _known(self, stream_id: str) -> int:
        if stream_id not in self._streams:
            raise KeyError(f"no stream {stream_id!r} (known: {sorted(self._streams)})")
        return self._streams[stream_id]

    def remove(self, stream_id: str) -> None:
        """Forget a stream and its tracks (KeyError if unknown)."""
        self._check_open()
        self._call(self._known(stream_id), "remove", stream_id)
        for table in (self._streams, self._placement, self._snapshots, self._logs, self._seq, self._unfinished):
            table.pop(stream_id, None)

    def reset(self, stream_id: str | None = None) -> None:
        """Forget the tracks of one stream, or of every stream when None."""
        self._check_open()
        for sid in self.streams if stream_id is None else (stream_id,):
            self._set_state(sid, self._call(self._known(sid), "reset", sid), 0)

    def _set_state(self, stream_id: str, state: dict[str, Any], seq: int) -> None:
        """The driver's record of a stream whose state was just set: the recovery snapshot, no log."""
        self._snapshots[stream_id] = state
        self._logs[stream_id] = []
        self._seq[stream_id] = seq
        self._unfinished.pop(stream_id, None)

    def state_dict(self, stream_id: str) -> dict[str, Any]:
        """One stream's ``DeepSORTTracker.state_dict()``."""
        self._check_open()
        return self._call(self._known(stream_id), "state_dicts", [stream_id])[stream_id]

    def load_state_dict(self, stream_id: str, state: dict[str, Any]) -> None:
        """Restore one stream from a ``state_dict`` (creating it if new); unchanged if it fails.

        The recovery snapshot is a copy: changing ``state`` afterwards changes nothing here.
        """
        self._check_open()
        worker = self.worker_of(stream_id)
        state = copy.deepcopy(state)
        seq = self._seq.get(stream_id, 0) + 1  # a new number: an earlier frame's retry is no repeat of this
        self._call(worker, "load", {stream_id: state}, {stream_id: seq})
        self._streams[stream_id] = worker
        self._set_state(stream_id, state, seq)

    def move(self, stream_id: str, worker: int) -> None:
        """Move a stream to tracker actor ``worker`` through its state; its ids continue."""
        self._check_open()
        if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < self.num_workers:
            raise ValueError(f"worker must be an int in [0, {self.num_workers}), got {worker!r}")
        old = self._known(stream_id)
        if old == worker:
            return
        state = self._call(old, "pop", stream_id)
        seq = self._seq.get(stream_id, 0)
        self._call(worker, "load", {stream_id: state}, {stream_id: seq})
        self._placement[stream_id] = worker
        self._streams[stream_id] = worker
        self._set_state(stream_id, state, seq)
