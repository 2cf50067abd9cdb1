"""Scene adaptation: calibration, LDA, evidence, state and "off" against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from deepsort_edge import DeepSORTTracker
from deepsort_edge.appearance import adaptation as ad
from deepsort_edge.appearance import evidence_pairs
from deepsort_edge.appearance.adaptation import PairBuffer, calibrated_threshold, fit_projection, roc_auc
from deepsort_edge.appearance.evidence_pairs import RunningScatter


def _reference_threshold(same: np.ndarray, different: np.ndarray, cost: float) -> float:
    """Plain loops: every cut between sorted distinct values, errors counted one by one."""
    values = sorted(set([0.0, *same.tolist(), *different.tolist()]))
    best, best_error = None, None
    for i, cut in enumerate(values):
        missed = sum(1 for d in same if d > cut) / len(same)
        accepted = sum(1 for d in different if d <= cut) / len(different)
        error = missed + cost * accepted
        if best_error is None or error < best_error - 1e-12:
            best_error = error
            best = cut if i + 1 == len(values) else (cut + values[i + 1]) / 2
    return best


@pytest.mark.parametrize("cost", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calibrated_threshold_matches_a_plain_reference(seed: int, cost: float) -> None:
    rng = np.random.default_rng(seed)
    same = np.abs(rng.normal(0.2, 0.08, 150))
    different = np.abs(rng.normal(0.45, 0.1, 220))
    got = calibrated_threshold(same, different, 0.0, 2.0, cost)
    assert got == pytest.approx(_reference_threshold(same, different, cost))
    # Clipped to the safe range.
    assert calibrated_threshold(same, different, 0.5, 0.9, cost) == max(0.5, min(got, 0.9))


def test_calibrated_threshold_separable_and_errors() -> None:
    # Fully separable: the cut lies between the largest same and the smallest different distance.
    assert calibrated_threshold(np.array([0.1, 0.2]), np.array([0.6, 0.7]), 0.0, 2.0) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="at least one distance"):
        calibrated_threshold(np.array([]), np.array([0.5]), 0.0, 2.0)


@pytest.mark.parametrize("seed", [0, 3])
def test_roc_auc_matches_mann_whitney(seed: int) -> None:
    rng = np.random.default_rng(seed)
    same = np.round(rng.normal(0.3, 0.1, 80), 2)  # rounded: ties too
    different = np.round(rng.normal(0.5, 0.1, 60), 2)
    u = scipy.stats.mannwhitneyu(different, same, alternative="two-sided").statistic
    assert roc_auc(same, different) == pytest.approx(u / (same.size * different.size))


def test_fit_projection_matches_scipy_generalised_eigenproblem() -> None:
    """With D below pca_dims the principal basis spans every direction: plain regularised LDA."""
    rng = np.random.default_rng(0)
    d, n = 10, 400
    scale = np.linspace(0.5, 2.0, d)
    same_a = rng.normal(size=(n, d)) * scale
    same_b = same_a + rng.normal(size=(n, d)) * 0.3 * scale[::-1]
    different_a = rng.normal(size=(n, d)) * scale
    different_b = rng.normal(size=(n, d)) * scale
    ridge, dims = 0.1, 3
    mean, weights = fit_projection(same_a, same_b, different_a, different_b, dims=dims, pca_dims=64, ridge=ridge)
    assert mean == pytest.approx(np.concatenate([same_a, same_b, different_a, different_b]).mean(axis=0))
    within_d, between_d = same_a - same_b, different_a - different_b
    within = within_d.T @ within_d / n
    between = between_d.T @ between_d / n
    within += ridge * np.trace(within) / d * np.eye(d)
    values, vectors = scipy.linalg.eigh(between, within)  # v' within v = 1, ascending
    expected = vectors[:, ::-1][:, :dims]
    for column in range(dims):  # each direction up to its sign
        got = weights[:, column]
        sign = np.sign(got @ expected[:, column])
        np.testing.assert_allclose(sign * got, expected[:, column], rtol=1e-6, atol=1e-8)


def test_fit_projection_finds_the_identity_subspace() -> None:
    """People differ in 3 of 40 dimensions under a large shared nuisance: LDA keeps those 3."""
    rng = np.random.default_rng(1)
    people = np.zeros((30, 40))
    people[:, :3] = rng.normal(size=(30, 3)) * 2.0
    def draw(who: np.ndarray) -> np.ndarray:
        return people[who] + rng.normal(size=(who.size, 40)) * 1.5
    who = rng.integers(0, 30, 3000)
    other = (who + rng.integers(1, 30, 3000)) % 30
    _, weights = fit_projection(draw(who), draw(who), draw(who), draw(other), dims=3, pca_dims=40)
    basis, _ = np.linalg.qr(weights)
    assert np.linalg.norm(basis[:3]) ** 2 > 0.9 * 3  # the span is (almost) the first 3 axes


def test_running_scatter_matches_weighted_sums_and_scipy() -> None:
    """Each pair weighted (1 - 1/memory)^(pairs of its kind after it); the projection solves scipy's problem."""
    rng = np.random.default_rng(4)
    d, memory = 8, 50
    rows = rng.normal(size=(200, d))
    scatter = RunningScatter.from_rows(rows, dims=d, memory=memory)
    assert scatter.basis.T @ scatter.basis == pytest.approx(np.eye(d), abs=1e-10)
    same = [(rng.normal(size=(k, d)), rng.normal(size=(k, d))) for k in (7, 1, 30)]
    different = [(rng.normal(size=(k, d)) * 2, rng.normal(size=(k, d)) * 2) for k in (12, 20)]
    start_mean = scatter.mean.copy()
    for (sa, sb), (da, db) in zip(same, [*different, (np.zeros((0, d)), np.zeros((0, d)))]):
        scatter.add(sa, sb, same=True)
        scatter.add(da, db, same=False)

    def reference(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, float]:
        diffs = np.concatenate([a - b for a, b in pairs]) @ scatter.basis
        w = (1 - 1 / memory) ** np.arange(len(diffs) - 1, -1, -1)
        return (diffs * w[:, None]).T @ diffs, w.sum()

    within, w_within = reference(same)
    between, w_between = reference(different)
    np.testing.assert_allclose(scatter.within, within, rtol=1e-10)
    np.testing.assert_allclose(scatter.between, between, rtol=1e-10)
    assert scatter.weights[1:] == pytest.approx([w_within, w_between])
    # The centre: pair midpoints in the order added, each forgotten like a pair (the start mean had weight 0).
    middles = np.concatenate([0.5 * (a + b) for pairs in zip(same, [*different, None]) for a, b in
                              [p for p in pairs if p is not None]])
    w = (1 - 1 / memory) ** np.arange(len(middles) - 1, -1, -1)
    assert scatter.mean == pytest.approx(w @ middles / w.sum()) and not np.allclose(scatter.mean, start_mean)
    ridge, dims = 0.1, 3
    mean, weights = scatter.projection(dims, ridge)
    a, b = within / w_within, between / w_between
    a = a + ridge * np.trace(a) / d * np.eye(d)
    _, vectors = scipy.linalg.eigh(b, a)
    expected = scatter.basis @ vectors[:, ::-1][:, :dims]
    for column in range(dims):
        sign = np.sign(weights[:, column] @ expected[:, column])
        np.testing.assert_allclose(sign * weights[:, column], expected[:, column], rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="memory"):
        RunningScatter(scatter.basis, scatter.mean, memory=0)
    with pytest.raises(ValueError, match="both kinds"):
        RunningScatter(scatter.basis, scatter.mean).projection()


