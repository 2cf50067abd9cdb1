"""The identity registry's compiled per-frame path (kernels/registry.py) against plain numpy / scipy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from deepsort_edge.streams.identities import IdentityRegistry
from deepsort_edge.kernels.registry import (
    ROWS_BAD_NORM,
    ROWS_OK,
    ROWS_REPEAT,
    decide,
    decision_costs,
    forbidden_pair,
    record_frame,
    unit_rows,
)


def test_unit_rows_normalises_and_refuses_bad_rows() -> None:
    emb = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, np.nan], [0.0, 2.0]])
    ids = np.array([5, -1, -1, 7])
    out = np.empty((2, 2), np.float32)
    assert unit_rows(ids, emb, np.array([0, 3]), out) == ROWS_OK
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    for rows, bad in (([0, 1], ROWS_BAD_NORM), ([2], ROWS_BAD_NORM), ([0, 3], ROWS_REPEAT)):
        same = np.array([5, -1, -1, 5]) if bad == ROWS_REPEAT else ids
        assert unit_rows(same, emb, np.array(rows), np.empty((len(rows), 2), np.float32)) == bad


def _forbidden_reference(seen, first, s, busy, lo, hi) -> bool:
    """The rule in plain Python: seen at once where that is impossible, or a gap outside the travel window."""
    if any(busy[s, c] and seen[c] >= first for c in range(len(seen))):
        return True
    if not np.isfinite(max(seen)):
        return False
    where = int(np.argmax(seen))
    gap = first - seen[where]
    return bool(gap < lo[where, s] or gap > hi[where, s])


def test_forbidden_pair_matches_the_rule() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        c = int(rng.integers(1, 4))
        seen = np.where(rng.random(c) < 0.3, -np.inf, rng.uniform(0, 10, c))
        busy = rng.random((c, c)) < 0.7
        lo, hi = rng.uniform(-2, 3, (c, c)), rng.uniform(3, 12, (c, c))
        s, first = int(rng.integers(c)), float(rng.uniform(0, 12))
        assert forbidden_pair(seen, first, s, busy, lo, hi) == _forbidden_reference(seen, first, s, busy, lo, hi)


def _brute_force(cost: np.ndarray, limit: float) -> float:
    """Least total over every partial matching: pairs at their cost, each unmatched row or column limit / 2."""
    n, m = cost.shape
    best = n * limit / 2 + m * limit / 2
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                pairs = cost[list(rows), list(cols)]
                if np.isfinite(pairs).all() and (pairs <= limit).all():
                    best = min(best, pairs.sum() + (n - k) * limit / 2 + (m - k) * limit / 2)
    return best


def _scipy_total(cost: np.ndarray, limit: float) -> float:
    """The same optimum through scipy: each row and column may pair with its own "unassigned" dummy."""
    n, m = cost.shape
    big = 1e9
    full = np.full((n + m, m + n), big)
    full[:n, :m] = np.where(np.isfinite(cost) & (cost <= limit), cost, big)
    full[:n, m:] = np.where(np.eye(n, dtype=bool), limit / 2, big)
    full[n:, :m] = np.where(np.eye(m, dtype=bool), limit / 2, big)
    full[n:, m:] = 0.0
    r, c = linear_sum_assignment(full)
    return float(full[r, c].sum())


def test_decide_is_an_optimal_partial_assignment() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        n, m = int(rng.integers(1, 4)), int(rng.integers(0, 5))
        cost = rng.uniform(0.0, 0.6, (n, m))
        cost[rng.random((n, m)) < 0.2] = np.inf
        limit = 0.3
        row_to_col = decide(cost, limit)
        matched = row_to_col >= 0
        assert len(set(row_to_col[matched].tolist())) == int(matched.sum())
        total = cost[matched, row_to_col[matched]].sum() + (n - matched.sum()) * limit / 2 + \
            (m - matched.sum()) * limit / 2
        assert total == pytest.approx(_brute_force(cost, limit)) == pytest.approx(_scipy_total(cost, limit))


def _decision_reference(reg: IdentityRegistry, rows: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """``decision_costs`` in plain numpy over a registry's arrays: (identity slots, cost)."""
    margin = reg.settings.margin
    live = np.flatnonzero(reg.i_gid > 0)
    means = reg.t_sum[rows] / np.linalg.norm(reg.t_sum[rows], axis=1, keepdims=True)
    args = (reg._busy, reg._gap_lo, reg._gap_hi)
    forbid = np.array([[_forbidden_reference(reg.i_seen[g], reg.t_first[t], s, *args) for g in live] for t in rows])
    own = reg.t_ident[rows]
    keep = ~forbid.all(axis=0) | np.isin(live, own)
    live, forbid = live[keep], forbid[:, keep]
    counts = reg.i_valid.sum(axis=1)
    raw = np.array([[1.0 - max(means[r] @ reg.i_bank[g, k] for k in range(counts[g])) for g in live]
                    for r in range(len(rows))]).reshape(len(rows), len(live))
    cost = np.where(forbid, np.inf, raw)
    for r, t in enumerate(rows):
        g = reg.t_ident[t]
        if g < 0:
            continue
        j = int(np.flatnonzero(live == g)[0])
        if reg.t_founder[t]:
            cost[r] += margin
            cost[r, j] = np.inf
            continue
        seen = reg.i_seen[g].copy()
        others = [m for m in np.flatnonzero(reg.t_used) if m != t and reg.t_ident[m] == g and reg.t_stream[m] == s]
        seen[s] = max((reg.t_last[m] for m in others), default=-np.inf)
        cost[r, j] = raw[r, j] - margin if not _forbidden_reference(seen, reg.t_first[t], s, *args) else np.inf
    return live, cost


