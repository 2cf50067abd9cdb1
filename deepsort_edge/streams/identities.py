"""Global identities: one id per person across cameras and across exits from the view.

:class:`IdentityRegistry` sits beside the trackers. Each frame of each stream
it is given the confirmed rows (the local track id of every row, -1 for the
others) with their appearance embeddings, and it returns a *global id* per
row (-1 while undecided). Every local track ``(stream, track id)`` is a
*tracklet*; every global id is an *identity*.

Model. An identity keeps a smoothed prototype (an EMA of its tracklets'
embeddings) and up to ``samples`` diverse samples (tracklet means; when full,
the sample closest to another one is dropped). The distance between a
tracklet and an identity is the smallest cosine distance between the
tracklet's mean embedding and the prototype or a sample.

Decisions. A tracklet is decided when it has ``min_frames`` matched frames,
and decided again each time that count doubles, up to ``revise_frames``;
after that its global id is final. All tracklets of one stream due in a
frame are decided together by one optimal assignment (the solver of
:mod:`deepsort_edge.kernels.lap`) against the live identities, where staying
without a link ("a new identity") costs ``link_threshold``. A pair is
forbidden when

- the identity has another tracklet, in the same stream or in a stream whose
  view does not overlap (``overlaps``), whose time span meets this
  tracklet's: one person is not in two places at once;
- ``topology`` is given and the identity was last seen in a stream that does
  not connect to this one, or the time since then is outside the pair's
  ``(min, max)`` travel time.

How ids change. A tracklet first gets its id at its ``min_frames``-th frame:
the id of the identity it is assigned to, else a new id (never reused). At a
later decision it changes id only for a clearly better option: its current
identity's cost is lowered by ``margin`` and a tracklet holding its own new
identity counts ``margin`` more for every link. So it moves to another
identity when that one is nearer by more than ``margin``; a linked
tracklet whose identity turns out farther than ``link_threshold + margin``
gets a new id. An identity left with no tracklet is retired (its id is
never given again). A link made while the identity's earlier tracklet was
only hidden is undone when both turn out to be seen at once (in one frame of
one stream, or interleaved in streams whose views do not overlap): the
tracklet that began later leaves and is decided again. Ids already returned are not rewritten: from the frame of
the change on, the rows of that tracklet carry the new id.

Only tracklets past ``revise_frames`` (and the founder of a new identity)
update the identity's model, so an early wrong link cannot pull the model
toward the wrong person before it is revised.

Memory is bounded: identities unseen for ``expire_after`` seconds are
dropped with their tracklets, and at most ``max_identities`` are kept.
Everything is deterministic: the same calls give the same ids.

Where the parts live: the arrays and the appearance model in
:mod:`~deepsort_edge.streams.identity_store`, the decisions in
:mod:`~deepsort_edge.streams.identity_decisions`, overlaps and travel times
in :mod:`~deepsort_edge.streams.identity_topology`, saved state in
:mod:`~deepsort_edge.streams.identity_state`; the per-frame work is compiled
(:mod:`deepsort_edge.kernels.registry`: one call records a frame, one prices
a decision), so a frame costs about as much as a tracker update or less.

Example:
    >>> import numpy as np
    >>> reg = IdentityRegistry(min_frames=2)
    >>> a, b = np.eye(4, dtype=np.float32)[:2]
    >>> [reg.observe("cam0", [1], [a], time=t).tolist() for t in (0.0, 0.1)]
    [[-1], [1]]
    >>> [reg.observe("cam1", [7], [a], time=t).tolist() for t in (5.0, 5.1)]  # the same person elsewhere
    [[-1], [1]]
    >>> [reg.observe("cam1", [8], [b], time=t).tolist() for t in (6.0, 6.1)]  # someone else
    [[-1], [2]]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..kernels.registry import ROWS_BAD_NORM, ROWS_REPEAT, record_frame, unit_rows
from ..tracking.settings import IdentitySettings
from .identity_decisions import IdentityDecisions
from .identity_state import IDENTITY_STATE_FORMAT, from_state, read_npz, state_dict, write_npz
from .identity_store import FINAL
from .identity_topology import check_overlaps, check_stream, check_topology

__all__ = ["IDENTITY_STATE_FORMAT", "IdentityRegistry", "IdentitySettings", "TrackerObservation",
           "tracker_observation"]


class IdentityRegistry(IdentityDecisions):
    """Global ids for the confirmed tracks of many streams (see the module docstring).

    Args:
        settings: an :class:`IdentitySettings`, or None for the defaults.
        overlaps: pairs of stream ids whose views overlap: a person may be in
            both at once (otherwise never in two streams at the same time).
        topology: ``{(stream_a, stream_b): (min_s, max_s)}``, the travel time
            between two streams (either direction). When given, a person seen
            last in ``a`` can next appear only in ``a`` itself or in a listed
            neighbour, within that travel time. None: every transition allowed.
        **overrides: individual ``IdentitySettings`` fields.

    Example:
        >>> reg = IdentityRegistry(min_frames=3, link_threshold=0.25,
        ...                        topology={("door", "hall"): (2.0, 60.0)})
        >>> reg.settings.min_frames
        3
    """

    def __init__(
        self,
        settings: IdentitySettings | None = None,
        *,
        overlaps: Iterable[tuple[str, str]] = (),
        topology: Mapping[tuple[str, str], tuple[float, float]] | None = None,
        **overrides: Any,
    ) -> None:
        if settings is not None and not isinstance(settings, IdentitySettings):
            raise TypeError(f"settings must be an IdentitySettings or None, got {type(settings).__name__}")
        base = settings.to_dict() if settings is not None else {}
        self.settings = IdentitySettings.from_dict({**base, **overrides})
        self.overlaps = check_overlaps(overlaps)
        self.topology = check_topology(topology)
        self._reset_state()

    # ------------------------------------------------------------------ public API
    def observe(
        self,
        stream_id: str,
        track_ids: Any,
        embeddings: Any,
        time: float,
    ) -> np.ndarray:
        """Record one frame of one stream and return the global id of each row.

        Args:
            stream_id: the camera (any str).
            track_ids: ``(N,)`` local track ids of the stream's tracker; rows
                with -1 (not in a confirmed track) are ignored.
            embeddings: ``(N, D)`` appearance embeddings of the rows (any
                scale; normalised here). Rows with track id -1 are not read.
            time: the frame's time in seconds, on one clock for all streams;
                never earlier than this stream's previous frame.

        Returns:
            ``(N,)`` int64 global ids, -1 where the row has none (yet).

        Example:
            >>> reg = IdentityRegistry(min_frames=1)
            >>> reg.observe("cam0", [3, -1], [[1.0, 0.0], [0.0, 0.0]], time=0.0)
            array([ 1, -1])
        """
        stream_id = check_stream(stream_id)
        ids = np.asarray(track_ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"track_ids must be a 1-d integer array, got {ids.dtype} {ids.shape}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        rows = np.flatnonzero(ids >= 0)
        if not isinstance(time, (int, float, np.integer, np.floating)) or isinstance(time, bool) or \
                not math.isfinite(time):
            raise ValueError(f"time must be a finite number of seconds, got {time!r}")
        time = float(time)
        emb = None
        if rows.size:
            given = np.asarray(embeddings)
            if given.dtype not in (np.float32, np.float64):
                given = given.astype(np.float64)
            if given.ndim != 2 or given.shape[0] != ids.shape[0]:
                raise ValueError(
                    f"embeddings must have shape ({ids.shape[0]}, D) to match track_ids, got {given.shape}")
            if self._dim and given.shape[1] != self._dim:
                raise ValueError(f"embeddings are {given.shape[1]}-d, this registry holds {self._dim}-d ones")
            emb = np.empty((rows.size, given.shape[1]), dtype=np.float32)
            code = unit_rows(ids, np.ascontiguousarray(given), rows, emb)
            if code == ROWS_BAD_NORM:
                raise ValueError("embeddings of tracked rows must be finite and non-zero")
            if code == ROWS_REPEAT:
                raise ValueError("track_ids must not repeat a track id within one frame")
        s = self._streams.get(stream_id)
        if s is not None and time < self._stream_time[s]:
            raise ValueError(
                f"time {time} is earlier than stream {stream_id!r}'s previous frame ({self._stream_time[s]})"
            )
        # Checks done: from here on nothing raises.
        if s is None:
            s = self._add_stream(stream_id)
        self._stream_time[s] = time
        self._now = max(self._now, time)
        self._expire()
        out = np.full(ids.shape[0], -1, dtype=np.int64)
        if emb is None:
            return out
        if not self._dim:
            self._set_dim(emb.shape[1])
        keys, tracked = self._keys, ids[rows].tolist()
        found = [keys.get((s, i), -1) for i in tracked]
        if -1 in found:
            found = [t if t >= 0 else self._tracklet(s, i, time) for t, i in zip(found, tracked)]
        slots = np.array(found, dtype=np.intp)
        previous = np.empty(slots.size)
        got = np.empty(slots.size, dtype=np.int64)
        due, suspect = record_frame(
            slots, emb, s, time, self.settings.ema_momentum, self._busy, self.t_sum, self.t_count, self.t_last,
            self.t_ident, self.t_phase, self.t_founder, self.t_next, self.t_sample, self.i_gid, self.i_last,
            self.i_seen, self.i_bank, self._stale, previous, got)
        if due or suspect:  # the slow path: some decision to make (a few frames of each track)
            clashed = self._clashes(slots, previous, s) if suspect else np.zeros(slots.size, dtype=bool)
            due = clashed | ((self.t_phase[slots] != FINAL) & (self.t_count[slots] >= self.t_next[slots]))
            if due.any():
                self._decide(slots[due], s)
            ident = self.t_ident[slots]
            got = np.where(ident >= 0, self.i_gid[np.maximum(ident, 0)], -1)
        out[rows] = got
        return out

    def update(self, stream_id: str, tracker: Any, result: Any, time: float | None = None) -> Any:
        """Global ids for one ``DeepSORTTracker.update`` result: the route for single-tracker users.

        Embeddings come from ``result.data["embeddings"]`` when the input had
        them, else from the tracker's own track embeddings (its smoothed EMA
        vector, or the newest gallery entry in gallery mode). A tracker on
        motion alone has no embeddings: its rows get -1.

        Args:
            stream_id: the camera.
            tracker: the ``DeepSORTTracker`` that produced ``result``.
            result: what ``tracker.update`` just returned.
            time: seconds on a clock shared by all streams; None uses the
                tracker's ``frame_count / frame_rate`` (streams that started together).

        Returns:
            A shallow copy of ``result`` with ``data["global_id"]`` (int64, -1
            while undecided).

        Example:
            >>> import numpy as np, supervision as sv
            >>> from deepsort_edge import DeepSORTTracker
            >>> tracker, registry = DeepSORTTracker(minimum_consecutive_frames=1), IdentityRegistry(min_frames=1)
            >>> dets = sv.Detections(xyxy=np.array([[10., 20., 50., 120.]]), confidence=np.array([0.9]),
            ...                      data={"embeddings": np.array([[1.0, 0.0]])})
            >>> registry.update("cam0", tracker, tracker.update(dets)).data["global_id"]
            array([1])
        """
        out = copy.copy(result)
        out.data = dict(result.data)
        out.data["global_id"] = self.global_ids(stream_id, tracker, result, time)
        return out

    def global_ids(self, stream_id: str, tracker: Any, result: Any, time: float | None = None) -> np.ndarray:
        """What :meth:`update` puts in ``data["global_id"]``: ``(N,)`` int64, -1 while undecided."""
        given = result.data.get("embeddings") if result.data else None
        return self.observe_tracker(stream_id, tracker_observation(tracker, result.tracker_id, given), time)

    def observe_tracker(self, stream_id: str, observation: TrackerObservation, time: float | None = None) -> np.ndarray:
        """:meth:`observe` with what :func:`tracker_observation` read off a tracker (the route across
        processes: the tracker and the registry may live in different Ray actors).

        ``time`` None: the tracker's own clock, never behind the stream's last frame (after a reset).
        """
        if time is None:
            time = observation.clock
            s = self._streams.get(stream_id)
            if s is not None:
                time = max(time, self._stream_time[s])
        return self.observe(stream_id, observation.track_ids, observation.embeddings, time)

    def links(self) -> list[dict[str, Any]]:
        """The live tracklets: ``stream``, ``track_id``, ``global_id`` (-1 undecided), ``first``,
        ``last`` (seconds), ``frames``, ``final`` and ``distance`` (to its identity at its last
        decision; None for one that founded its identity)."""
        out = []
        for (s, local), t in sorted(self._keys.items(), key=lambda kv: (self.t_first[kv[1]], kv[0])):
            ident = int(self.t_ident[t])
            cost = float(self.t_cost[t])
            out.append({
                "stream": self.streams[s], "track_id": local,
                "global_id": int(self.i_gid[ident]) if ident >= 0 else -1,
                "first": float(self.t_first[t]), "last": float(self.t_last[t]), "frames": int(self.t_count[t]),
                "final": bool(self.t_phase[t] == FINAL), "distance": None if math.isnan(cost) else cost,
            })
        return out

    def reset(self) -> None:
        """Forget every identity and tracklet; global ids start again at 1."""
        self._reset_state()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: settings, streams, identities and tracklets (plain data)."""
        return state_dict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` after checking it; the registry is unchanged if that fails.

        Raises:
            ValueError: naming the first bad field.
        """
        fresh = from_state(IdentityRegistry, state)
        self.__dict__.update(fresh.__dict__)

    def save(self, path: str | Path) -> Path:
        """Write the state as a pickle-free ``.npz`` (atomically). See :meth:`load`.

        Example:
            >>> import tempfile
            >>> reg = IdentityRegistry(min_frames=1)
            >>> _ = reg.observe("cam0", [1], [[1.0, 0.0]], time=0.0)
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     IdentityRegistry.load(reg.save(Path(folder) / "ids.npz")).links()[0]["global_id"]
            1
        """
        return write_npz(self.state_dict(), Path(path))

    @classmethod
    def load(cls, path: str | Path) -> IdentityRegistry:
        """A registry resumed from a :meth:`save` file (read without unpickling, every field checked)."""
        return from_state(cls, read_npz(Path(path)))

    def __repr__(self) -> str:
        return (f"IdentityRegistry(identities={len(self)}, tracklets={len(self._keys)}, streams={len(self._streams)}, "
                f"next_id={self._next_gid})")


class TrackerObservation(NamedTuple):
    """One tracker frame as the registry needs it (plain arrays: cheap to send between processes)."""

    track_ids: np.ndarray  # (N,) local ids, -1 for rows without a confirmed track (all -1 on motion alone)
    embeddings: np.ndarray  # (N, D) appearance of the rows (rows with id -1 unused)
    clock: float  # the tracker's frame_count / frame_rate, seconds


def tracker_observation(tracker: Any, track_ids: Any, embeddings: Any = None) -> TrackerObservation:
    """What a ``DeepSORTTracker``'s last update gives the registry.

    Args:
        tracker: the tracker, right after the update.
        track_ids: the ``tracker_id`` it returned (None: no rows).
        embeddings: the rows' embeddings when the input had them; else the
            tracker's own track embeddings are read (its EMA vector, or the
            newest gallery entry). A tracker on motion alone has none: every
            row then gets id -1 here (no global id without appearance).
    """
    ids = np.asarray(track_ids if track_ids is not None else np.zeros(0), dtype=np.int64).reshape(-1)
    clock = tracker.frame_count / tracker.frame_rate
    if embeddings is not None:
        return TrackerObservation(ids, np.asarray(embeddings), clock)
    tracked = ids >= 0
    found = tracker.track_embeddings(ids[tracked]) if tracked.any() else None
    if found is None:
        return TrackerObservation(np.full(ids.shape[0], -1, dtype=np.int64), np.zeros((ids.shape[0], 1)), clock)
    out = np.zeros((ids.shape[0], found.shape[1]), dtype=np.float32)
    out[tracked] = found
    return TrackerObservation(ids, out, clock)