def test_evidence_pairs_span_the_lag_and_take_the_closest_neighbour(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same-person pairs compare a detection with its track's average >= EVIDENCE_LAG frames old;
    different-person pairs, with the best-looking of the NEGATIVE_NEIGHBOURS nearest tracks."""
    monkeypatch.setattr(ad, "MIN_PAIRS", 10**6)  # evidence only
    dim, lag = 16, ad.EVIDENCE_LAG
    rng = np.random.default_rng(5)
    looks = np.eye(dim)[:4] + 0.05
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_adaptation="gate")
    frames = []
    for f in range(3 * lag):
        # Four people side by side; person 3 (far right) looks like person 0 (far left).
        boxes = np.array([[100.0 * i, 50.0, 100.0 * i + 40, 150.0] for i in range(4)])
        features = np.stack([looks[0], looks[1], looks[2], looks[0] + 0.01]) + rng.normal(size=(4, dim)) * 0.01
        frames.append((boxes, np.full(4, 0.9), features.astype(np.float32)))
    _run(tracker, frames)
    adapter = tracker._adapter
    n = len(adapter.same)
    assert n > 0
    # Every same-person reference is a running average from a snapshot: reproduce them with plain numpy.
    unit = [f[2] / np.linalg.norm(f[2], axis=1, keepdims=True) for f in frames]
    first_confirmed = next(i for i, f in enumerate(_run(DeepSORTTracker(minimum_consecutive_frames=1), frames))
                           if (f > 0).all())
    assert first_confirmed == 0
    averages, snapshots, taken = unit[0].copy(), unit[0].copy(), 1
    expected_same = []
    m = tracker.ema_momentum
    for frame in range(2, len(frames) + 1):
        if frame - taken >= lag:
            expected_same.append(snapshots.copy())
        blend = m * averages + (1 - m) * unit[frame - 1]
        averages = blend / np.linalg.norm(blend, axis=1, keepdims=True)
        if frame - taken >= 2 * lag:
            snapshots, taken = averages.copy(), frame
    np.testing.assert_allclose(adapter.same.b[:n], np.concatenate(expected_same), atol=1e-5)
    # Person 0's hardest neighbour among the 3 nearest (1, 2, 3 by distance) is 3, who looks like them.
    ids = adapter.different.keys[: len(adapter.different)]
    person0 = adapter.different.b[: len(adapter.different)][ids == 1]
    assert len(person0) and (person0 @ looks[0] / np.linalg.norm(looks[0]) > 0.99).all()


def test_pair_buffer_keeps_the_last_pairs_and_splits_by_key_parity() -> None:
    buffer = PairBuffer(4)
    rows = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 2), dtype=np.float32)
    keys = np.array([7, 8, 9, 10, 11, 13])
    buffer.push(rows[:3], -rows[:3], keys[:3])
    buffer.push(rows[3:], -rows[3:], keys[3:])
    assert len(buffer) == 4 and buffer.total == 6
    assert sorted(buffer.a[:, 0].tolist()) == [2, 3, 4, 5]  # pairs 0 and 1 made room
    (even_a, even_b), (odd_a, _) = buffer.halves()
    assert even_a[:, 0].tolist() == [3] and sorted(odd_a[:, 0].tolist()) == [2, 4, 5]  # by the key's parity
    assert (even_b == -even_a).all()
    with pytest.raises(ValueError, match="capacity"):
        PairBuffer(0)


# ---------------------------------------------------------------------- the tracker
def _scene(frames: int, nuisance: float, seed: int = 0, dim: int = 96) -> list[tuple[np.ndarray, ...]]:
    """Six people in their own lanes (no overlaps); identity in 4 dimensions, a large per-detection nuisance."""
    rng = np.random.default_rng(seed)
    people = np.zeros((6, dim))
    people[:, :4] = rng.normal(size=(6, 4)) * 2.0
    people[:, 4:] = 0.5  # a shared direction: every raw feature points much the same way
    out = []
    for f in range(frames):
        boxes = np.array([[120.0 * i + 2 * f, 50.0, 120.0 * i + 2 * f + 40, 150.0] for i in range(6)])
        features = people + rng.normal(size=(6, dim)) * nuisance
        out.append((boxes, np.full(6, 0.9), features.astype(np.float32)))
    return out


def _run(tracker: DeepSORTTracker, frames: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    return [tracker.update_arrays(*frame) for frame in frames]


@pytest.fixture()
def quick_refits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ad, "MIN_PAIRS", 60)


def test_projection_switches_on_where_it_separates_better(quick_refits: None) -> None:
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_adaptation="projection", adaptation_interval=10)
    _run(tracker, _scene(80, nuisance=1.0))
    adapter = tracker._adapter
    assert adapter.weights is not None  # the self-check passed
    assert ad.PROJECTED_THRESHOLD_RANGE[0] <= adapter.threshold <= ad.PROJECTED_THRESHOLD_RANGE[1]
    same_held, different_held = adapter.same.halves()[1], adapter.different.halves()[1]
    raw = roc_auc(ad.cosine_distances(*same_held), ad.cosine_distances(*different_held))
    projected = roc_auc(ad.cosine_distances(adapter.project(same_held[0]), adapter.project(same_held[1])),
                        ad.cosine_distances(adapter.project(different_held[0]), adapter.project(different_held[1])))
    assert projected > raw
    # Stored embeddings of confirmed tracks live in the projected space: their own running average, projected.
    store = tracker._store
    for slot in store.order:
        average = adapter._average(int(store.track_id[slot]))
        if average is not None:
            stored = store.gallery_float32(np.array([slot]))[0, 0]
            assert abs(np.linalg.norm(stored) - 1) < 1e-3 and not stored[ad.PROJECTION_DIMS:].any()


def test_projection_stays_off_where_raw_features_separate(quick_refits: None) -> None:
    """A ReID-like model (tiny nuisance): the self-check keeps raw features and the fixed gate, ids as off."""
    frames = _scene(80, nuisance=0.05)
    off = _run(DeepSORTTracker(minimum_consecutive_frames=1), frames)
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_adaptation="projection", adaptation_interval=10)
    on = _run(tracker, frames)
    assert tracker._adapter.weights is None and tracker._adapter.threshold is None
    assert len(tracker._adapter.same) >= ad.MIN_PAIRS  # evidence was there: the check itself said no
    assert tracker._adapter.evidence_auc >= ad.REID_AUC  # ... on the ReID rule
    assert all((a == b).all() for a, b in zip(off, on))


def test_reid_rule_keeps_raw_features_whatever_the_self_check_says(quick_refits: None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Evidence separated at least REID_AUC by raw features: no projection, ids as off (the scene of the
    switch-on test, with the rule's bar lowered below its evidence)."""
    frames = _scene(80, nuisance=1.0)
    monkeypatch.setattr(ad, "REID_AUC", 0.5)
    off = _run(DeepSORTTracker(minimum_consecutive_frames=1), frames)
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_adaptation="projection", adaptation_interval=10)
    on = _run(tracker, frames)
    adapter = tracker._adapter
    assert adapter.separation[1] > adapter.separation[0] + ad.SELF_CHECK_MARGIN  # the self-check alone would say yes
    assert adapter.evidence_auc >= 0.5 and adapter.weights is None and adapter.threshold is None
    assert all((a == b).all() for a, b in zip(off, on))


