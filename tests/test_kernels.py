"""Kalman, gating and distance kernels against plain numpy references."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import chi2

from deepsort_edge.kernels import costs, gating, kalman
from deepsort_edge.kernels import gallery as gallery_kernels
from deepsort_edge.kernels.arguments import Detections, FrameSettings, TrackArrays
from deepsort_edge.tracking.configuration import overlap_rule_beyond
from tests import common
from tests import reference as ref

PAPER_ASPECT = (0.01, 1e-5)  # DeepSORT's aspect-ratio process noise (the reference's default)


def random_measurements(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.c_[rng.uniform(0, 1000, n), rng.uniform(0, 600, n), rng.uniform(0.3, 0.7, n), rng.uniform(30, 300, n)]


def test_chi_square_table_matches_scipy():
    for dof, value in gating.CHI2_095.items():
        assert value == pytest.approx(chi2.ppf(0.95, dof), abs=1e-3)


@pytest.mark.parametrize("aspect", [(0.01, 1e-5), (0.05, 0.00625)], ids=["paper", "default"])
def test_kalman_matches_numpy_over_a_trajectory(aspect):
    rng = np.random.default_rng(1)
    n_tracks = 7
    z0 = random_measurements(rng, n_tracks)
    capacity = 12
    slots = np.array([3, 0, 11, 5, 7, 1, 9], dtype=np.intp)
    means = np.zeros((capacity, 8))
    covs = np.zeros((capacity, 8, 8))
    kalman.kalman_initiate(z0, slots, means, covs, *aspect)
    expected = [ref.kf_initiate(z, *aspect) for z in z0]
    for step in range(25):
        kalman.kalman_predict(means, covs, slots, *aspect)
        expected = [ref.kf_predict(m, c, *aspect) for m, c in expected]
        # Update a changing subset, as matching would.
        chosen = rng.random(n_tracks) < 0.7
        z = np.array([e[0][:4] for e in expected]) + rng.normal(scale=[3, 3, 0.01, 2], size=(n_tracks, 4))
        common.kalman_update(means, covs, np.ascontiguousarray(slots[chosen]), np.ascontiguousarray(z[chosen]))
        expected = [ref.kf_update(m, c, zi) if ok else (m, c) for (m, c), zi, ok in zip(expected, z, chosen)]
        for i, s in enumerate(slots):
            np.testing.assert_allclose(means[s], expected[i][0], rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(covs[s], expected[i][1], rtol=1e-7, atol=1e-10)
    untouched = np.setdiff1d(np.arange(capacity), slots)
    assert not means[untouched].any() and not covs[untouched].any()


def test_confidence_scaled_update_matches_numpy():
    rng = np.random.default_rng(11)
    z0 = random_measurements(rng, 4)
    slots = np.arange(4, dtype=np.intp)
    means, covs = np.zeros((4, 8)), np.zeros((4, 8, 8))
    kalman.kalman_initiate(z0, slots, means, covs, *PAPER_ASPECT)
    kalman.kalman_predict(means, covs, slots, *PAPER_ASPECT)
    expected = [(means[i].copy(), covs[i].copy()) for i in range(4)]
    scores = np.array([1.0, 0.5, -3.0, np.nan])
    scales = kalman.confidence_noise_scales(scores)
    np.testing.assert_allclose(scales, [1.0, 2.0, 3.0, 3.0])  # clipped to [0, 1]; NaN counts as 0
    z = z0 + rng.normal(scale=[3, 3, 0.01, 2], size=(4, 4))
    kalman.kalman_update_scaled(means, covs, slots, z, scales)
    for i in range(4):
        m, c = ref.kf_update(*expected[i], z[i], noise_scale=scales[i])
        np.testing.assert_allclose(means[i], m, rtol=1e-9)
        np.testing.assert_allclose(covs[i], c, rtol=1e-7, atol=1e-10)
    # An unsure detection pulls the state less than a confident one would.
    assert abs(means[1, 0] - z[1, 0]) > abs(ref.kf_update(*expected[1], z[1])[0][0] - z[1, 0])


def test_damping_and_camera_warp_match_numpy():
    rng = np.random.default_rng(12)
    slots = np.array([2, 0], dtype=np.intp)
    means = rng.normal(size=(3, 8)) * 10 + 100
    covs = np.stack([np.cov(rng.normal(size=(8, 20))) for _ in range(3)])
    before_m, before_c = means.copy(), covs.copy()
    kalman.damp_velocity(means, slots, 0.5)
    np.testing.assert_allclose(means[slots, 4:], 0.5 * before_m[slots, 4:])
    np.testing.assert_array_equal(means[1], before_m[1])
    np.testing.assert_array_equal(means[slots, :4], before_m[slots, :4])
    angle, zoom = 0.05, 1.1
    affine = np.array([[zoom * np.cos(angle), -zoom * np.sin(angle), 7.0],
                       [zoom * np.sin(angle), zoom * np.cos(angle), -3.0]])
    start_m, start_c = means.copy(), covs.copy()
    kalman.kalman_warp(means, covs, slots, affine)
    for s in slots:
        m, c = ref.warp_state(start_m[s], start_c[s], affine)
        np.testing.assert_allclose(means[s], m, rtol=1e-12)
        np.testing.assert_allclose(covs[s], c, rtol=1e-10)
    np.testing.assert_array_equal(covs[1], before_c[1])


@pytest.mark.parametrize("position_only", [False, True])
def test_mahalanobis_matches_numpy(position_only):
    rng = np.random.default_rng(2)
    z0 = random_measurements(rng, 5)
    slots = np.arange(5, dtype=np.intp)
    means, covs = np.zeros((5, 8)), np.zeros((5, 8, 8))
    kalman.kalman_initiate(z0, slots, means, covs, *PAPER_ASPECT)
    for _ in range(3):
        kalman.kalman_predict(means, covs, slots, *PAPER_ASPECT)
    projected, factors = common.kalman_project(means, covs, slots)
    dets = z0[rng.integers(0, 5, 9)] + rng.normal(scale=[8, 8, 0.05, 6], size=(9, 4))
    out = common.squared_distances(projected, factors, dets, position_only, np.inf)
    cut = common.squared_distances(projected, factors, dets, position_only, 9.4877)
    dims = 2 if position_only else 4
    seen_inside = seen_outside = False
    for t in range(5):
        expected = ref.squared_mahalanobis(means[t], covs[t], dets, dims)
        np.testing.assert_allclose(out[t], expected, rtol=1e-9)
        inside = expected <= 9.4877
        np.testing.assert_allclose(cut[t, inside], expected[inside], rtol=1e-9)
        assert (cut[t, ~inside] > 9.4877).all()
        seen_inside |= inside.any()
        seen_outside |= (~inside).any()
        _, S = ref.kf_project(means[t], covs[t])
        np.testing.assert_allclose(factors[t] @ factors[t].T, S, rtol=1e-12)
    assert seen_inside and seen_outside, "the data should exercise both sides of the gate"


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 60, size=(n, 2))
    return np.c_[xy, xy + rng.uniform(20, 60, size=(n, 2))]


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.c_[boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / h, h]


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    w = xyah[:, 2] * xyah[:, 3]
    return np.c_[xyah[:, 0] - w / 2, xyah[:, 1] - xyah[:, 3] / 2, xyah[:, 0] + w / 2, xyah[:, 1] + xyah[:, 3] / 2]


def tracks_near(rng: np.random.Generator, n_tracks: int, capacity: int, spread: float) -> tuple:
    """Predicted tracks (means, covariances) at random slots, boxes spread over ``spread`` pixels."""
    slots = rng.permutation(capacity)[:n_tracks].astype(np.intp)
    z0 = np.c_[rng.uniform(0, spread, n_tracks), rng.uniform(0, spread / 2, n_tracks),
               rng.uniform(0.3, 0.7, n_tracks), rng.uniform(30, 90, n_tracks)]
    means, covs = np.zeros((capacity, 8)), np.zeros((capacity, 8, 8))
    kalman.kalman_initiate(z0, slots, means, covs, *PAPER_ASPECT)
    for _ in range(int(rng.integers(1, 4))):
        kalman.kalman_predict(means, covs, slots, *PAPER_ASPECT)
    return slots, means, covs


def track_arrays(means, covariances, **given) -> TrackArrays:
    """The store's arrays for the cost kernels: ``means``, ``covariances`` and ``given``, the rest unused zeros."""
    capacity = means.shape[0]
    unused = {name: np.zeros(capacity, np.int64) for name in TrackArrays._fields}
    unused["galleries"] = np.zeros((capacity, 1, 1), np.float32)
    return TrackArrays(**{**unused, "means": means, "covariances": covariances, **given})


