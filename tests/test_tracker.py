"""Behaviour of DeepSORTTracker on small synthetic scenes."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from deepsort_edge import DeepSORTTracker


def person(cx: float, cy: float, h: float = 100.0) -> list[float]:
    w = 0.4 * h
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    v = rng.normal(size=(n, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def crossing_scene(n_frames: int = 60, hidden: range = range(28, 33)):
    """Two people walk towards each other on the same line and cross.

    A is occluded (not detected) for the frames in ``hidden``. Each yields
    (boxes, identities) in a shuffled order so that row order carries no hint.
    """
    rng = np.random.default_rng(0)
    for f in range(n_frames):
        rows = []
        if f not in hidden:
            rows.append((0, person(100 + 8 * f, 300)))
        rows.append((1, person(580 - 8 * f, 300 + 4)))
        rng.shuffle(rows)
        yield np.array([r[1] for r in rows]), np.array([r[0] for r in rows])


def run_identity_check(tracker: DeepSORTTracker, with_embeddings: bool) -> dict[int, set[int]]:
    rng = np.random.default_rng(1)
    identity = unit(rng, 2)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for boxes, who in crossing_scene():
        emb = identity[who] + 0.05 * unit(rng, len(who)) if with_embeddings else None
        ids = tracker.update_arrays(boxes, np.full(len(who), 0.9), emb)
        for i, obj in zip(ids, who):
            if i >= 0:
                seen[int(obj)].add(int(i))
    return seen


def test_crossing_and_occluded_objects_keep_their_ids_with_appearance():
    seen = run_identity_check(DeepSORTTracker(), with_embeddings=True)
    assert len(seen[0]) == 1 and len(seen[1]) == 1
    assert seen[0] != seen[1]


@pytest.mark.parametrize("mode", ["ema", "gallery"])
@pytest.mark.parametrize("matching", ["cascade", "global"])
@pytest.mark.parametrize("motion_cost", ["iou", "mahalanobis"])
def test_modes_keep_ids(mode, matching, motion_cost):
    tracker = DeepSORTTracker(appearance_mode=mode, matching=matching, nn_budget=10, motion_cost=motion_cost)
    seen = run_identity_check(tracker, with_embeddings=True)
    assert [len(seen[0]), len(seen[1])] == [1, 1]


def test_motion_only_keeps_ids_through_short_occlusion():
    # Crossing on different rows: constant velocity carries A through its gap.
    tracker = DeepSORTTracker(use_appearance=False)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for f in range(60):
        rows = [(1, person(580 - 8 * f, 200))]
        if f not in range(20, 24):
            rows.append((0, person(100 + 8 * f, 330)))
        ids = tracker.update_arrays(np.array([r[1] for r in rows]), None)
        for i, (obj, _) in zip(ids, rows):
            if i >= 0:
                seen[obj].add(int(i))
    assert [len(seen[0]), len(seen[1])] == [1, 1]


def test_ids_start_at_one_are_per_instance_and_reset():
    a, b = DeepSORTTracker(minimum_consecutive_frames=1), DeepSORTTracker(minimum_consecutive_frames=1)
    boxes = np.array([person(100, 100), person(400, 100)])
    assert a.update_arrays(boxes).tolist() == [1, 2]
    assert b.update_arrays(boxes[:1]).tolist() == [1]
    assert a.update_arrays(boxes + 1).tolist() == [1, 2]
    a.reset()
    assert len(a.tracks) == 0 and a.frame_count == 0
    assert a.update_arrays(boxes[::-1]).tolist() == [1, 2]


def test_confirmation_needs_consecutive_hits_and_tentative_dies_on_miss():
    tracker = DeepSORTTracker(minimum_consecutive_frames=3)
    box = np.array([person(200, 200)])
    assert tracker.update_arrays(box).tolist() == [-1]
    assert tracker.update_arrays(box + 2).tolist() == [-1]
    tracker.update_arrays(np.zeros((0, 4)))  # miss while tentative: deleted
    assert tracker.tracks == []
    assert tracker.update_arrays(box).tolist() == [-1]
    assert tracker.update_arrays(box + 2).tolist() == [-1]
    assert tracker.update_arrays(box + 4).tolist() == [1]
    assert tracker.tracks[0].confirmed


@pytest.mark.parametrize("frame_rate, expected_age", [(30.0, 5), (15.0, 2)])
def test_lost_track_buffer_scales_with_frame_rate(frame_rate, expected_age):
    tracker = DeepSORTTracker(lost_track_buffer=5, frame_rate=frame_rate, minimum_consecutive_frames=1)
    assert tracker.maximum_frames_without_update == expected_age
    tracker.update_arrays(np.array([person(200, 200)]))
    for missed in range(1, 10):
        tracker.update_arrays(np.zeros((0, 4)))
        assert (len(tracker.tracks) == 1) == (missed <= expected_age)


def test_low_scores_never_start_tracks_but_can_continue_them():
    tracker = DeepSORTTracker(track_activation_threshold=0.5, minimum_consecutive_frames=1)
    assert tracker.update_arrays(np.array([person(100, 100)]), np.array([0.3])).tolist() == [-1]
    assert tracker.tracks == []
    assert tracker.update_arrays(np.array([person(100, 100)]), np.array([0.6])).tolist() == [1]
    assert tracker.update_arrays(np.array([person(102, 100)]), np.array([0.1])).tolist() == [1]


def test_a_score_between_the_activation_and_start_thresholds_continues_tracks_but_starts_none():
    # Defaults: threshold 0.3, new_track_margin 0.1. A 0.35 box starts nothing; unlike a low-score (0.25) one it
    # takes part in every stage, so it continues a track lost for four frames, which the low-score stage cannot.
    box = np.array([person(100, 100)])
    tracker = DeepSORTTracker(minimum_consecutive_frames=1)
    assert tracker.update_arrays(box, np.array([0.35])).tolist() == [-1] and tracker.tracks == []
    assert tracker.update_arrays(box, np.array([0.4])).tolist() == [1]
    assert DeepSORTTracker(minimum_consecutive_frames=1, new_track_margin=0.0).update_arrays(
        box, np.array([0.35])).tolist() == [1]
    for score, expected in ((0.35, [1]), (0.25, [-1])):
        tracker = DeepSORTTracker(minimum_consecutive_frames=1)
        tracker.update_arrays(box, np.array([0.9]))
        for _ in range(4):
            tracker.update_arrays(np.zeros((0, 4)))
        assert tracker.update_arrays(box, np.array([score])).tolist() == expected


def test_update_returns_all_rows_in_order_without_touching_input():
    rng = np.random.default_rng(3)
    tracker = DeepSORTTracker(minimum_consecutive_frames=1)
    boxes = np.array([person(100 + 150 * i, 200) for i in range(5)])
    detections = sv.Detections(
        xyxy=boxes, confidence=np.array([0.9, 0.1, 0.8, 0.7, 0.95]), class_id=np.arange(5), data={"embeddings": unit(rng, 5)}
    )
    out = tracker.update(detections)
    assert detections.tracker_id is None
    assert len(out) == 5 and np.array_equal(out.xyxy, boxes) and np.array_equal(out.class_id, np.arange(5))
    assert out.tracker_id.tolist() == [1, -1, 2, 3, 4]
    empty = tracker.update(sv.Detections.empty())
    assert len(empty) == 0 and empty.tracker_id.shape == (0,)


def test_frame_is_required_when_extractor_needs_it():
    class Extractor:
        def extract_features(self, frame, boxes):
            return np.ones((len(boxes), 4))

    tracker = DeepSORTTracker(feature_extractor=Extractor())
    with pytest.raises(ValueError, match="frame is required"):
        tracker.update_arrays(np.array([person(100, 100)]))
    frame = np.zeros((480, 640, 3), np.uint8)
    assert tracker.update_arrays(np.array([person(100, 100)]), frame=frame).tolist() == [-1]
    assert tracker.tracks[0].gallery_size == 1


def _occluded_walk(tracker: DeepSORTTracker) -> set[int]:
    """One person walks; missed on frame 10, then looks like someone else (occluder in the box) on 11-13."""
    rng = np.random.default_rng(3)
    own, occluder = unit(rng, 2)
    seen = set()
    for f in range(25):
        if f == 10:
            tracker.update_arrays(np.zeros((0, 4)))
            continue
        look = occluder if 11 <= f <= 13 else own
        ids = tracker.update_arrays(np.array([person(100 + 6 * f, 300)]), np.array([0.9]), look[None])
        seen.update(int(i) for i in ids if i >= 0)
    return seen


@pytest.mark.parametrize(("frames", "expected"), [(1, 2), (2, 1)])
def test_iou_recovery_keeps_a_track_whose_appearance_is_occluded(frames, expected):
    # DeepSORT (1): after a one-frame miss the cascade alone may continue the track, and appearance
    # rejects the occluded crop, so a new track starts and is confirmed; with 2 the overlap carries it.
    assert len(_occluded_walk(DeepSORTTracker(iou_recovery_frames=frames))) == expected


def test_occluded_crops_do_not_teach_appearance():
    # A and B stand side by side; B's box covers 60 % of A's. With occluded_fraction 0.5 A's EMA
    # keeps its first embedding; with 1.0 it drifts towards the blended crops.
    rng = np.random.default_rng(4)
    a, b, blend = unit(rng, 3)
    drift = {}
    for fraction in (0.5, 1.0):
        tracker = DeepSORTTracker(minimum_consecutive_frames=1, occluded_fraction=fraction, appearance_threshold=2.0)
        tracker.update_arrays(np.array([person(100, 300)]), np.array([0.9]), a[None])
        for f in range(1, 6):
            boxes = np.array([person(100 + f, 300), person(116 + f, 300)])
            tracker.update_arrays(boxes, np.array([0.9, 0.9]), np.stack([blend, b]))
        drift[fraction] = float(tracker._store.gallery[tracker._store.order[0], 0] @ a)
    assert drift[0.5] == pytest.approx(1.0, abs=1e-5)
    assert drift[1.0] < 0.9


def test_appearance_resolves_an_ambiguous_swap():
    """Two tracks meet and detections reappear swapped in position; appearance decides."""
    rng = np.random.default_rng(7)
    identity = unit(rng, 2)
    tracker = DeepSORTTracker(appearance_weight=1.0, appearance_threshold=0.5)
    left, right = person(300, 300), person(304, 301)
    for _ in range(5):
        ids = tracker.update_arrays(np.array([left, right]), None, identity)
    assert ids.tolist() == [1, 2]
    # Slightly moved boxes, swapped appearance: each box now carries the other's identity.
    ids = tracker.update_arrays(np.array([left, right]), None, identity[::-1])
    assert ids.tolist() == [2, 1]


def test_warmup_works_with_every_appearance_setting():
    for use_appearance in (None, True, False):
        tracker = DeepSORTTracker(use_appearance=use_appearance).warmup()
        assert tracker.frame_count == 0 and tracker.tracks == []


def test_repr_mentions_state():
    tracker = DeepSORTTracker(appearance_mode="ema")
    text = repr(tracker)
    assert "DeepSORTTracker(" in text and "ema" in text and "tracks=0" in text


@pytest.mark.parametrize("matching", ["cascade", "global"])
def test_track_lost_longer_than_the_buffer_never_returns(matching):
    tracker = DeepSORTTracker(lost_track_buffer=3, minimum_consecutive_frames=1, matching=matching)
    box = np.array([person(200, 200)])
    assert tracker.update_arrays(box).tolist() == [1]
    for _ in range(4):  # one frame more than the buffer
        tracker.update_arrays(np.zeros((0, 4)))
    assert tracker.update_arrays(box).tolist() == [2]
    for _ in range(3):  # exactly the buffer: the track is still there
        tracker.update_arrays(np.zeros((0, 4)))
    assert tracker.update_arrays(box).tolist() == [2]


@pytest.mark.parametrize("budget", [1, 3])
def test_galleries_never_grow_past_the_budget(budget):
    rng = np.random.default_rng(11)
    tracker = DeepSORTTracker(nn_budget=budget, minimum_consecutive_frames=1, appearance_mode="gallery")
    boxes = np.array([person(100 + 120 * i, 200) for i in range(4)])
    for step in range(10):
        tracker.update_arrays(boxes + step, None, unit(rng, 4))
        assert max(t.gallery_size for t in tracker.tracks) == min(step + 1, budget)
    assert tracker._store.gallery.shape[1] == budget


def test_roboflow_positional_arguments_bind_the_same_way(tmp_path):
    """roboflow trackers 2.0.1: (feature_extractor, device, lost_track_buffer, frame_rate, ...)."""
    from deepsort_edge.appearance.embedder import default_model_path

    tracker = DeepSORTTracker(str(default_model_path()), "cpu", 12, 15.0, 0.4, 2, 0.2, 0.6, 0.3, "euclidean")
    assert tracker.feature_extractor.providers == ["CPUExecutionProvider"]
    assert (tracker.lost_track_buffer, tracker.frame_rate, tracker.track_activation_threshold) == (12, 15.0, 0.4)
    assert (tracker.minimum_consecutive_frames, tracker.minimum_iou_threshold) == (2, 0.2)
    assert (tracker.appearance_threshold, tracker.appearance_weight, tracker.distance_metric) == (0.6, 0.3, "euclidean")
    assert tracker.maximum_frames_without_update == 6
    with pytest.raises(ValueError, match="not available"):
        DeepSORTTracker(str(default_model_path()), "rocm")


def test_float16_gallery_tracks_like_float32_and_saves_as_float32(tmp_path):
    from deepsort_edge.demo.synthetic import SceneConfig, generate_scene

    frames = generate_scene(SceneConfig(num_objects=12, seed=4, embedding_dim=32), 80)
    outputs = {}
    for dtype in ("float32", "float16"):
        tracker = DeepSORTTracker(appearance_mode="gallery", nn_budget=10, gallery_dtype=dtype)
        outputs[dtype] = [tracker.update_arrays(f.xyxy, f.scores, f.embeddings) for f in frames]
    assert all(np.array_equal(a, b) for a, b in zip(outputs["float32"], outputs["float16"]))
    assert tracker._store.gallery.dtype == np.uint16  # float16 bits
    path = tracker.save(tmp_path / "half.npz")
    resumed = DeepSORTTracker.load(path)
    assert resumed.gallery_dtype == "float16"
    np.testing.assert_array_equal(resumed._store.gallery[resumed._store.order], tracker._store.gallery[tracker._store.order])
    assert tracker.state_dict()["tracks"]["gallery"].dtype == np.float32


_FIRST_FRAME_COMPILES = """
import importlib, pkgutil, warnings
import numba, numpy as np
import deepsort_edge.kernels as kernels
from deepsort_edge import DeepSORTTracker

