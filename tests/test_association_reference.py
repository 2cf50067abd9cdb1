"""The frame kernel's association against a dense reference (scipy per cascade level, IoU and low-score stages).

``tests/reference.py::associate_dense`` recomputes one frame's matches from
the tracker's saved state before the frame, densely and with scipy's
``linear_sum_assignment``; the kernel's matches are read back from the ids it
returns and the state after the frame. Random small scenes (hypothesis) over
the settings that change association. Continuous random values make the
optimum unique almost surely; where it is not (a tie), the two assignments
must still match as many pairs at the same total cost.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepsort_edge import DeepSORTTracker
from tests import reference as ref

CONFIGS = st.fixed_dictionaries({
    "appearance_mode": st.sampled_from(["ema", "gallery"]),
    "motion_cost": st.sampled_from(["iou", "mahalanobis"]),
    "matching": st.sampled_from(["cascade", "global"]),
    "low_score_matching": st.booleans(),
    "class_aware": st.booleans(),
    "lost_track_rule": st.sampled_from(["none", "overlap", "far"]),
    "recent_track_rule": st.sampled_from(["none", "far"]),
    "appearance_weight": st.sampled_from([1.0, 0.5, 0.0]),
    "appearance_threshold": st.sampled_from([0.2, 0.6, 2.0]),
    "distance_metric": st.sampled_from(["cosine", "euclidean"]),
    "gating": st.sampled_from(["full", "position"]),
    "iou_recovery_frames": st.sampled_from([1, 2, 3]),
})


def _scene(rng: np.random.Generator, n_objects: int, frames: int, with_embeddings: bool):
    """Frames of people drifting with noise, misses, clutter, two classes and noisy identity embeddings."""
    centre = rng.uniform([60, 80], [540, 320], (n_objects, 2))
    velocity = rng.normal(0, 4, (n_objects, 2))
    height = rng.uniform(40, 140, n_objects)
    identity = rng.normal(size=(n_objects, 4))
    kind = rng.integers(0, 2, n_objects)
    out = []
    for _ in range(frames):
        centre += velocity + rng.normal(0, 3, centre.shape)
        seen = rng.random(n_objects) > 0.2
        h = height[seen] * rng.uniform(0.9, 1.1, seen.sum())
        c = centre[seen]
        boxes = np.stack([c[:, 0] - 0.2 * h, c[:, 1] - h / 2, c[:, 0] + 0.2 * h, c[:, 1] + h / 2], 1)
        emb = identity[seen] + rng.normal(0, 0.6, (seen.sum(), 4))
        classes = np.where(rng.random(seen.sum()) < 0.1, 1 - kind[seen], kind[seen])  # detector class noise
        clutter = rng.integers(0, 3)
        if clutter:
            xy = rng.uniform([40, 40], [560, 360], (clutter, 2))
            ch = rng.uniform(40, 140, clutter)
            boxes = np.vstack([boxes, np.stack([xy[:, 0] - 0.2 * ch, xy[:, 1] - ch / 2,
                                                xy[:, 0] + 0.2 * ch, xy[:, 1] + ch / 2], 1)])
            emb = np.vstack([emb, rng.normal(size=(clutter, 4))])
            classes = np.r_[classes, rng.integers(0, 2, clutter)]
        scores = rng.uniform(0.05, 1.0, len(boxes))
        unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        out.append((boxes, scores, unit.astype(np.float32) if with_embeddings else None, classes.astype(np.int64)))
    return out


def kernel_matches(slots_before: np.ndarray, store, ids: np.ndarray) -> list[tuple[int, int]]:
    """``(track, detection)`` pairs the kernel matched, read back from its track store and ids.

    ``slots_before`` are the live slots before the frame in birth order (the
    tracks of the state dict). A slot keeps its track while it lives, and a
    track born this frame has age 1, so an old track was matched when its
    slot is live with age >= 2 and no frame since update. Tentative tracks
    hold one hit (two confirm), so every matched track is confirmed after
    the frame and its id names the detection it took.
    """
    live = set(store.order.tolist())
    pairs = []
    for t, slot in enumerate(slots_before):
        if slot in live and store.age[slot] >= 2 and store.time_since_update[slot] == 0:
            (row,) = np.flatnonzero(ids == store.track_id[slot])
            pairs.append((t, int(row)))
    return pairs


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=CONFIGS,
    seed=st.integers(0, 2**32 - 1),
    n_objects=st.integers(1, 9),
    history=st.integers(1, 8),
    with_embeddings=st.booleans(),
)
def test_kernel_association_equals_the_dense_reference(config, seed, n_objects, history, with_embeddings):
    rng = np.random.default_rng(seed)
    frames = _scene(rng, n_objects, history + 1, with_embeddings)
    tracker = DeepSORTTracker(minimum_consecutive_frames=2, max_age=3, nn_budget=3, **config)
    for boxes, scores, emb, classes in frames[:-1]:
        tracker.update_arrays(boxes, scores, emb, class_id=classes)
    boxes, scores, emb, classes = frames[-1]
    before = tracker.state_dict()
    slots = tracker._store.order.copy()
    expected = ref.associate_dense(before, boxes, scores, emb, classes)
    ids = tracker.update_arrays(boxes, scores, emb, class_id=classes)
    got = sorted(kernel_matches(slots, tracker._store, ids))
    want = sorted((t, d) for _, t, d in expected)
    if got != want:
        # A tie: a different assignment is right only if it is just as large and just as cheap.
        costs = ref.association_costs(before, boxes, scores, emb, classes)

        def cost(t: int, d: int) -> float:
            first = costs["confirmed"][t] and costs["high"][d] and np.isfinite(costs["cascade"][t, d])
            return costs["cascade"][t, d] if first else costs["iou"][t, d]

        assert len(got) == len(want), (got, want)
        assert np.isclose(sum(cost(*p) for p in got), sum(cost(*p) for p in want)), (got, want)


def test_reference_solver_prefers_more_pairs_then_less_cost():
    inf = np.inf
    cost = np.array([[0.1, 0.2], [0.05, inf]])
    # Min cost alone would take (1, 0) and leave row 0 with (0, 1): both pairs, total 0.25.
    assert sorted(ref.max_cardinality_min_cost(cost)) == [(0, 1), (1, 0)]
    assert ref.max_cardinality_min_cost(np.full((2, 3), inf)) == []
    assert ref.max_cardinality_min_cost(np.zeros((0, 3))) == []


def _one_box_both_ways(tracker: DeepSORTTracker, left: float, seen: np.ndarray) -> list[tuple[int, int]]:
    """The kernel's matches of one 40x100 box at x ``left`` looking like ``seen``, checked against the reference."""
    boxes = np.array([[left, 100, left + 40, 200]])
    before = tracker.state_dict()
    slots = tracker._store.order.copy()
    expected = ref.associate_dense(before, boxes, np.ones(1), seen, np.zeros(1, np.int64))
    got = kernel_matches(slots, tracker._store, tracker.update_arrays(boxes, None, seen))
    assert got == [(t, d) for _, t, d in expected], (tracker.settings, left)
    return got