def detections(boxes, measurements, classes, embeddings, use_embeddings, by_x, xs, half_width=0.0) -> Detections:
    """A frame's detections for the cost kernels (scores and the high/low split are not read there)."""
    n = boxes.shape[0]
    return Detections(boxes, measurements, np.ones(n), classes, embeddings, use_embeddings, np.ones(n, np.bool_), by_x,
                      xs, half_width)


def frame_settings(**given) -> FrameSettings:
    """Settings for the cost kernels: ``given``, the rest neutral values the cost kernels do not read."""
    neutral = {name: 0 for name in FrameSettings._fields}
    return FrameSettings(**{**neutral, **given})


def sorted_by_x(measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    by_x, xs = costs.sort_by_x(measurements)
    np.testing.assert_array_equal(xs, np.sort(measurements[:, 0]))
    np.testing.assert_array_equal(measurements[by_x, 0], xs)
    return by_x, xs


@pytest.mark.parametrize("metric", [gallery_kernels.METRIC_COSINE, gallery_kernels.METRIC_EUCLIDEAN])
@pytest.mark.parametrize("motion_from_iou", [False, True])
@pytest.mark.parametrize(("lost_rule", "recent_rule"), [("none", "none"), ("overlap", "far"), ("far", "none"),
                                                        ("far", "far")])
@pytest.mark.parametrize("class_aware", [False, True])
@pytest.mark.parametrize("position_only", [False, True])
@pytest.mark.parametrize("gate_scale", [1.0, 4.0])
def test_cascade_costs_match_dense_reference(
    metric, motion_from_iou, lost_rule, recent_rule, class_aware, position_only, gate_scale
):
    rng = np.random.default_rng(3)
    n_tracks, capacity, n_dets, budget, dim = 30, 40, 60, 5, 16
    slots, means, covs = tracks_near(rng, n_tracks, capacity, spread=600.0)
    gallery = rng.normal(size=(capacity, budget, dim)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=2, keepdims=True)
    counts = rng.integers(0, budget + 1, size=capacity).astype(np.int32)
    heads = (counts % budget).astype(np.int32)  # ring buffers not yet wrapped, or full
    # Detections near tracks (some inside the gate, some not), with embeddings near the galleries.
    near = rng.integers(0, n_tracks, n_dets)
    measurements = means[slots[near], :4] + rng.normal(scale=[6, 6, 0.03, 4], size=(n_dets, 4))
    det_boxes = xyah_to_xyxy(measurements)
    emb = (gallery[slots[near], 0] + rng.normal(scale=0.6, size=(n_dets, dim))).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    columns = np.flatnonzero(rng.random(n_dets) < 0.8)  # the cascade sees a subset of the detections
    lost = rng.integers(1, 4, size=capacity).astype(np.int32)  # frames since update, by slot
    track_classes = rng.integers(0, 2, size=capacity)  # by slot
    det_classes = rng.integers(0, 2, size=n_dets)
    gate = gating.CHI2_095[2 if position_only else 4]
    threshold, weight, min_iou = 0.9, 0.3, 0.2
    # The tracker's own mapping; the expectation below is not.
    beyond, recent_beyond = overlap_rule_beyond(lost_rule, gate), overlap_rule_beyond(recent_rule, gate)
    by_x, xs = sorted_by_x(measurements)
    indptr, indices, values = costs.cascade_costs(
        track_arrays(means, covs, galleries=gallery, gallery_counts=counts, gallery_heads=heads,
                     time_since_update=lost, track_classes=track_classes),
        slots, detections(det_boxes, measurements, det_classes, emb, True, by_x, xs), columns,
        frame_settings(metric=metric, appearance_threshold=threshold, appearance_weight=weight,
                       motion_from_iou=motion_from_iou, minimum_iou=min_iou, lost_overlap_beyond=beyond,
                       recent_overlap_beyond=recent_beyond,
                       class_aware=class_aware, position_only=position_only, gate=gate,
                       appearance_gate=gate * gate_scale),
    )
    for t in range(n_tracks):
        row = indices[indptr[t]:indptr[t + 1]]
        assert (np.diff(row) > 0).all(), "columns ascending"
    out = common.to_dense(indptr, indices, values, columns.size)
    name = "cosine" if metric == gallery_kernels.METRIC_COSINE else "euclidean"
    track_boxes = xyah_to_xyxy(means[slots, :4])
    iou = ref.iou_matrix(track_boxes, det_boxes)
    dims = 2 if position_only else 4
    squared = np.array([ref.squared_mahalanobis(means[s], covs[s], measurements, dims) for s in slots])
    # A track that appearance also checks (it has a gallery) gates gate_scale times further out.
    limit = np.where(counts[slots] > 0, gate * gate_scale, gate)[:, None]
    gated = squared <= limit
    if class_aware:
        gated &= track_classes[slots][:, None] == det_classes[None, :]
    gated[:, np.setdiff1d(np.arange(n_dets), columns)] = False
    # The only candidate of its track and of its detection: its cost does not matter, only feasibility.
    alone = gated & (gated.sum(axis=1, keepdims=True) == 1) & (gated.sum(axis=0, keepdims=True) == 1)
    outcomes = set()
    for t, s in enumerate(slots):
        for c, n in enumerate(columns):
            if abs(squared[t, n] - limit[t, 0]) < 1e-9:
                continue
            motion = 1 - iou[t, n] if motion_from_iou else squared[t, n] / limit[t, 0]
            if not gated[t, n]:
                expected = costs.INFEASIBLE
            elif counts[s] == 0:
                overlap_ok = iou[t, n] >= min_iou and iou[t, n] > 0
                needs_overlap = motion_from_iou and lost[s] > 1
                expected = motion if (overlap_ok or not needs_overlap) else costs.INFEASIBLE
            else:
                app = cdist(gallery[s, : counts[s]].astype(np.float64), emb[n : n + 1].astype(np.float64), name)
                # The lost- and recent-track rules: none never, overlap for every pair, far beyond the motion-only
                # gate only; lost: missed for more than a frame, recent: matched in the frame before.
                rules = {"none": False, "overlap": True, "far": squared[t, n] > gate}
                rule = rules[lost_rule] if lost[s] > 1 else rules[recent_rule]
                bound = threshold / 2 if rule and iou[t, n] <= 0 else threshold
                if abs(app.min() - bound) < 1e-6:
                    continue  # float32 rounding decides; either answer is right
                expected = costs.INFEASIBLE if app.min() > bound else weight * app.min() + (1 - weight) * motion
                if alone[t, n] and expected != costs.INFEASIBLE:
                    # Some entry within the bound: a cost between the nearest one's and the bound's.
                    assert expected - 1e-5 <= out[t, c] <= weight * bound + (1 - weight) * motion + 1e-5, (t, n)
                    outcomes.add("alone")
                    continue
            assert out[t, c] == pytest.approx(expected, abs=1e-5), (t, n)
            outcomes.add("infeasible" if expected == costs.INFEASIBLE else "feasible")
    assert {"feasible", "infeasible"} <= outcomes


def test_cascade_costs_without_appearance_are_motion_only():
    rng = np.random.default_rng(8)
    slots, means, covs = tracks_near(rng, 2, 2, spread=400.0)
    # Detection 0 sits on track 0; detection 1 is shifted off track 1's box but inside its gate.
    measurements = means[slots, :4].copy()
    shift = 1.05 * means[slots[1], 2] * means[slots[1], 3]
    measurements[1, 0] += shift
    det_boxes = xyah_to_xyxy(measurements)
    gallery = np.ones((2, 3, 4), dtype=np.float32)
    counts = np.array([3, 3], dtype=np.int32)
    none = np.zeros((0, 1), np.float32)
    classes = np.zeros(2, dtype=np.int64)
    by_x, xs = sorted_by_x(measurements)
    covs[slots[1], 0, 0] += shift**2  # widen track 1's gate along x so the shifted detection is inside

    def dense(lost_frames: int, motion_from_iou: bool) -> np.ndarray:
        lost = np.full(2, lost_frames, dtype=np.int32)
        csr = costs.cascade_costs(
            track_arrays(means, covs, galleries=gallery, gallery_counts=counts, gallery_heads=np.zeros(2, np.int32),
                         time_since_update=lost, track_classes=classes),
            slots, detections(det_boxes, measurements, classes, none, False, by_x, xs), np.arange(2),
            frame_settings(metric=0, appearance_threshold=0.2, appearance_weight=0.5, motion_from_iou=motion_from_iou,
                           minimum_iou=0.3, lost_overlap_beyond=np.inf, class_aware=False, position_only=False,
                           gate=9.4877, appearance_gate=9.4877),
        )
        return common.to_dense(*csr, 2)

    squared = ref.squared_mahalanobis(means[slots[1]], covs[slots[1]], measurements[1:], 4)[0]
    assert squared <= 9.4877
    np.testing.assert_allclose(dense(2, False)[1, 1], squared / 9.4877)
    # IoU motion: the pair does not overlap, so a track lost for two frames cannot take it; one seen last frame can.
    assert dense(2, True)[1, 1] == costs.INFEASIBLE
    assert dense(1, True)[1, 1] == pytest.approx(1.0)
    assert dense(2, True)[0, 0] == pytest.approx(0.0)


@pytest.mark.parametrize("class_aware", [False, True])
def test_iou_costs_match_reference(class_aware):
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 150, size=(90, 2))
    boxes = np.c_[xy, xy + rng.uniform(5, 40, size=(90, 2))]
    capacity = 40
    slots = rng.permutation(capacity)[:30].astype(np.intp)
    means = np.zeros((capacity, 8))
    means[slots, :4] = xyxy_to_xyah(boxes[:30])
    dets = boxes[30:]
    columns = np.flatnonzero(rng.random(60) < 0.7)
    track_classes, det_classes = rng.integers(0, 2, capacity), rng.integers(0, 2, 60)
    by_x, xs = sorted_by_x(xyxy_to_xyah(dets))
    half_width = 0.5 * (dets[:, 2] - dets[:, 0]).max()
    csr = costs.iou_costs(track_arrays(means, np.zeros((capacity, 8, 8)), track_classes=track_classes), slots,
                          detections(dets, xyxy_to_xyah(dets), det_classes, np.zeros((0, 1), np.float32), False, by_x,
                                     xs, half_width),
                          columns, frame_settings(minimum_iou=0.2, class_aware=class_aware))
    out = common.to_dense(*csr, columns.size)
    iou = ref.iou_matrix(xyah_to_xyxy(means[slots, :4]), dets[columns])
    expected = np.where((iou >= 0.2) & (iou > 0), 1 - iou, costs.INFEASIBLE)
    if class_aware:
        expected = np.where(track_classes[slots][:, None] == det_classes[columns][None, :], expected, costs.INFEASIBLE)
    assert (expected < costs.INFEASIBLE).sum() >= 5
    np.testing.assert_allclose(out, expected, atol=1e-9)