def test_off_is_todays_tracker() -> None:
    tracker = DeepSORTTracker()
    assert tracker.appearance_adaptation == "none" and tracker._adapter is None
    assert "adaptation" not in tracker.state_dict()


def test_gate_mode_calibrates_raw_threshold(quick_refits: None) -> None:
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_adaptation="gate", adaptation_interval=10)
    _run(tracker, _scene(60, nuisance=0.5))
    adapter = tracker._adapter
    assert adapter.weights is None
    held_same, held_different = adapter.same.halves()[1], adapter.different.halves()[1]
    expected = calibrated_threshold(ad.cosine_distances(*held_same), ad.cosine_distances(*held_different),
                                    *ad.RAW_THRESHOLD_RANGE)
    assert adapter.threshold == pytest.approx(expected)


def test_deterministic(quick_refits: None) -> None:
    frames = _scene(70, nuisance=1.0)
    runs = []
    for _ in range(2):
        tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_adaptation="projection",
                                  adaptation_interval=10)
        runs.append((_run(tracker, frames), tracker._adapter))
    (ids_a, a), (ids_b, b) = runs
    assert all((x == y).all() for x, y in zip(ids_a, ids_b))
    assert a.threshold == b.threshold and np.array_equal(a.weights, b.weights)


@pytest.mark.parametrize("gallery_dtype", ["float32", "float16"])
def test_state_round_trip(tmp_path, quick_refits: None, gallery_dtype: str) -> None:
    frames = _scene(120, nuisance=1.0, seed=2)
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_adaptation="projection", adaptation_interval=10,
                              gallery_dtype=gallery_dtype)
    _run(tracker, frames[:60])
    assert tracker._adapter.weights is not None
    path = tracker.save(tmp_path / "state.npz")
    from_file = DeepSORTTracker.load(path)
    from_dict = DeepSORTTracker()
    from_dict.load_state_dict(tracker.state_dict())
    expected = _run(tracker, frames[60:])
    for resumed in (from_file, from_dict):
        assert all((a == b).all() for a, b in zip(expected, _run(resumed, frames[60:])))
        assert resumed._adapter.threshold == tracker._adapter.threshold
        assert np.array_equal(resumed._adapter.weights, tracker._adapter.weights)
        for name in ("basis", "mean", "within", "between", "weights"):
            assert np.array_equal(getattr(resumed._adapter.scatter, name), getattr(tracker._adapter.scatter, name))