def test_lost_track_off_its_box_needs_the_closer_look_under_the_lost_track_rule():
    """A track lost two frames meets a non-overlapping detection that looks 0.6 thresholds away.

    (appearance_threshold 0.5.) One detection lies beyond the motion-only gate (squared distance about
    13 against 9.49), one inside it (about 6). The reference and the kernel agree under every rule, and
    the rule decides: ``overlap`` refuses both, ``far`` only the one beyond the gate, ``none`` neither.
    """
    unit = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)
    seen = np.array([[0.6, 0.8, 0.0, 0.0]], np.float32)  # cosine distance 0.4: within 0.5, not within 0.25
    outcomes = {}
    for rule in ("none", "overlap", "far"):
        for left in (190.0, 170.0):  # the prediction is [129, 100, 169, 200]: neither overlaps it
            tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_threshold=0.5, lost_track_rule=rule,
                                      low_score_matching=False)
            for step in range(4):
                tracker.update_arrays(np.array([[100.0 + 6 * step, 100, 140 + 6 * step, 200]]), None, unit)
            for _ in range(2):
                tracker.update_arrays(np.zeros((0, 4)))
            outcomes[rule, left] = _one_box_both_ways(tracker, left, seen)
    assert outcomes == {("none", 190.0): [(0, 0)], ("none", 170.0): [(0, 0)],
                        ("overlap", 190.0): [], ("overlap", 170.0): [],
                        ("far", 190.0): [], ("far", 170.0): [(0, 0)]}


def test_recent_track_far_off_its_box_needs_the_closer_look_under_the_recent_track_rule():
    """A track matched the frame before meets a detection that looks 0.8 thresholds away, beyond the motion gate.

    (appearance_threshold 0.5; the prediction is [121, 100, 161, 200].) The detection at x 170 misses the
    predicted box (squared gate distance about 25 against 9.49: only appearance's wider gate lets it in);
    the one at x 150 overlaps it. ``far`` refuses the first only, ``none`` neither; the reference agrees.
    """
    unit = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)
    seen = np.array([[0.6, 0.8, 0.0, 0.0]], np.float32)  # cosine distance 0.4: within 0.5, not within 0.25
    outcomes = {}
    for rule in ("none", "far"):
        for left in (170.0, 150.0):
            tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_threshold=0.5, recent_track_rule=rule,
                                      low_score_matching=False)
            for step in range(4):
                tracker.update_arrays(np.array([[100.0 + 6 * step, 100, 140 + 6 * step, 200]]), None, unit)
            outcomes[rule, left] = _one_box_both_ways(tracker, left, seen)
    assert outcomes == {("none", 170.0): [(0, 0)], ("none", 150.0): [(0, 0)],
                        ("far", 170.0): [], ("far", 150.0): [(0, 0)]}
