"""The identity registry's storage and appearance model: tracklets and identities as parallel arrays.

Every local track ``(stream, track id)`` is a *tracklet*, every global id an
*identity*; each is a slot (a row) of the arrays in :data:`TRACKLET_FIELDS` and
:data:`IDENTITY_FIELDS`, freed slots reused. An identity's model is its bank:
row 0 a smoothed prototype (an EMA of the embeddings of its final tracklets and
its founder, :func:`deepsort_edge.kernels.registry.record_frame`), rows 1.. up to
``samples`` diverse samples (tracklet means; a tracklet keeps its own sample
current until it leaves; when full, the sample closest to another one is
dropped). :class:`IdentityStore` holds the arrays and the operations that keep
them consistent (join, leave, found, drop, expire); the decisions live in
:mod:`deepsort_edge.streams.identity_decisions`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels.gallery import max_dots_many
from ..kernels.registry import any_expired, refresh_samples
from .identity_topology import pair_tables

__all__ = ["FINAL", "IDENTITY_FIELDS", "NEVER", "PENDING", "PROVISIONAL", "TRACKLET_FIELDS", "IdentityStore", "unit"]

PENDING, PROVISIONAL, FINAL = 0, 1, 2
NEVER = -np.inf

# Per-tracklet and per-identity arrays (name -> dtype, trailing shape); "D", "S", "C" are
# the embedding dimension, samples + 1 and the stream count.
TRACKLET_FIELDS: dict[str, tuple[type, tuple[str | int, ...]]] = {
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
IDENTITY_FIELDS: dict[str, tuple[type, tuple[str | int, ...]]] = {
    "i_gid": (np.int64, ()),  # 0: free slot
    "i_bank": (np.float32, ("S", "D")),  # row 0 the prototype, rows 1.. the samples
    "i_valid": (np.bool_, ("S",)),
    "i_owner": (np.int64, ("S",)),  # tracklet slot keeping a sample current, -1 none
    "i_last": (np.float64, ()),
    "i_seen": (np.float64, ("C",)),  # per stream: the latest time of its tracklets there
}


def unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero)."""
    norms = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]
    return x / np.where(norms > 0, norms, 1.0)


