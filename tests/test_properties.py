"""Property-based tests over random detection streams (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from deepsort_edge import DeepSORTTracker
from deepsort_edge.kernels.costs import ASSIGNMENT_LIMIT, INFEASIBLE
from deepsort_edge.kernels.lap import solve_assignment

coordinate = st.floats(0, 600, allow_nan=False, width=32)


@st.composite
def frame_boxes(draw) -> np.ndarray:
    n = draw(st.integers(0, 8))
    rows = []
    for _ in range(n):
        x, y = draw(coordinate), draw(coordinate)
        w, h = draw(st.floats(1, 120)), draw(st.floats(1, 200))
        rows.append([x, y, x + w, y + h])
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


@st.composite
def streams(draw):
    frames = draw(st.lists(frame_boxes(), min_size=1, max_size=25))
    jitter_seed = draw(st.integers(0, 2**16))
    return frames, jitter_seed


tracker_settings = st.fixed_dictionaries(
    {
        "minimum_consecutive_frames": st.integers(1, 3),
        "lost_track_buffer": st.integers(0, 5),
        "appearance_mode": st.sampled_from(["gallery", "ema"]),
        "matching": st.sampled_from(["cascade", "global"]),
        "gating": st.sampled_from(["full", "position"]),
        "nn_budget": st.integers(1, 4),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), config=tracker_settings, with_embeddings=st.booleans())
def test_random_streams_keep_the_tracker_contract(stream, config, with_embeddings):
    frames, seed = stream
    rng = np.random.default_rng(seed)
    tracker = DeepSORTTracker(**config)
    highest = 0
    retired: set[int] = set()
    live_before: set[int] = set()
    for boxes in frames:
        # Repeat some boxes with jitter so tracks actually form.
        boxes = np.vstack([boxes, boxes[: len(boxes) // 2] + rng.normal(scale=0.5, size=(len(boxes) // 2, 4))])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = rng.uniform(0, 1, len(boxes))
        emb = rng.normal(size=(len(boxes), 8)) if with_embeddings else None
        ids = tracker.update_arrays(boxes, scores, emb)
        assert ids.shape == (len(boxes),) and ids.dtype == np.int64
        active = ids[ids >= 0]
        assert len(set(active.tolist())) == len(active), "an id was given to two detections"
        live = {t.track_id for t in tracker.tracks if t.confirmed}
        assert set(active.tolist()) <= live
        assert not (set(active.tolist()) & retired), "a deleted track's id came back"
        for new_id in sorted(set(active.tolist()) - set(range(1, highest + 1))):
            assert new_id == highest + 1, "ids must be handed out consecutively"
            highest = new_id
        retired |= live_before - live
        live_before = live


@settings(max_examples=200, deadline=None)
@given(
    shape=st.tuples(st.integers(0, 9), st.integers(0, 9)),
    seed=st.integers(0, 2**16),
    infeasible_fraction=st.floats(0, 0.9),
)
def test_assignment_is_optimal_against_scipy(shape, seed, infeasible_fraction):
    """The tracker's assignment call (feasible costs <= 1) matches scipy's optimum."""
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0, 1, shape)
    cost[rng.random(shape) < infeasible_fraction] = INFEASIBLE
    row_to_col, col_to_row = solve_assignment(np.ascontiguousarray(cost), ASSIGNMENT_LIMIT)
    pairs = [(r, c) for r, c in enumerate(row_to_col) if c >= 0]
    assert all(cost[r, c] < INFEASIBLE for r, c in pairs)
    assert all(col_to_row[c] == r for r, c in pairs)
    # Reference: maximum-cardinality, minimum-cost matching over feasible pairs,
    # via scipy on a cost where every feasible pair is worth a large bonus.
    n, m = shape
    if n == 0 or m == 0:
        assert not pairs
        return
    big = np.where(cost < INFEASIBLE, cost - 1000.0, 0.0)
    rows, cols = linear_sum_assignment(big)
    reference = [(r, c) for r, c in zip(rows, cols) if cost[r, c] < INFEASIBLE]
    assert len(pairs) == len(reference)
    assert np.isclose(sum(cost[r, c] for r, c in pairs), sum(cost[r, c] for r, c in reference))
