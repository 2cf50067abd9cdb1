"""The identity registry's per-frame work (``deepsort_edge.streams.identities``): plain functions over its arrays.

Tracklets (local tracks) and identities are rows of parallel arrays (see
``IdentityRegistry``): ``t_*`` per tracklet slot, ``i_*`` per identity slot,
an identity's bank ``i_bank[g]`` holds its prototype (row 0) and samples.
Times are float64 seconds, ``-inf`` for never. Embeddings are unit float32.

- :func:`record_frame`: one frame of one stream: add each row's embedding to
  its tracklet, refresh its identity's times and prototype, and say which
  rows are due for a decision or may clash (the caller then takes the slow,
  rare path);
- :func:`decision_costs`: the cost of every due tracklet joining every live
  identity (forbidden pairs ``inf``), with the margins of the decision rule;
- :func:`decide`: that cost solved by the shared assignment solver.
"""

from __future__ import annotations

import numpy as np

from .cache import use_kernel_cache
from .gallery import max_dots
from .jit import kernel
from .lap import dense_to_csr, solve_sparse

__all__ = ["any_expired", "decide", "decision_costs", "forbidden_pair", "record_frame", "refresh_samples",
           "unit_rows"]

FINAL = 2


@kernel(fastmath=True)
def _unit_into(x: np.ndarray, out: np.ndarray) -> None:
    """``out = x / |x|`` (float32; a zero vector stays zero)."""
    acc = np.float32(0.0)
    for k in range(x.shape[0]):
        acc += x[k] * x[k]
    norm = np.sqrt(acc)
    if norm > 0:
        inv = np.float32(1.0) / norm  # one division: a product per entry vectorises, a quotient barely
        for k in range(x.shape[0]):
            out[k] = x[k] * inv
    else:
        for k in range(x.shape[0]):
            out[k] = x[k]


ROWS_OK, ROWS_BAD_NORM, ROWS_REPEAT = 0, 1, 2


@kernel(fastmath=True)
def unit_rows(ids: np.ndarray, emb: np.ndarray, rows: np.ndarray, out: np.ndarray) -> int:
    """``out[r] = emb[rows[r]] / |emb[rows[r]]|`` (float32), checking the rows.

    Returns:
        ``ROWS_OK``; ``ROWS_BAD_NORM`` when a row is not finite or zero;
        ``ROWS_REPEAT`` when ``ids[rows]`` repeats an id. ``out`` is then
        partly written.
    """
    n = rows.shape[0]
    for r in range(n):
        row = rows[r]
        acc = np.float32(0.0)
        for k in range(emb.shape[1]):
            x = np.float32(emb[row, k])
            acc += x * x
        norm = np.sqrt(acc)
        if not (np.isfinite(norm) and norm > 0):  # (a huge finite row overflows: also refused)
            return ROWS_BAD_NORM
        inv = np.float32(1.0) / norm
        for k in range(emb.shape[1]):
            out[r, k] = np.float32(emb[row, k]) * inv
    tracked = np.sort(ids[rows])
    for r in range(1, n):
        if tracked[r] == tracked[r - 1]:
            return ROWS_REPEAT
    return ROWS_OK


@kernel
def any_expired(i_gid: np.ndarray, i_last: np.ndarray, t_used: np.ndarray, t_last: np.ndarray,
                cutoff: float) -> bool:
    """True when a live identity or tracklet was last seen before ``cutoff`` (then the caller drops them)."""
    for g in range(i_gid.shape[0]):
        if i_gid[g] > 0 and i_last[g] < cutoff:
            return True
    for t in range(t_used.shape[0]):
        if t_used[t] and t_last[t] < cutoff:
            return True
    return False


