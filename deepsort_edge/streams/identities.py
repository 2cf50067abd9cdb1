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

import json
import math
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..kernels.gallery import max_dots_many
from ..kernels.lap import solve_assignment
from ..tracking.settings import IdentitySettings

__all__ = ["IDENTITY_STATE_FORMAT", "IdentityRegistry", "IdentitySettings", "TrackerObservation",
           "tracker_observation"]

IDENTITY_STATE_FORMAT = "deepsort-edge.identity-state"
IDENTITY_STATE_VERSION = 1

PENDING, PROVISIONAL, FINAL = 0, 1, 2
_NEVER = -np.inf

# Per-tracklet and per-identity arrays (name -> dtype, trailing shape); "D", "S", "C" are
# the embedding dimension, samples + 1 and the stream count.
_TRACKLET_FIELDS: dict[str, tuple[type, tuple[str | int, ...]]] = {
    "t_stream": (np.int64, ()),
    "t_local": (np.int64, ()),
    "t_sum": (np.float32, ("D",)),
    "t_count": (np.int64, ()),
    "t_first": (np.float64, ()),
    "t_last": (np.float64, ()),
    "t_ident": (np.int64, ()),  # identity slot, -1 undecided
    "t_phase": (np.int8, ()),
    "t_founder": (np.bool_, ()),
    "t_sample": (np.int64, ()),  # the sample row this tracklet keeps current, -1 none
    "t_next": (np.int64, ()),  # matched frames at its next decision
    "t_cost": (np.float64, ()),  # distance to its identity at the last decision (nan: founded it)
    "t_used": (np.bool_, ()),
}
_IDENTITY_FIELDS: dict[str, tuple[type, tuple[str | int, ...]]] = {
    "i_gid": (np.int64, ()),  # 0: free slot
    "i_bank": (np.float32, ("S", "D")),  # row 0 the prototype, rows 1.. the samples
    "i_valid": (np.bool_, ("S",)),
    "i_owner": (np.int64, ("S",)),  # tracklet slot keeping a sample current, -1 none
    "i_last": (np.float64, ()),
    "i_seen": (np.float64, ("C",)),  # per stream: the latest time of its tracklets there
}


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]
    return x / np.where(norms > 0, norms, 1.0)