def test_gallery_ring_buffer_never_exceeds_budget():
    rng = np.random.default_rng(5)
    budget, dim = 4, 3
    gallery = np.zeros((3, budget, dim), dtype=np.float32)
    counts = np.zeros(3, dtype=np.int32)
    heads = np.zeros(3, dtype=np.int32)
    history: dict[int, list[np.ndarray]] = {0: [], 2: []}
    for _ in range(11):
        slots = np.array([0, 2], dtype=np.intp)
        emb = rng.normal(size=(2, dim)).astype(np.float32)
        gallery_kernels.gallery_append(gallery, counts, heads, slots, emb, np.arange(2))
        history[0].append(emb[0])
        history[2].append(emb[1])
        assert counts.max() <= budget
    assert counts.tolist() == [budget, 0, budget]
    for s in (0, 2):
        kept = {tuple(row) for row in gallery[s]}
        assert kept == {tuple(row) for row in history[s][-budget:]}
    assert not gallery[1].any()


def test_ema_blends_and_renormalises():
    gallery = np.zeros((1, 1, 2), dtype=np.float32)
    counts = np.zeros(1, dtype=np.int32)
    first = np.array([[1.0, 0.0]], dtype=np.float32)
    second = np.array([[0.0, 1.0]], dtype=np.float32)
    gallery_kernels.gallery_ema(gallery, counts, np.array([0]), first, np.array([0]), 0.9, np.ones(1))
    gallery_kernels.gallery_ema(gallery, counts, np.array([0]), second, np.array([0]), 0.9, np.ones(1))
    expected = np.array([0.9, 0.1]) / np.hypot(0.9, 0.1)
    np.testing.assert_allclose(gallery[0, 0], expected, rtol=1e-6)
    assert counts[0] == 1
    # Confidence-aware: a detection scoring 0.5 enters with half the weight.
    gallery_kernels.gallery_ema(gallery, counts, np.array([0]), first, np.array([0]), 0.9, np.array([0.5]))
    blended = 0.95 * expected + 0.05 * np.array([1.0, 0.0])
    np.testing.assert_allclose(gallery[0, 0], blended / np.linalg.norm(blended), rtol=1e-6)


