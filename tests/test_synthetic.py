"""Tests of the seeded synthetic scene generator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deepsort_edge.demo.synthetic import SceneConfig, SceneFrame, generate_scene, iter_scene


def _frames_equal(a: SceneFrame, b: SceneFrame) -> bool:
    for field in dataclasses.fields(SceneFrame):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or x.shape != y.shape or not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


def test_same_seed_same_scene_and_different_seed_differs():
    cfg = SceneConfig(num_objects=12, seed=5, turnover=0.05, false_positive_rate=0.2,
                      embedding_dim=8, occlusion_rate=0.05)
    a = generate_scene(cfg, 60)
    b = list(iter_scene(cfg, 60))
    assert all(_frames_equal(x, y) for x, y in zip(a, b, strict=True))
    c = generate_scene(dataclasses.replace(cfg, seed=6), 60)
    assert not all(_frames_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("embedding_dim", [0, 16])
def test_shapes_and_dtypes(embedding_dim):
    cfg = SceneConfig(num_objects=7, false_positive_rate=0.3, embedding_dim=embedding_dim)
    frames = generate_scene(cfg, 20)
    assert [f.index for f in frames] == list(range(1, 21))
    for f in frames:
        n = len(f.xyxy)
        assert f.gt_ids.dtype == np.int64 and f.gt_ids.shape == (7,)
        assert f.gt_xyxy.dtype == np.float64 and f.gt_xyxy.shape == (7, 4)
        assert f.xyxy.dtype == np.float64 and f.xyxy.shape == (n, 4)
        assert f.scores.dtype == np.float32 and f.scores.shape == (n,)
        assert f.det_gt_ids.dtype == np.int64 and f.det_gt_ids.shape == (n,)
        assert np.all((f.scores >= 0) & (f.scores <= 1))
        assert np.all(f.xyxy[:, 2] > f.xyxy[:, 0]) and np.all(f.xyxy[:, 3] > f.xyxy[:, 1])
        if embedding_dim:
            assert f.embeddings.dtype == np.float32 and f.embeddings.shape == (n, embedding_dim)
            assert f.embeddings.flags.c_contiguous
        else:
            assert f.embeddings is None


def test_zero_frames_and_zero_objects():
    assert generate_scene(SceneConfig(), 0) == []
    frames = generate_scene(SceneConfig(num_objects=0, embedding_dim=4), 3)
    assert all(len(f.xyxy) == 0 and f.embeddings.shape == (0, 4) for f in frames)


def test_boxes_overlap_image_and_look_like_people():
    cfg = SceneConfig(num_objects=30, width=1280, height=720, turnover=0.05, seed=2)
    for f in iter_scene(cfg, 400):
        x1, y1, x2, y2 = f.gt_xyxy.T
        # Every ground-truth box is at least partly inside the image.
        assert np.all((x2 > 0) & (x1 < cfg.width) & (y2 > 0) & (y1 < cfg.height))
        h = y2 - y1
        aspect = (x2 - x1) / h
        assert np.all((aspect > 0.349) & (aspect < 0.501))
        scale = cfg.height / 1080
        assert np.all((h >= 60 * scale - 1e-9) & (h <= 200 * scale + 1e-9))


def test_objects_move_smoothly_and_stay_without_turnover():
    cfg = SceneConfig(num_objects=10, seed=3, max_speed=6.0)
    frames = generate_scene(cfg, 300)
    ids = frames[0].gt_ids
    centers = []
    for f in frames:
        assert np.array_equal(f.gt_ids, ids)
        centers.append((f.gt_xyxy[:, :2] + f.gt_xyxy[:, 2:]) / 2)
    steps = np.linalg.norm(np.diff(np.array(centers), axis=0), axis=2)
    assert steps.max() <= 6.0 + 1e-9
    assert steps.mean() > 0.5  # they do move


def test_objects_cross_each_other():
    # Somewhere in the scene two boxes must overlap (a crossing), else a
    # tracker never faces an ambiguous association.
    frames = generate_scene(SceneConfig(num_objects=20, seed=4), 200)
    best = 0.0
    for f in frames:
        a, b = f.gt_xyxy[:, None], f.gt_xyxy[None, :]
        ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
        iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
        inter = ix * iy
        np.fill_diagonal(inter, 0)
        best = max(best, inter.max())
    assert best > 0


def test_turnover_replaces_objects_with_never_reused_ids():
    cfg = SceneConfig(num_objects=15, seed=9, turnover=0.05)
    gone: set[int] = set()
    previous: set[int] = set()
    max_id = 0
    for f in iter_scene(cfg, 1500):
        current = set(f.gt_ids.tolist())
        assert len(f.gt_ids) == 15 and len(current) == 15
        assert not current & gone  # an object that left never comes back
        new = current - previous
        if previous and new:
            assert min(new) > max_id  # new objects get ids never used before
        gone |= previous - current
        max_id = max(max_id, *current)
        previous = current
    assert len(gone) > 60  # many objects came and went


def test_miss_and_false_positive_rates():
    cfg = SceneConfig(num_objects=40, seed=11, miss_rate=0.2, false_positive_rate=0.25)
    gt_total = detected = fps = 0
    for f in iter_scene(cfg, 300):
        gt_total += len(f.gt_ids)
        true = f.det_gt_ids >= 0
        detected += int(true.sum())
        fps += int((~true).sum())
        assert set(f.det_gt_ids[true].tolist()) <= set(f.gt_ids.tolist())
        assert len(set(f.det_gt_ids[true].tolist())) == int(true.sum())  # one detection per object
        assert np.all(f.scores[true] >= 0.5)
        assert np.all((f.scores[~true] >= 0.1) & (f.scores[~true] <= 0.6))
    miss = 1 - detected / gt_total
    assert 0.17 < miss < 0.23  # expected 0.2, 12000 draws
    assert 0.22 < fps / 300 / 40 < 0.28  # expected 10 per frame


def test_box_noise_level():
    cfg = SceneConfig(num_objects=30, seed=12, miss_rate=0.0, box_noise=3.0)
    errors = []
    for f in iter_scene(cfg, 50):
        rows = {g: k for k, g in enumerate(f.gt_ids.tolist())}
        idx = [rows[g] for g in f.det_gt_ids.tolist()]
        errors.append(f.xyxy - f.gt_xyxy[idx])
    std = np.concatenate(errors).std()
    assert 2.7 < std < 3.3


def test_occlusion_hides_objects_for_a_few_frames():
    cfg = SceneConfig(num_objects=20, seed=13, miss_rate=0.0, occlusion_rate=0.02,
                      max_occlusion_frames=6)
    gaps: dict[int, int] = {}
    longest = 0
    for f in iter_scene(cfg, 500):
        assert len(f.gt_ids) == 20  # hidden objects stay in the ground truth
        seen = set(f.det_gt_ids.tolist())
        for g in f.gt_ids.tolist():
            gaps[g] = 0 if g in seen else gaps.get(g, 0) + 1
            longest = max(longest, gaps[g])
    assert 2 <= longest <= 6


def test_embeddings_unit_norm_and_identity_preserving():
    cfg = SceneConfig(num_objects=25, seed=14, embedding_dim=64, embedding_noise=0.5,
                      false_positive_rate=0.2)
    frames = generate_scene(cfg, 30)
    emb = np.concatenate([f.embeddings for f in frames])
    ids = np.concatenate([f.det_gt_ids for f in frames])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    same = (ids[:, None] == ids[None, :]) & (ids[:, None] >= 0)
    np.fill_diagonal(same, False)
    different = ids[:, None] != ids[None, :]
    # Expected: same object ~ 1 / (1 + 0.5**2) = 0.8; different ~ 0 +- 1/8.
    assert abs(sim[same].mean() - 0.8) < 0.05
    assert abs(sim[different].mean()) < 0.02
    # Every detection is closer to its own object's other detections than to any other object.
    for k in np.flatnonzero(ids >= 0)[:200]:
        assert sim[k, same[k]].min() > sim[k, different[k]].max()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_objects": -1}, ValueError, "num_objects"),
        ({"num_objects": 2.5}, TypeError, "num_objects"),
        ({"width": 0}, ValueError, "width"),
        ({"seed": True}, TypeError, "seed"),
        ({"miss_rate": 1.5}, ValueError, "miss_rate"),
        ({"turnover": -0.1}, ValueError, "turnover"),
        ({"box_noise": float("nan")}, ValueError, "box_noise"),
        ({"max_speed": 0.0}, ValueError, "max_speed"),
        ({"embedding_dim": "8"}, TypeError, "embedding_dim"),
        ({"max_occlusion_frames": 0}, ValueError, "max_occlusion_frames"),
    ],
)
def test_config_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        SceneConfig(**kwargs)


def test_iter_scene_argument_checks():
    with pytest.raises(TypeError, match="cfg"):
        iter_scene({"num_objects": 3}, 5)
    with pytest.raises(ValueError, match="num_frames"):
        iter_scene(SceneConfig(), -1)
    with pytest.raises(TypeError, match="num_frames"):
        iter_scene(SceneConfig(), 2.0)