class IdentityRegistry:
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
        self.overlaps = _check_overlaps(overlaps)
        self.topology = _check_topology(topology)
        self._reset_state()

    def _reset_state(self) -> None:
        self._streams: dict[str, int] = {}
        self._stream_time: list[float] = []
        self._keys: dict[tuple[int, int], int] = {}
        self._members: dict[int, list[int]] = {}
        self._dim = 0
        self._next_gid = 1
        self._now = _NEVER
        self._t_cap = self._i_cap = 0
        for name, (dtype, shape) in {**_TRACKLET_FIELDS, **_IDENTITY_FIELDS}.items():
            setattr(self, name, np.zeros((0, *self._shape(shape)), dtype=dtype))
        self._t_free: list[int] = []
        self._i_free: list[int] = []

    def _shape(self, shape: tuple[str | int, ...]) -> tuple[int, ...]:
        sizes = {"D": self._dim, "S": self.settings.samples + 1, "C": len(self._streams)}
        return tuple(sizes[s] if isinstance(s, str) else s for s in shape)

    # ------------------------------------------------------------------ public API
    @property
    def streams(self) -> tuple[str, ...]:
        """Stream ids seen so far, in order of appearance."""
        return tuple(self._streams)

    def __len__(self) -> int:
        """Live identities."""
        return int((self.i_gid > 0).sum())

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
        stream_id = _check_stream(stream_id)
        ids = np.asarray(track_ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"track_ids must be a 1-d integer array, got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64)
        rows = np.flatnonzero(ids >= 0)
        if not isinstance(time, (int, float, np.integer, np.floating)) or isinstance(time, bool) or \
                not math.isfinite(time):
            raise ValueError(f"time must be a finite number of seconds, got {time!r}")
        time = float(time)
        emb = np.asarray(embeddings, dtype=np.float64) if rows.size else None
        if emb is not None:
            if emb.ndim != 2 or emb.shape[0] != ids.shape[0]:
                raise ValueError(f"embeddings must have shape ({ids.shape[0]}, D) to match track_ids, got {emb.shape}")
            if self._dim and emb.shape[1] != self._dim:
                raise ValueError(f"embeddings are {emb.shape[1]}-d, this registry holds {self._dim}-d ones")
            emb = emb[rows]
            norms = np.sqrt(np.einsum("ij,ij->i", emb, emb))
            if not (np.isfinite(norms).all() and norms.all()):
                raise ValueError("embeddings of tracked rows must be finite and non-zero")
            emb = (emb / norms[:, None]).astype(np.float32)
            tracked = np.sort(ids[rows])
            if (tracked[1:] == tracked[:-1]).any():
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
        slots = np.array([self._tracklet(s, int(i), time) for i in ids[rows]], dtype=np.intp)
        previous = self.t_last[slots].copy()
        self._record(slots, emb, s, time)
        clashed = self._clashes(slots, previous, s)
        due = clashed | ((self.t_phase[slots] != FINAL) & (self.t_count[slots] >= self.t_next[slots]))
        if due.any():
            self._decide(slots[due], s)
        ident = self.t_ident[slots]
        bound = ident >= 0
        out[rows[bound]] = self.i_gid[ident[bound]]
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
        import copy

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

    # ------------------------------------------------------------------ storage
    def _add_stream(self, stream_id: str) -> int:
        s = len(self._streams)
        self._streams[stream_id] = s
        self._stream_time.append(_NEVER)
        seen = np.full((self._i_cap, s + 1), _NEVER)
        seen[:, :s] = self.i_seen
        self.i_seen = seen
        # Per pair of streams: may one person be in both at once, and the travel-time window.
        self._busy, self._gap_lo, self._gap_hi = _pair_tables(self.streams, self.overlaps, self.topology)
        return s

    def _set_dim(self, dim: int) -> None:
        self._dim = dim
        self.t_sum = np.zeros((self._t_cap, dim), dtype=np.float32)
        self.i_bank = np.zeros((self._i_cap, self.settings.samples + 1, dim), dtype=np.float32)

    def _grow(self, fields: dict, cap_name: str, free: list[int]) -> None:
        old = getattr(self, cap_name)
        new = max(16, 2 * old)
        for name, (dtype, shape) in fields.items():
            grown = np.zeros((new, *self._shape(shape)), dtype=dtype)
            grown[:old] = getattr(self, name)
            setattr(self, name, grown)
        if cap_name == "_i_cap":
            self.i_seen[old:] = _NEVER
            self.i_owner[old:] = -1
        setattr(self, cap_name, new)
        free.extend(range(new - 1, old - 1, -1))  # lowest slot on top

    def _tracklet(self, s: int, local: int, time: float) -> int:
        t = self._keys.get((s, local))
        if t is not None:
            return t
        if not self._t_free:
            self._grow(_TRACKLET_FIELDS, "_t_cap", self._t_free)
        t = self._t_free.pop()
        self._keys[(s, local)] = t
        self.t_stream[t], self.t_local[t], self.t_first[t], self.t_last[t] = s, local, time, time
        self.t_sum[t] = 0.0
        self.t_count[t], self.t_ident[t], self.t_phase[t], self.t_founder[t] = 0, -1, PENDING, False
        self.t_sample[t], self.t_next[t], self.t_cost[t], self.t_used[t] = -1, self.settings.min_frames, np.nan, True
        return t

    def _record(self, slots: np.ndarray, emb: np.ndarray, s: int, time: float) -> None:
        """Add one frame's embeddings to their tracklets and, where they count, to their identities."""
        self.t_sum[slots] += emb
        self.t_count[slots] += 1
        self.t_last[slots] = time
        ident = self.t_ident[slots]
        bound = ident >= 0
        self.i_last[ident[bound]] = time
        self.i_seen[ident[bound], s] = time
        counts = bound & ((self.t_phase[slots] == FINAL) | self.t_founder[slots])
        if not counts.any():
            return
        g, m = ident[counts], self.settings.ema_momentum
        bank = self.i_bank
        bank[g, 0] = _unit(m * bank[g, 0] + (1.0 - m) * emb[counts])
        # Samples kept current by their tracklets are refreshed when read (_refresh_samples).

    def _clashes(self, slots: np.ndarray, previous: np.ndarray, s: int) -> np.ndarray:
        """Undo links that now put one identity in two places at once; True for rows to decide again.

        A link is made when the identity was not seen elsewhere since the
        tracklet began, but a tracklet that was only hidden may come back: then
        two rows of one stream in one frame, or a tracklet seen again after its
        identity was seen in a non-overlapping stream, share an identity. Of two
        such tracklets the one that began later leaves the identity and is
        decided again (now, or at its next frame).
        """
        out = np.zeros(slots.size, dtype=bool)
        ident = self.t_ident[slots]
        bound = np.flatnonzero(ident >= 0)
        if bound.size < 1:
            return out
        first = self.t_first[slots]
        # Same frame, same stream: all but the earliest-begun row of each identity leave.
        order = bound[np.lexsort((first[bound], ident[bound]))]
        repeat = order[1:][ident[order[1:]] == ident[order[:-1]]]
        elsewhere = self._busy[s].copy()
        elsewhere[s] = False
        if elsewhere.any():
            seen = self.i_seen[ident[bound]][:, elsewhere]
            moved = bound[(seen > previous[bound, None]).any(axis=1)]
        else:
            moved = bound[:0]
        for r in np.union1d(repeat, moved):
            t = int(slots[r])
            g = int(self.t_ident[t])
            if g < 0:
                continue
            others = [m for m in self._members[g] if m != t and self._busy[s, self.t_stream[m]]
                      and (self.t_stream[m] != s or r in repeat) and self.t_last[m] > previous[r]]
            if r in repeat or any(self.t_first[m] <= self.t_first[t] for m in others):
                self._undecide(t)
                out[r] = True
            else:
                for m in others:
                    self._undecide(m)
        return out

    def _undecide(self, t: int) -> None:
        """Take ``t`` out of its identity; it is decided again at its next frame."""
        self._leave(t)
        self.t_phase[t] = PENDING
        self.t_next[t] = self.t_count[t]

    def _new_identity(self, t: int) -> int:
        """A new identity founded by tracklet ``t`` (its model: the tracklet's mean)."""
        if len(self) >= self.settings.max_identities:
            live = np.flatnonzero(self.i_gid > 0)
            oldest = live[np.lexsort((self.i_gid[live], self.i_last[live]))[0]]
            self._drop_identity(int(oldest))
        if not self._i_free:
            self._grow(_IDENTITY_FIELDS, "_i_cap", self._i_free)
        g = self._i_free.pop()
        self.i_gid[g] = self._next_gid
        self._next_gid += 1
        mean = _unit(self.t_sum[t])
        self.i_bank[g] = 0.0
        self.i_bank[g, 0] = mean
        self.i_valid[g] = False
        self.i_valid[g, 0] = True
        self.i_owner[g] = -1
        self.i_seen[g] = _NEVER
        self.i_last[g] = self.t_last[t]
        self._members[g] = []
        self._join(t, g, founder=True, cost=np.nan)
        return g

    def _join(self, t: int, g: int, founder: bool, cost: float) -> None:
        self.t_ident[t], self.t_founder[t], self.t_cost[t] = g, founder, cost
        self._members[g].append(t)
        s = self.t_stream[t]
        self.i_seen[g, s] = max(self.i_seen[g, s], self.t_last[t])
        self.i_last[g] = max(self.i_last[g], self.t_last[t])
        if founder:
            self._offer_sample(t, g)

    def _leave(self, t: int) -> None:
        """Take tracklet ``t`` out of its identity; an identity left empty is retired."""
        g = int(self.t_ident[t])
        self._members[g].remove(t)
        k = self.t_sample[t]
        if k >= 0:
            self.i_owner[g, k] = -1
        self.t_ident[t], self.t_founder[t], self.t_sample[t] = -1, False, -1
        if not self._members[g]:
            self._drop_identity(g, keep_tracklets=True)
            return
        s = self.t_stream[t]
        others = [m for m in self._members[g] if self.t_stream[m] == s]
        self.i_seen[g, s] = max((self.t_last[m] for m in others), default=_NEVER)

    def _offer_sample(self, t: int, g: int) -> None:
        """Keep tracklet ``t``'s mean as a sample of ``g``; when full, drop the most redundant one."""
        n = self.settings.samples
        if n == 0:
            return
        self._refresh_samples(np.array([g]))
        valid = self.i_valid[g, 1:]
        mean = _unit(self.t_sum[t]).astype(np.float32)
        if not valid.all():
            k = 1 + int(np.flatnonzero(~valid)[0])
        else:
            vectors = np.concatenate([self.i_bank[g, 1:], mean[None]])
            sim = vectors @ vectors.T
            np.fill_diagonal(sim, -np.inf)
            k = 1 + int(np.argmax(sim.max(axis=1)))  # the first of the closest pair (older first)
            if k == n + 1:
                return  # the new mean is the redundant one
            previous = self.i_owner[g, k]
            if previous >= 0:
                self.t_sample[previous] = -1
        self.i_bank[g, k] = mean
        self.i_valid[g, k] = True
        self.i_owner[g, k] = t
        self.t_sample[t] = k

    def _drop_identity(self, g: int, keep_tracklets: bool = False) -> None:
        for t in self._members.pop(g):
            if keep_tracklets:
                self.t_ident[t] = -1
            else:
                self._drop_tracklet(t)
        self.i_gid[g] = 0
        self.i_valid[g] = False
        self.i_owner[g] = -1
        self.i_seen[g] = _NEVER
        self._i_free.append(g)

    def _drop_tracklet(self, t: int) -> None:
        del self._keys[(int(self.t_stream[t]), int(self.t_local[t]))]
        self.t_used[t] = False
        self.t_ident[t], self.t_sample[t] = -1, -1
        self._t_free.append(t)

    def _expire(self) -> None:
        """Drop identities and tracklets unseen for ``expire_after`` seconds (a tracklet's
        frames live on in its identity's model)."""
        cutoff = self._now - self.settings.expire_after
        for g in np.flatnonzero((self.i_gid > 0) & (self.i_last < cutoff)):
            self._drop_identity(int(g))
        for t in np.flatnonzero(self.t_used & (self.t_last < cutoff)):
            t = int(t)
            g = int(self.t_ident[t])
            if g >= 0:
                self._members[g].remove(t)
                if self.t_sample[t] >= 0:
                    self.i_owner[g, self.t_sample[t]] = -1
            self._drop_tracklet(t)

    # ------------------------------------------------------------------ decisions
    def distances(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosine distances from unit ``embeddings (R, D)`` to every live identity.

        Returns:
            ``(global_ids (L,), distances (R, L))``: the nearest of each
            identity's prototype and samples.
        """
        live = np.flatnonzero(self.i_gid > 0)
        if not live.size or not self._dim:
            return self.i_gid[live], np.zeros((len(embeddings), live.size))
        return self.i_gid[live], self._distances(np.asarray(embeddings, dtype=np.float32), live)

    def _refresh_samples(self, slots: np.ndarray) -> None:
        """Set the samples of identities ``slots`` that a tracklet keeps current to that tracklet's mean."""
        owner = self.i_owner[slots]
        g, k = np.nonzero(owner >= 0)
        if g.size:
            self.i_bank[slots[g], k] = _unit(self.t_sum[owner[g, k]])

    def _distances(self, means: np.ndarray, live: np.ndarray) -> np.ndarray:
        self._refresh_samples(live)
        # Valid bank rows are a prefix (the prototype, then samples in the order they came).
        counts = self.i_valid.sum(axis=1).astype(np.intp)
        out = np.empty((len(means), live.size))
        max_dots_many(self.i_bank, counts, live.astype(np.intp), np.ascontiguousarray(means, np.float32), out)
        return 1.0 - out

    def _decide(self, rows: np.ndarray, s: int) -> None:
        """One assignment of stream ``s``'s due tracklets to the live identities (see the module docstring)."""
        st = self.settings
        limit, margin = st.link_threshold, st.margin
        means = _unit(self.t_sum[rows]).astype(np.float32)
        live = np.flatnonzero(self.i_gid > 0)
        first = self.t_first[rows]
        forbidden = self._forbidden(self.i_seen[live], first, s) if live.size else None
        own = self.t_ident[rows]
        if live.size:
            # Distances only to identities some row may join (in a crowd most are in view, so busy).
            wanted = ~forbidden.all(axis=0) | np.isin(live, own[own >= 0])
            live, forbidden = live[wanted], forbidden[:, wanted]
        if live.size:
            raw = self._distances(means, live)
            cost = np.where(forbidden, np.inf, raw)
            column = {int(g): j for j, g in enumerate(live)}
            for r, t in enumerate(rows):
                g = int(self.t_ident[t])
                if g < 0:
                    continue
                j = column[g]
                if self.t_founder[t]:
                    cost[r] += margin  # a link must beat staying alone by the margin
                    cost[r, j] = np.inf  # staying is "unassigned"
                    continue
                # Its own identity, judged without itself.
                own = self.i_seen[g].copy()
                others = [m for m in self._members[g] if m != t and self.t_stream[m] == s]
                own[s] = max((self.t_last[m] for m in others), default=_NEVER)
                allowed = not self._forbidden(own[None], first[r : r + 1], s)[0, 0]
                cost[r, j] = raw[r, j] - margin if allowed else np.inf
            row_to_col, _ = solve_assignment(np.ascontiguousarray(cost), limit)
        else:
            row_to_col = np.full(rows.size, -1, dtype=np.intp)
        # Links first, then new identities: a new identity may take a slot freed by a retired one.
        for r in np.flatnonzero(row_to_col >= 0):
            t, g = int(rows[r]), int(live[row_to_col[r]])
            if g != self.t_ident[t]:
                if self.t_ident[t] >= 0:
                    self._leave(t)
                self._join(t, g, founder=False, cost=float(raw[r, row_to_col[r]]))
            else:
                self.t_cost[t] = float(raw[r, row_to_col[r]])
        for r in np.flatnonzero(row_to_col < 0):
            t = int(rows[r])
            if self.t_ident[t] < 0 or not self.t_founder[t]:
                if self.t_ident[t] >= 0:
                    self._leave(t)
                self._new_identity(t)
        for t in rows:
            self.t_next[t] = 2 * self.t_count[t]
            if self.t_next[t] > st.revise_frames:
                self._finalise(int(t))

    def _finalise(self, t: int) -> None:
        """The tracklet's id is final; from now on it updates its identity's model."""
        self.t_phase[t] = FINAL
        if not self.t_founder[t]:
            self._offer_sample(t, int(self.t_ident[t]))

    def _forbidden(self, seen: np.ndarray, first: np.ndarray, s: int) -> np.ndarray:
        """``(R, L)``: identities with per-stream last times ``seen (L, C)`` a tracklet of stream ``s``
        starting at ``first (R,)`` may not join (at once elsewhere, or out of travel range)."""
        busy = seen[:, self._busy[s]]  # streams where being seen at the same time is impossible
        clash = (busy[None, :, :] >= first[:, None, None]).any(axis=2) if busy.shape[1] else \
            np.zeros((first.size, seen.shape[0]), dtype=bool)
        last = seen.max(axis=1)
        where = seen.argmax(axis=1)
        gap = first[:, None] - last[None, :]
        known = np.isfinite(last)[None, :]
        travel = (gap < self._gap_lo[where, s][None, :]) | (gap > self._gap_hi[where, s][None, :])
        return clash | (known & travel)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: settings, streams, identities and tracklets (plain data)."""
        t_live = np.flatnonzero(self.t_used)
        i_live = np.flatnonzero(self.i_gid > 0)
        self._refresh_samples(i_live)
        i_index = np.full(max(self._i_cap, 1), -1, dtype=np.int64)
        i_index[i_live] = np.arange(i_live.size)
        t_index = np.full(max(self._t_cap, 1), -1, dtype=np.int64)
        t_index[t_live] = np.arange(t_live.size)
        arrays = {name: getattr(self, name)[t_live].copy() for name in _TRACKLET_FIELDS}
        arrays.update({name: getattr(self, name)[i_live].copy() for name in _IDENTITY_FIELDS})
        # Slots become positions in the saved arrays.
        arrays["t_ident"] = np.where(arrays["t_ident"] >= 0, i_index[np.maximum(arrays["t_ident"], 0)], -1)
        arrays["i_owner"] = np.where(arrays["i_owner"] >= 0, t_index[np.maximum(arrays["i_owner"], 0)], -1)
        meta = {
            "format": IDENTITY_STATE_FORMAT, "version": IDENTITY_STATE_VERSION,
            "settings": self.settings.to_dict(), "overlaps": sorted([list(p) for p in self.overlaps]),
            "topology": None if self.topology is None else [[a, b, lo, hi] for (a, b), (lo, hi)
                                                            in sorted(self.topology.items())],
            "streams": list(self.streams), "stream_time": [None if t == _NEVER else t for t in self._stream_time],
            "dim": self._dim, "next_gid": self._next_gid, "now": None if self._now == _NEVER else self._now,
        }
        return {"meta": meta, "arrays": arrays}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` after checking it; the registry is unchanged if that fails.

        Raises:
            ValueError: naming the first bad field.
        """
        fresh = _from_state(state)
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
        path = Path(path)
        state = self.state_dict()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with tmp.open("xb") as fh:
                np.savez(fh, meta=np.array(json.dumps(state["meta"], allow_nan=False)), **state["arrays"])
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> IdentityRegistry:
        """A registry resumed from a :meth:`save` file (read without unpickling, every field checked)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"identity state file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path} is not an identity state file ({exc})") from None
        meta = arrays.pop("meta", None)
        if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
            raise ValueError(f"{path} is not an identity state file (no JSON 'meta' member)")
        return _from_state({"meta": json.loads(str(meta)), "arrays": arrays})

    def __repr__(self) -> str:
        return (f"IdentityRegistry(identities={len(self)}, tracklets={len(self._keys)}, streams={len(self._streams)}, "
                f"next_id={self._next_gid})")


# ---------------------------------------------------------------------- helpers
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


def _check_stream(stream_id: object) -> str:
    if not isinstance(stream_id, str):
        raise TypeError(f"stream_id must be a str, got {type(stream_id).__name__}")
    return stream_id


def _check_overlaps(overlaps: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    pairs = set()
    for pair in overlaps:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise ValueError(f"overlaps must hold pairs of stream ids (str, str), got {pair!r}")
        a, b = pair
        pairs.add((min(a, b), max(a, b)))
    return frozenset(pairs)


def _check_topology(
    topology: Mapping[tuple[str, str], tuple[float, float]] | None,
) -> dict[tuple[str, str], tuple[float, float]] | None:
    if topology is None:
        return None
    if not isinstance(topology, Mapping):
        raise TypeError(f"topology must be a mapping {{(stream_a, stream_b): (min_s, max_s)}}, got {type(topology).__name__}")
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


def _pair_tables(
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


def _from_state(state: Mapping[str, Any]) -> IdentityRegistry:
    """A registry rebuilt from a state dict, checking every field (trusts nothing)."""
    try:
        return _rebuild(state)
    except (TypeError, KeyError, IndexError, AttributeError) as exc:  # a field of the wrong kind or shape
        raise ValueError(f"identity state is malformed ({type(exc).__name__}: {exc})") from None


def _rebuild(state: Mapping[str, Any]) -> IdentityRegistry:
    if not isinstance(state, Mapping) or not isinstance(state.get("meta"), Mapping) or \
            not isinstance(state.get("arrays"), Mapping):
        raise ValueError("identity state must be a mapping with 'meta' and 'arrays'")
    meta, arrays = state["meta"], state["arrays"]
    if meta.get("format") != IDENTITY_STATE_FORMAT or meta.get("version") != IDENTITY_STATE_VERSION:
        raise ValueError(f"not an identity state (format {meta.get('format')!r}, version {meta.get('version')!r})")
    topology = meta.get("topology")
    if topology is not None:
        topology = {(a, b): (lo, hi) for a, b, lo, hi in topology}
    reg = IdentityRegistry(IdentitySettings.from_dict(meta.get("settings", {})),
                           overlaps=[tuple(p) for p in meta.get("overlaps", [])], topology=topology)
    streams = meta.get("streams")
    if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams) or len(set(streams)) != len(streams):
        raise ValueError("identity state field 'streams' must be a list of distinct str")
    for sid in streams:
        reg._add_stream(sid)
    times = meta.get("stream_time")
    if not isinstance(times, list) or len(times) != len(streams):
        raise ValueError("identity state field 'stream_time' must have one entry per stream")
    reg._stream_time = [_NEVER if t is None else float(t) for t in times]
    dim, next_gid = meta.get("dim"), meta.get("next_gid")
    if not isinstance(dim, int) or dim < 0 or not isinstance(next_gid, int) or next_gid < 1:
        raise ValueError("identity state fields 'dim' and 'next_gid' must be integers (>= 0, >= 1)")
    reg._now = _NEVER if meta.get("now") is None else float(meta["now"])
    reg._next_gid = next_gid
    if dim:
        reg._set_dim(dim)
    n_t = _rows(arrays, "t_stream")
    n_i = _rows(arrays, "i_gid")
    for fields, count in ((_TRACKLET_FIELDS, n_t), (_IDENTITY_FIELDS, n_i)):
        for name, (dtype, shape) in fields.items():
            if name not in arrays:
                raise ValueError(f"identity state lacks array {name!r}")
            value = np.asarray(arrays[name])
            expected = (count, *reg._shape(shape))
            if value.shape != expected or value.dtype != np.dtype(dtype):
                raise ValueError(f"identity state array {name!r} has {value.dtype} {value.shape}, expected {expected}")
            if value.dtype.kind == "f" and name not in ("t_first", "t_last", "t_cost", "i_last", "i_seen") and \
                    not np.isfinite(value).all():
                raise ValueError(f"identity state array {name!r} holds non-finite values")
    a = {name: np.asarray(arrays[name]) for name in (*_TRACKLET_FIELDS, *_IDENTITY_FIELDS)}
    gids = a["i_gid"]
    if ((gids < 1) | (gids >= next_gid)).any() or len(np.unique(gids)) != n_i:
        raise ValueError("identity state array 'i_gid' must hold distinct ids in [1, next_gid)")
    if ((a["t_stream"] < 0) | (a["t_stream"] >= len(streams))).any() or (a["t_local"] < 0).any():
        raise ValueError("identity state array 't_stream' or 't_local' out of range")
    if ((a["t_ident"] < -1) | (a["t_ident"] >= n_i)).any() or ((a["i_owner"] < -1) | (a["i_owner"] >= n_t)).any():
        raise ValueError("identity state arrays 't_ident' / 'i_owner' must index saved rows (or be -1)")
    if ((a["t_sample"] < -1) | (a["t_sample"] > reg.settings.samples)).any() or \
            ((a["t_phase"] < PENDING) | (a["t_phase"] > FINAL)).any() or (a["t_count"] < 0).any():
        raise ValueError("identity state arrays 't_sample', 't_phase' or 't_count' out of range")
    keys = list(zip(a["t_stream"].tolist(), a["t_local"].tolist()))
    if len(set(keys)) != n_t:
        raise ValueError("identity state repeats a (stream, track id) pair")
    for fields, count, free, cap in ((_TRACKLET_FIELDS, n_t, reg._t_free, "_t_cap"),
                                     (_IDENTITY_FIELDS, n_i, reg._i_free, "_i_cap")):
        while getattr(reg, cap) < count:
            reg._grow(fields, cap, free)
        for name in fields:
            getattr(reg, name)[:count] = a[name]
        free[:] = range(getattr(reg, cap) - 1, count - 1, -1)  # slots 0..count-1 taken, the lowest free on top
    reg.t_used[:n_t] = True
    reg._keys = {k: t for t, k in enumerate(keys)}
    reg._members = {g: [] for g in range(n_i)}
    for t in range(n_t):
        if a["t_ident"][t] >= 0:
            reg._members[int(a["t_ident"][t])].append(t)
    return reg


def _rows(arrays: Mapping[str, Any], name: str) -> int:
    if name not in arrays:
        raise ValueError(f"identity state lacks array {name!r}")
    value = np.asarray(arrays[name])
    if value.ndim < 1:
        raise ValueError(f"identity state array {name!r} must be at least 1-d")
    return int(value.shape[0])