@kernel
def record_frame(
    slots: np.ndarray, emb: np.ndarray, s: int, time: float, momentum: float, busy: np.ndarray,
    t_sum: np.ndarray, t_count: np.ndarray, t_last: np.ndarray, t_ident: np.ndarray, t_phase: np.ndarray,
    t_founder: np.ndarray, t_next: np.ndarray, t_sample: np.ndarray, i_gid: np.ndarray, i_last: np.ndarray,
    i_seen: np.ndarray, i_bank: np.ndarray, stale: np.ndarray, previous: np.ndarray, out: np.ndarray,
) -> tuple[bool, bool]:
    """Record one frame of stream ``s``: row ``r`` is tracklet ``slots[r]`` with unit embedding ``emb[r]``.

    Adds the embedding to the tracklet's sum and count and sets its last
    time; a tracklet with an identity sets that identity's last times and,
    when it counts toward the model (final, or the identity's founder),
    moves the prototype toward it by ``1 - momentum`` (then unit length).
    A tracklet that keeps a sample of its identity current marks the
    identity ``stale`` (see :func:`refresh_samples`). Writes ``previous[r]``
    (the tracklet's last time before this frame) and ``out[r]`` (its global
    id, -1 none).

    Returns:
        ``(due, suspect)``: some row is due for a decision (not final and
        its count reached ``t_next``); some rows may put one identity in two
        places (two rows of one identity, or an identity seen in a stream
        ``busy[s]`` marks since the row's tracklet was last seen).
    """
    n = slots.shape[0]
    dim = emb.shape[1]
    due = False
    suspect = False
    mixed = np.empty(dim, np.float32)
    keep = np.float32(momentum)
    take = np.float32(1.0 - momentum)
    for r in range(n):
        t = slots[r]
        previous[r] = t_last[t]
        for k in range(dim):
            t_sum[t, k] += emb[r, k]
        t_count[t] += 1
        t_last[t] = time
        g = t_ident[t]
        out[r] = i_gid[g] if g >= 0 else -1
        if t_phase[t] != FINAL and t_count[t] >= t_next[t]:
            due = True
        if g < 0:
            continue
        for c in range(i_seen.shape[1]):
            if c != s and busy[s, c] and i_seen[g, c] > previous[r]:
                suspect = True
        for q in range(r):
            if t_ident[slots[q]] == g:
                suspect = True
        i_last[g] = time
        i_seen[g, s] = time
        if t_sample[t] >= 0:
            stale[g] = True
        if t_phase[t] == FINAL or t_founder[t]:
            for k in range(dim):
                mixed[k] = keep * i_bank[g, 0, k] + take * emb[r, k]
            _unit_into(mixed, i_bank[g, 0])
    return due, suspect


@kernel
def refresh_samples(stale: np.ndarray, i_owner: np.ndarray, i_bank: np.ndarray, t_sum: np.ndarray) -> None:
    """The samples of ``stale`` identities that a tracklet keeps current: set to that tracklet's mean (unit)."""
    for g in range(stale.shape[0]):
        if not stale[g]:
            continue
        stale[g] = False
        for k in range(i_owner.shape[1]):
            m = i_owner[g, k]
            if m >= 0:
                _unit_into(t_sum[m], i_bank[g, k])


@kernel
def forbidden_pair(seen: np.ndarray, first: float, s: int, busy: np.ndarray, gap_lo: np.ndarray,
                   gap_hi: np.ndarray) -> bool:
    """May a tracklet of stream ``s`` that began at ``first`` not join an identity with per-stream last
    times ``seen (C,)``? Forbidden when the identity was seen at or after ``first`` in a stream where
    being at once is impossible, or when the gap since it was last seen is outside the travel window
    from that stream (``gap_lo``/``gap_hi``, ``(C, C)``)."""
    last = -np.inf
    where = 0
    for c in range(seen.shape[0]):
        if busy[s, c] and seen[c] >= first:
            return True
        if seen[c] > last:
            last = seen[c]
            where = c
    if last == -np.inf:
        return False
    gap = first - last
    return gap < gap_lo[where, s] or gap > gap_hi[where, s]