def test_decision_costs_match_the_plain_rule_on_a_busy_registry() -> None:
    """Mid-way through a seeded three-camera run (links, founders, samples, forbidden pairs): every due
    set's costs are those the rule gives, computed plainly."""
    rng = np.random.default_rng(2)
    people = rng.normal(size=(7, 12))
    reg = IdentityRegistry(min_frames=2, link_threshold=0.5, samples=2, topology={("a", "b"): (0.0, 2.0),
                                                                                   ("b", "c"): (0.5, 3.0)})
    checked = 0
    for step in range(120):
        for k, stream in enumerate(("a", "b", "c")):
            here = [p for p in range(7) if (p + step // 15 + k) % 3 == 0]
            tracks = np.array([100 * p + step // 15 for p in here])
            reg.observe(stream, tracks, people[here] + 0.4 * rng.normal(size=(len(here), 12)), time=step / 10)
            s = reg._streams[stream]
            rows = np.array([reg._keys[(s, int(t))] for t in tracks], dtype=np.intp)
            if not rows.size:
                continue
            reg._refresh_samples()
            live, raw, cost = decision_costs(
                rows, s, reg.settings.margin, reg._busy, reg._gap_lo, reg._gap_hi, reg.t_sum, reg.t_first,
                reg.t_last, reg.t_stream, reg.t_ident, reg.t_founder, reg.t_used, reg.i_gid, reg.i_seen,
                reg.i_bank, reg.i_valid)
            want_live, want_cost = _decision_reference(reg, rows, s)
            np.testing.assert_array_equal(live, want_live)
            np.testing.assert_allclose(cost, want_cost, atol=1e-5)
            checked += int(np.isfinite(cost).sum())
    assert checked > 200 and len(reg) >= 7


def test_record_frame_matches_numpy() -> None:
    """Sums, counts, times, the prototype's EMA (final or founding rows only), due and suspect flags."""
    rng = np.random.default_rng(3)
    n_t, n_i, dim = 6, 3, 5
    state = dict(
        t_sum=rng.normal(size=(n_t, dim)).astype(np.float32), t_count=np.array([0, 1, 3, 9, 2, 4]),
        t_last=np.array([-np.inf, 0.1, 0.2, 0.3, 0.4, 0.5]), t_ident=np.array([-1, 0, 0, 1, 2, -1]),
        t_phase=np.array([0, 1, 2, 2, 1, 0], np.int8), t_founder=np.array([0, 1, 0, 0, 0, 0], bool),
        t_next=np.array([1, 4, 4, 4, 3, 8]), t_sample=np.array([-1, 1, -1, -1, 1, -1]),
        i_gid=np.array([4, 9, 2]), i_last=np.zeros(n_i), i_seen=np.array([[0.5, -np.inf], [0.0, 0.95], [0.0, 0.0]]),
        i_bank=rng.normal(size=(n_i, 2, dim)).astype(np.float32), stale=np.zeros(n_i, bool))
    busy = np.ones((2, 2), bool)
    slots = np.array([0, 1, 2, 3, 4])
    emb = rng.normal(size=(5, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    want = {k: v.copy() for k, v in state.items()}
    previous, out = np.empty(5), np.empty(5, np.int64)
    due, suspect = record_frame(slots, emb, 0, 1.0, 0.9, busy, *state.values(), previous, out)
    np.testing.assert_array_equal(previous, want["t_last"][slots])
    want["t_sum"][slots] += emb
    want["t_count"][slots] += 1
    np.testing.assert_allclose(state["t_sum"], want["t_sum"], rtol=1e-6)
    np.testing.assert_array_equal(state["t_count"], want["t_count"])
    assert (state["t_last"][slots] == 1.0).all()
    assert out.tolist() == [-1, 4, 4, 9, 2]
    # Rows 1 (founder) and 2 (final) move identity 0's prototype, in that order; row 3 (final) identity 1's.
    proto = want["i_bank"][:, 0].astype(np.float64)
    for r, g in ((1, 0), (2, 0), (3, 1)):
        proto[g] = 0.9 * proto[g] + 0.1 * emb[r]
        proto[g] /= np.linalg.norm(proto[g])
    np.testing.assert_allclose(state["i_bank"][:2, 0], proto[:2], rtol=1e-5)
    np.testing.assert_array_equal(state["i_bank"][2], want["i_bank"][2])  # row 4 is provisional: no EMA
    assert state["stale"].tolist() == [True, False, True]  # rows 1 and 4 keep samples current
    assert state["i_seen"][:, 0].tolist() == [1.0, 1.0, 1.0] and state["i_last"].tolist() == [1.0, 1.0, 1.0]
    assert due  # row 0: count 1 reached t_next 1
    # Rows 1 and 2 share identity 0 in one frame, and identity 1 was seen in stream 1 after row 3's last time.
    assert suspect
    # One row per identity, none seen elsewhere since: nothing suspect; nothing due.
    one = np.array([3])
    due, suspect = record_frame(one, emb[:1], 1, 2.0, 0.9, busy, *state.values(), np.empty(1), np.empty(1, np.int64))
    assert not due and not suspect