def test_row_checks_match_numpy():
    from deepsort_edge.kernels import rows

    rng = np.random.default_rng(21)
    boxes = rng.uniform(-50, 700, size=(60, 4))
    boxes[::7, 2] = boxes[::7, 0] - 1  # inverted
    boxes[3, 1] = np.nan
    boxes[5, 0] = 2e6
    scores = rng.normal(size=60)
    scores[8] = np.inf
    out = np.empty(60, np.uint8)
    clean = rows.row_problems(boxes, scores, 640.0, 480.0, 1e6, out)
    finite = np.isfinite(boxes).all(1)
    in_range = finite & (np.abs(np.nan_to_num(boxes)) <= 1e6).all(1)
    with np.errstate(invalid="ignore"):
        proper = in_range & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        inside = (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (boxes[:, 0] < 640) & (boxes[:, 1] < 480)
    np.testing.assert_array_equal((out & rows.NOT_FINITE) != 0, ~finite)
    np.testing.assert_array_equal((out & rows.BEYOND_RANGE) != 0, finite & ~in_range)
    np.testing.assert_array_equal((out & rows.EMPTY_BOX) != 0, in_range & ~proper)
    np.testing.assert_array_equal((out & rows.OUTSIDE_FRAME) != 0, proper & ~inside)
    np.testing.assert_array_equal((out & rows.BAD_SCORE) != 0, ~np.isfinite(scores))
    assert not clean and (out == 0).any()

    emb = rng.normal(size=(6, 16)).astype(np.float32)
    emb[1] = 0.0
    emb[2, 3] = np.nan
    emb[4] *= np.float32(1e30)  # squares overflow float32, not float64
    unit = np.zeros_like(emb)
    problems = np.zeros(6, np.uint8)
    assert not rows.unit_rows(emb, unit, problems)
    assert ((problems & rows.BAD_EMBEDDING) != 0).tolist() == [False, True, True, False, False, False]
    good = [0, 3, 4, 5]
    expected = emb[good].astype(np.float64) / np.linalg.norm(emb[good].astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(unit[good], expected, rtol=1e-6)


def test_float16_entries_convert_like_numpy():
    import numba

    from deepsort_edge.kernels.half import load, store

    @numba.njit
    def roundtrip(values, bits, back):
        for i in range(values.shape[0]):
            bits[i] = store(values[i], bits[i])
            back[i] = load(bits[i])

    rng = np.random.default_rng(9)
    values = np.r_[rng.normal(scale=0.05, size=500), 1e-6, -3e-5, 0.0, -0.0, 1.0, 65504.0].astype(np.float32)
    bits, back = np.zeros(values.size, np.uint16), np.zeros(values.size, np.float32)
    roundtrip(values, bits, back)
    np.testing.assert_array_equal(bits, values.astype(np.float16).view(np.uint16))  # round to nearest even
    np.testing.assert_array_equal(back, values.astype(np.float16).astype(np.float32))


def _unit_gallery_and_embeddings(seed: int, entries: int, rows: int, dim: int, storage: type):
    """Unit float32 gallery entries and embeddings, and the gallery as stored (float16 as uint16 bits)."""
    rng = np.random.default_rng(seed)
    gallery = rng.normal(size=(entries, dim)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    emb = rng.normal(size=(rows, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    stored = gallery.astype(np.float16).view(np.uint16) if storage == np.float16 else gallery
    return rng, gallery, emb, stored


@pytest.mark.parametrize("storage", [np.float32, np.float16])
def test_max_dots_matches_numpy(storage):
    _, gallery, emb, stored = _unit_gallery_and_embeddings(10, 7, 5, 32, storage)
    rows = np.array([4, 0, 2], dtype=np.intp)
    out = np.empty(5)
    gallery_kernels.max_dots(stored, 6, emb, rows, 0, 3, out)
    exact = (gallery[:6].astype(np.float64) @ emb[rows].T.astype(np.float64)).max(axis=0)
    np.testing.assert_allclose(out[:3], exact, atol=1e-5 if storage == np.float32 else 2e-3)


@pytest.mark.parametrize("storage", [np.float32, np.float16])
def test_max_dots_blocks_agree_exactly_with_one_entry_at_a_time(storage):
    """1-9 candidates (blocks of four and three, then one or two): numpy's maxima, and bit for bit the
    dot products first_within takes one entry at a time, so feasibility is decided the same both ways."""
    rng, gallery, emb, stored = _unit_gallery_and_embeddings(11, 9, 12, 512, storage)
    values = gallery.astype(np.float16).astype(np.float64) if storage == np.float16 else gallery.astype(np.float64)
    count = 9  # a full ring: every head is valid for first_within
    for n_rows in range(1, 10):
        rows = rng.permutation(12)[:n_rows].astype(np.intp)
        padded = np.r_[np.zeros(2, np.intp), rows]  # candidates start at ``first`` = 2
        out = np.full(n_rows, np.nan)
        gallery_kernels.max_dots(stored, count, emb, padded, 2, n_rows, out)
        np.testing.assert_allclose(out, (values[:count] @ emb[rows].T.astype(np.float64)).max(axis=0), atol=1e-5)
        if numba.config.DISABLE_JIT:
            continue  # bit-exactness is the compiled kernels' property (numpy scalars promote differently)
        for c, row in enumerate(rows):
            # The nearest entry is within a bound just above its own distance, and first_within
            # (newest first from ``head``) finds an entry exactly as close: the same dot.
            nearest = 1.0 - out[c]
            got = [gallery_kernels.first_within(stored, count, head, emb, int(row), gallery_kernels.METRIC_COSINE,
                                                nearest) for head in range(count)]
            assert min(got) == nearest, (n_rows, c)


def test_window_matches_searchsorted():
    rng = np.random.default_rng(13)
    xs = np.sort(np.r_[rng.uniform(0, 100, 200), np.full(5, 50.0)])
    for lo, hi in [(10.0, 20.0), (50.0, 50.0), (-5.0, 0.0), (99.0, 200.0), (30.0, 29.0)]:
        start, stop = costs.window(xs, lo, hi)
        pad = 1e-6 * (abs(lo) + abs(hi) + 1.0)
        assert (start, stop) == (np.searchsorted(xs, lo - pad, "left"), np.searchsorted(xs, hi + pad, "right"))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_first_within_decides_like_the_nearest_entry(metric):
    rng = np.random.default_rng(14)
    code = gallery_kernels.METRIC_COSINE if metric == "cosine" else gallery_kernels.METRIC_EUCLIDEAN
    seen = set()
    for _ in range(200):
        budget, count = 6, int(rng.integers(1, 7))
        gallery = rng.normal(size=(budget, 16)).astype(np.float32)
        gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
        emb = (gallery[0] + rng.normal(scale=1.5, size=16)).astype(np.float32)
        emb /= np.linalg.norm(emb)
        head = int(rng.integers(0, budget)) if count == budget else count
        bound = float(rng.uniform(0.2, 1.4))
        nearest = cdist(gallery[:count].astype(np.float64), emb[None].astype(np.float64), metric).min()
        if abs(nearest - bound) < 1e-5:
            continue
        got = gallery_kernels.first_within(gallery, count, head, emb[None], 0, code, bound)
        if nearest <= bound:
            assert nearest - 1e-5 <= got <= bound  # some entry within the bound, maybe not the nearest
        else:
            assert got == np.inf
        seen.add(nearest <= bound)
    assert seen == {True, False}


def test_covered_matches_dense_numpy():
    from deepsort_edge.kernels.overlap import covered

    rng = np.random.default_rng(5)
    tl = rng.uniform(0, 200, (40, 2))
    boxes = np.c_[tl, tl + rng.uniform(5, 60, (40, 2))]
    xyah = np.c_[(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, boxes[:, 2:] - boxes[:, :2]]
    by_x, xs = costs.sort_by_x(xyah)
    got = covered(boxes, by_x, xs, float(0.5 * (boxes[:, 2] - boxes[:, 0]).max()))
    iw = np.clip(np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1]), 0, None)
    fraction = iw * ih / ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:, None]
    np.fill_diagonal(fraction, 0.0)
    assert (fraction.max(axis=1) > 0.3).sum() > 5  # the scene has real overlaps
    np.testing.assert_allclose(got, fraction.max(axis=1), rtol=1e-12)