@kernel
def decision_costs(
    rows: np.ndarray, s: int, margin: float, busy: np.ndarray, gap_lo: np.ndarray, gap_hi: np.ndarray,
    t_sum: np.ndarray, t_first: np.ndarray, t_last: np.ndarray, t_stream: np.ndarray, t_ident: np.ndarray,
    t_founder: np.ndarray, t_used: np.ndarray, i_gid: np.ndarray, i_seen: np.ndarray, i_bank: np.ndarray,
    i_valid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The assignment of due tracklets ``rows`` (of stream ``s``) to live identities, as costs.

    Columns are the live identity slots (ascending) that some row may join
    or that are some row's own identity. ``raw[r, j]``: the cosine distance
    of the row's mean to the nearest of the identity's valid bank entries
    (``i_valid``: the valid ones are a prefix). ``cost``: ``raw`` with forbidden pairs ``inf``; a row's
    own identity (judged without the row itself) costs ``raw - margin``; a
    founder's other options cost ``raw + margin`` and its own identity is
    ``inf`` (staying alone is "unassigned").

    Returns:
        ``(columns (L,) identity slots, raw (R, L), cost (R, L))``.
    """
    n_rows = rows.shape[0]
    n_ident = i_gid.shape[0]
    dim = t_sum.shape[1]
    means = np.empty((n_rows, dim), np.float32)
    first = np.empty(n_rows)
    for r in range(n_rows):
        _unit_into(t_sum[rows[r]], means[r])
        first[r] = t_first[rows[r]]
    forbid = np.zeros((n_rows, n_ident), np.bool_)
    wanted = np.zeros(n_ident, np.bool_)
    for g in range(n_ident):
        if i_gid[g] <= 0:
            continue
        for r in range(n_rows):
            forbid[r, g] = forbidden_pair(i_seen[g], first[r], s, busy, gap_lo, gap_hi)
            if not forbid[r, g] or t_ident[rows[r]] == g:
                wanted[g] = True
    columns = np.flatnonzero(wanted)
    n_cols = columns.shape[0]
    raw = np.empty((n_rows, n_cols))
    cost = np.empty((n_rows, n_cols))
    order = np.arange(n_rows)
    best = np.empty(n_rows)
    own_seen = np.empty(i_seen.shape[1])
    for j in range(n_cols):
        g = columns[j]
        count = 0
        while count < i_valid.shape[1] and i_valid[g, count]:
            count += 1
        max_dots(i_bank[g], count, means, order, 0, n_rows, best)
        for r in range(n_rows):
            raw[r, j] = 1.0 - best[r]
            cost[r, j] = np.inf if forbid[r, g] else raw[r, j]
    for r in range(n_rows):
        t = rows[r]
        g = t_ident[t]
        if g < 0:
            continue
        j = np.searchsorted(columns, g)
        if t_founder[t]:
            for q in range(n_cols):
                cost[r, q] += margin  # a link must beat staying alone by the margin
            cost[r, j] = np.inf
            continue
        # Its own identity, judged without itself: its stream's time is that of the identity's other tracklets.
        for c in range(own_seen.shape[0]):
            own_seen[c] = i_seen[g, c]
        own_seen[s] = -np.inf
        for m in range(t_used.shape[0]):
            if t_used[m] and m != t and t_ident[m] == g and t_stream[m] == s and t_last[m] > own_seen[s]:
                own_seen[s] = t_last[m]
        allowed = not forbidden_pair(own_seen, first[r], s, busy, gap_lo, gap_hi)
        cost[r, j] = raw[r, j] - margin if allowed else np.inf
    return columns, raw, cost


@kernel
def decide(cost: np.ndarray, limit: float) -> np.ndarray:
    """``row_to_col`` of the minimum-cost partial assignment (leaving a row unassigned costs ``limit``)."""
    indptr, indices, values = dense_to_csr(cost, limit)
    row_to_col, _ = solve_sparse(indptr, indices, values, cost.shape[1], limit)
    return row_to_col


use_kernel_cache()  # relocatable, read-only-safe cache folders: see kernels/cache.py