class IdentityStore:
    """The arrays of tracklets and identities, and the operations that keep them consistent.

    A base of :class:`~deepsort_edge.streams.identities.IdentityRegistry`; it
    expects ``settings`` (an ``IdentitySettings``), ``overlaps`` and
    ``topology`` to be set before :meth:`_reset_state`.
    """

    settings: Any
    overlaps: frozenset
    topology: dict | None

    @property
    def streams(self) -> tuple[str, ...]:
        """Stream ids seen so far, in order of appearance."""
        return tuple(self._streams)

    def __len__(self) -> int:
        """Live identities."""
        return int((self.i_gid > 0).sum())

    def _reset_state(self) -> None:
        self._streams: dict[str, int] = {}
        self._stream_time: list[float] = []
        self._keys: dict[tuple[int, int], int] = {}
        self._members: dict[int, list[int]] = {}
        self._dim = 0
        self._next_gid = 1
        self._now = NEVER
        self._t_cap = self._i_cap = 0
        for name, (dtype, shape) in {**TRACKLET_FIELDS, **IDENTITY_FIELDS}.items():
            setattr(self, name, np.zeros((0, *self._shape(shape)), dtype=dtype))
        self._t_free: list[int] = []
        self._i_free: list[int] = []
        self._stale = np.zeros(0, dtype=bool)  # per identity: a sample's owner got frames since it was refreshed

    def _shape(self, shape: tuple[str | int, ...]) -> tuple[int, ...]:
        sizes = {"D": self._dim, "S": self.settings.samples + 1, "C": len(self._streams)}
        return tuple(sizes[s] if isinstance(s, str) else s for s in shape)

    def _add_stream(self, stream_id: str) -> int:
        s = len(self._streams)
        self._streams[stream_id] = s
        self._stream_time.append(NEVER)
        seen = np.full((self._i_cap, s + 1), NEVER)
        seen[:, :s] = self.i_seen
        self.i_seen = seen
        # Per pair of streams: may one person be in both at once, and the travel-time window.
        self._busy, self._gap_lo, self._gap_hi = pair_tables(self.streams, self.overlaps, self.topology)
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
            self.i_seen[old:] = NEVER
            self.i_owner[old:] = -1
            self._stale = np.concatenate([self._stale, np.zeros(new - old, dtype=bool)])
        setattr(self, cap_name, new)
        free.extend(range(new - 1, old - 1, -1))  # lowest slot on top

    def _tracklet(self, s: int, local: int, time: float) -> int:
        t = self._keys.get((s, local))
        if t is not None:
            return t
        if not self._t_free:
            self._grow(TRACKLET_FIELDS, "_t_cap", self._t_free)
        t = self._t_free.pop()
        self._keys[(s, local)] = t
        self.t_stream[t], self.t_local[t], self.t_first[t], self.t_last[t] = s, local, time, time
        self.t_sum[t] = 0.0
        self.t_count[t], self.t_ident[t], self.t_phase[t], self.t_founder[t] = 0, -1, PENDING, False
        self.t_sample[t], self.t_next[t], self.t_cost[t], self.t_used[t] = -1, self.settings.min_frames, np.nan, True
        return t

    def _new_identity(self, t: int) -> int:
        """A new identity founded by tracklet ``t`` (its model: the tracklet's mean)."""
        if len(self) >= self.settings.max_identities:
            live = np.flatnonzero(self.i_gid > 0)
            oldest = live[np.lexsort((self.i_gid[live], self.i_last[live]))[0]]
            self._drop_identity(int(oldest))
        if not self._i_free:
            self._grow(IDENTITY_FIELDS, "_i_cap", self._i_free)
        g = self._i_free.pop()
        self.i_gid[g] = self._next_gid
        self._next_gid += 1
        mean = unit(self.t_sum[t])
        self.i_bank[g] = 0.0
        self.i_bank[g, 0] = mean
        self.i_valid[g] = False
        self.i_valid[g, 0] = True
        self.i_owner[g] = -1
        self.i_seen[g] = NEVER
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
        self._release_sample(t, g)
        self.t_ident[t], self.t_founder[t], self.t_sample[t] = -1, False, -1
        if not self._members[g]:
            self._drop_identity(g, keep_tracklets=True)
            return
        s = self.t_stream[t]
        others = [m for m in self._members[g] if self.t_stream[m] == s]
        self.i_seen[g, s] = max((self.t_last[m] for m in others), default=NEVER)

    def _release_sample(self, t: int, g: int) -> None:
        """The sample ``t`` kept current, if any, keeps ``t``'s mean as of now and no owner."""
        k = self.t_sample[t]
        if k >= 0:
            self.i_bank[g, k] = unit(self.t_sum[t])
            self.i_owner[g, k] = -1

    def _offer_sample(self, t: int, g: int) -> None:
        """Keep tracklet ``t``'s mean as a sample of ``g``; when full, drop the most redundant one."""
        n = self.settings.samples
        if n == 0:
            return
        valid = self.i_valid[g, 1:]
        mean = unit(self.t_sum[t]).astype(np.float32)
        if not valid.all():
            k = 1 + int(np.flatnonzero(~valid)[0])
        else:
            self._refresh_samples()
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
        self.i_seen[g] = NEVER
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
        if not any_expired(self.i_gid, self.i_last, self.t_used, self.t_last, cutoff):
            return
        for g in np.flatnonzero((self.i_gid > 0) & (self.i_last < cutoff)):
            self._drop_identity(int(g))
        for t in np.flatnonzero(self.t_used & (self.t_last < cutoff)):
            t = int(t)
            g = int(self.t_ident[t])
            if g >= 0:
                self._members[g].remove(t)
                self._release_sample(t, g)
            self._drop_tracklet(t)

    def _refresh_samples(self) -> None:
        """Set the samples that a tracklet keeps current to that tracklet's mean."""
        if self._dim:
            refresh_samples(self._stale, self.i_owner, self.i_bank, self.t_sum)

    def _distances(self, means: np.ndarray, live: np.ndarray) -> np.ndarray:
        self._refresh_samples()
        # Valid bank rows are a prefix (the prototype, then samples in the order they came).
        counts = self.i_valid.sum(axis=1).astype(np.intp)
        out = np.empty((len(means), live.size))
        max_dots_many(self.i_bank, counts, live.astype(np.intp), np.ascontiguousarray(means, np.float32), out)
        return 1.0 - out

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