def overloads():
    counts = {}
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module("deepsort_edge.kernels." + info.name)
        for name, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher):
                counts[info.name + "." + name] = len(value.overloads)
    return counts

class Extractor:
    def extract_features(self, frame, detections):
        return np.stack([np.cos(detections[:, 0]), np.sin(detections[:, 0]), detections[:, 1] / 100 + 1], 1)

warnings.simplefilter("ignore")
trackers = [DeepSORTTracker(feature_extractor=Extractor(), minimum_consecutive_frames=1).warmup(),
            DeepSORTTracker(camera_motion="affine", appearance_mode="gallery").warmup(),
            DeepSORTTracker(minimum_consecutive_frames=1).warmup()]
before = overloads()
frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
boxes = np.array([[10., 10, 50, 110], [np.nan, 0, 5, 5], [100, 20, 140, 120]])
embeddings = np.random.default_rng(1).normal(size=(3, 3)).astype(np.float32)
for step in range(3):  # extractor; camera motion with given embeddings; the kernel's own checks
    trackers[0].update_arrays(boxes + step, frame=frame)
    trackers[1].update_arrays(boxes + step, None, embeddings, frame=frame)
    trackers[2].update_arrays(boxes + step, None, embeddings)
after = overloads()
print({name: (before.get(name), count) for name, count in after.items() if count != before.get(name)})
"""


def test_first_frames_after_warmup_compile_nothing():
    """Every Numba kernel a frame can reach has its signature after warmup(), bad rows included."""
    import subprocess
    import sys

    from .conftest import subprocess_env

    done = subprocess.run([sys.executable, "-c", _FIRST_FRAME_COMPILES], env=subprocess_env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{}", f"compiled after warmup: {done.stdout}"


@pytest.mark.parametrize(
    ("settings", "with_embeddings", "continues"),
    [
        ({}, False, True),  # motion only: 0.2
        ({}, True, False),  # with appearance: 0.3
        ({"minimum_iou_threshold": 0.3}, False, False),  # a value given holds for every frame
        ({"minimum_iou_threshold": 0.2}, True, True),
    ],
)
def test_default_minimum_iou_is_lower_in_frames_without_embeddings(settings, with_embeddings, continues):
    """A tentative track meets its next box at IoU 35/165 = 0.21 in the IoU stage (no velocity yet)."""
    tracker = DeepSORTTracker(minimum_consecutive_frames=2, **settings)
    embedding = np.ones((1, 4), np.float32) / 2.0 if with_embeddings else None
    first = np.array([[0.0, 0.0, 100.0, 200.0]])
    assert tracker.update_arrays(first, np.array([0.9]), embedding).tolist() == [-1]  # tentative
    ids = tracker.update_arrays(first + [65.0, 0.0, 65.0, 0.0], np.array([0.9]), embedding)
    assert ids.tolist() == ([1] if continues else [-1])  # else a new tentative track