def test_state_checks_reject_bad_adaptation(quick_refits: None) -> None:
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, appearance_adaptation="projection", adaptation_interval=10)
    _run(tracker, _scene(40, nuisance=1.0))
    good = tracker.state_dict()
    fresh = DeepSORTTracker()

    def bad(change, match: str) -> None:
        state = {**good, "adaptation": {"numbers": dict(good["adaptation"]["numbers"]),
                                        "arrays": dict(good["adaptation"]["arrays"])}}
        change(state)
        with pytest.raises(ValueError, match=match):
            fresh.load_state_dict(state)

    bad(lambda s: s["adaptation"]["numbers"].update(threshold=5.0), "threshold")
    bad(lambda s: s["adaptation"]["numbers"].update(width=7), "width")
    bad(lambda s: s["adaptation"]["arrays"].update(same_a=np.zeros((3, 48))), "same_a")
    bad(lambda s: s["adaptation"]["arrays"].update(same_a=np.full((evidence_pairs.PAIR_CAPACITY, 96), np.nan)), "finite")
    bad(lambda s: s["adaptation"]["arrays"].update(average_ids=-good["adaptation"]["arrays"]["average_ids"]),
        "positive")
    bad(lambda s: s.update(settings={**s["settings"], "appearance_adaptation": "none"}), "adaptation")
    frames = good["adaptation"]["numbers"]["frames"]
    bad(lambda s: s["adaptation"]["arrays"].update(
        snapshot_frames=good["adaptation"]["arrays"]["snapshot_frames"] + frames + 1), "snapshot_frames")
    bad(lambda s: s["adaptation"]["numbers"].update(basis_dims=97), "basis_dims")
    bad(lambda s: s["adaptation"]["numbers"].update(within_weight=-1.0), "within_weight")
    if good["adaptation"]["numbers"]["basis_dims"]:
        bad(lambda s: s["adaptation"]["arrays"].update(within=np.full_like(good["adaptation"]["arrays"]["within"],
                                                                           np.inf)), "within")
    fresh.load_state_dict(good)  # and the good one still loads


def test_adaptation_setting_shapes_the_store() -> None:
    tracker = DeepSORTTracker(minimum_consecutive_frames=1)
    tracker.update_arrays(np.array([[0.0, 0.0, 10.0, 30.0]]), None, np.ones((1, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="appearance_adaptation"):
        tracker.appearance_adaptation = "projection"
    tracker.reset()
    tracker.appearance_adaptation = "projection"
    assert tracker._adapter is not None and tracker._adapter.mode == "projection"
