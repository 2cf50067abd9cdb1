"""Bad input, saved state, threads and a read-only install."""

from __future__ import annotations

import copy
import os
import pickle
import shutil
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
import supervision as sv

from deepsort_edge import DeepSORTTracker
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene
from deepsort_edge.tracking.validation import InvalidDetectionWarning
from tests.common import BlockingExtractor, assert_same_state, run

from .conftest import PACKAGE_PARENT


def scene(num_frames: int = 80, seed: int = 0, dim: int = 16):
    cfg = SceneConfig(num_objects=12, width=1280, height=720, seed=seed, turnover=0.01, miss_rate=0.1,
                      box_noise=2.0, false_positive_rate=0.05, embedding_dim=dim)
    return generate_scene(cfg, num_frames)


def warmed_tracker(**kwargs) -> DeepSORTTracker:
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, **kwargs)
    run(tracker, scene(10))
    return tracker


GOOD = np.array([[10.0, 10.0, 50.0, 110.0], [200.0, 40.0, 240.0, 140.0]])

STRUCTURAL_ERRORS = [
    (dict(xyxy=np.zeros((2, 3))), ValueError, "xyxy must have shape"),
    (dict(xyxy=np.zeros(4)), ValueError, "xyxy must have 2 dimension"),
    (dict(xyxy=[["a", "b", "c", "d"]]), TypeError, "xyxy must hold numbers"),
    (dict(xyxy=GOOD + 0j), TypeError, "xyxy must hold real numbers, got complex dtype complex128"),
    (dict(xyxy=GOOD, scores=np.ones(2, np.complex64)), TypeError, "scores must hold real numbers, got complex"),
    (dict(xyxy=GOOD, embeddings=np.ones((2, 16)) * 1j), TypeError, "embeddings must hold real numbers"),
    (dict(xyxy=GOOD.astype("datetime64[s]")), TypeError, "xyxy must hold numbers, got dtype datetime64"),
    (dict(xyxy=GOOD, scores=np.ones(3)), ValueError, "scores must have shape"),
    (dict(xyxy=GOOD, embeddings=np.ones((2, 7))), ValueError, "embeddings must have dimension 16"),
    (dict(xyxy=GOOD, embeddings=np.ones((3, 16))), ValueError, "embeddings must have 2 rows"),
    (dict(xyxy=GOOD, frame=np.zeros((10, 10), np.uint8)), ValueError, "frame must have shape"),
    (dict(xyxy=GOOD, frame=np.zeros((10, 10, 3), np.float32)), TypeError, "frame must have dtype uint8"),
]


@pytest.mark.parametrize("kwargs, error, message", STRUCTURAL_ERRORS)
def test_structural_errors_name_the_argument_and_leave_state_unchanged(kwargs, error, message):
    tracker = warmed_tracker()
    before = tracker.state_dict()
    with pytest.raises(error, match=message):
        tracker.update_arrays(**kwargs)
    assert_same_state(before, tracker.state_dict())


BAD_ROWS = [
    ("non-finite", np.array([[np.nan, 1, 5, 5]]), None),
    ("inf", np.array([[0, 1, np.inf, 5]]), None),
    ("inverted", np.array([[10, 10, 5, 20]]), None),
    ("zero-area", np.array([[10, 10, 10, 20]]), None),
    ("score nan", np.array([[10, 10, 20, 40]]), np.array([np.nan])),
    ("score inf", np.array([[10, 10, 20, 40]]), np.array([np.inf])),
    ("far away", np.array([[1e200, 10, 2e200, 40]]), None),
    ("just beyond range", np.array([[10, 10, 20, 1.000001e6]]), None),
]


@pytest.mark.parametrize("name, bad_box, bad_score", BAD_ROWS)
def test_bad_rows_raise_or_drop_and_never_change_state_when_rejected(name, bad_box, bad_score):
    boxes = np.vstack([GOOD, bad_box])
    scores = np.r_[0.9, 0.9, bad_score if bad_score is not None else 0.9]
    strict = warmed_tracker(on_invalid="raise")
    before = strict.state_dict()
    with pytest.raises(ValueError, match="invalid detections"):
        strict.update_arrays(boxes, scores)
    assert_same_state(before, strict.state_dict())

    lenient = warmed_tracker()
    reference = warmed_tracker()
    with pytest.warns(InvalidDetectionWarning, match="dropped 1 of 3"):
        ids = lenient.update_arrays(boxes, scores)
    assert ids[2] == -1
    # The good rows are tracked exactly as if the bad row had never been there.
    assert ids[:2].tolist() == reference.update_arrays(GOOD, scores[:2]).tolist()
    assert_same_state(reference.state_dict(), lenient.state_dict())


def test_rejected_first_embeddings_do_not_fix_the_dimension():
    """The first frame with embeddings sets the tracker's dimension only if the frame is taken."""
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, on_invalid="raise")
    bad = np.ones((2, 16), np.float32)
    bad[1] = np.nan
    with pytest.raises(ValueError, match="embedding not finite"):
        tracker.update_arrays(GOOD, None, bad)
    assert tracker.state_dict()["embedding_dim"] == 0
    assert len(tracker.tracks) == 0
    # Another model's 8-d embeddings are then as welcome as on a new tracker.
    fresh = DeepSORTTracker(minimum_consecutive_frames=1, on_invalid="raise")
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    assert tracker.update_arrays(GOOD, None, emb).tolist() == fresh.update_arrays(GOOD, None, emb).tolist()
    assert_same_state(fresh.state_dict(), tracker.state_dict())


def test_coordinate_range_is_stated_in_the_warning():
    from deepsort_edge.tracking.validation import MAX_COORDINATE

    tracker = warmed_tracker()
    edge = np.array([[MAX_COORDINATE - 100, 10, MAX_COORDINATE, 200]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker.update_arrays(edge)  # on the bound: valid
    with pytest.warns(InvalidDetectionWarning, match=r"a coordinate beyond \+-1e\+06"):
        tracker.update_arrays(edge + 1)


def test_unnormalised_scores_are_kept_and_read_on_their_own_range():
    """A detector with scores outside [0, 1] (percent, logits) is tracked, not dropped."""
    boxes = np.array([[10.0, 10.0, 50.0, 110.0], [200.0, 40.0, 240.0, 140.0], [400.0, 40.0, 440.0, 140.0]])
    tracker = DeepSORTTracker(minimum_consecutive_frames=1, track_activation_threshold=0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = tracker.update(sv.Detections(xyxy=boxes, confidence=np.array([87.0, -3.0, 30.0]))).tracker_id
    # score_calibration="unit" reads them on the range seen, [-3, 87]: 87 -> 1 and 30 -> 0.37 start
    # tracks; -3 -> 0 is below the threshold.
    assert ids.tolist() == [1, -1, 2]
    # A low score continues an existing track: only starting one needs the threshold.
    assert tracker.update_arrays(boxes[:1] + 1, np.array([-50.0])).tolist() == [1]
    drop_in = DeepSORTTracker(preset="roboflow-2.0.1", minimum_consecutive_frames=1)
    assert drop_in.update_arrays(boxes[:1], np.array([87.0])).tolist() == [1]
    assert drop_in.update_arrays(boxes[:1] + 1, np.array([-50.0])).tolist() == [1]


def test_bad_embeddings_and_boxes_outside_the_frame_are_dropped():
    tracker = warmed_tracker()
    emb = np.ones((2, 16))
    emb[1, 3] = np.nan
    with pytest.warns(InvalidDetectionWarning, match="embedding not finite"):
        assert tracker.update_arrays(GOOD, None, emb)[1] == -1
    frame = np.zeros((100, 100, 3), np.uint8)
    with pytest.warns(InvalidDetectionWarning, match="wholly outside the frame"):
        ids = tracker.update_arrays(np.array([[10, 10, 50, 90], [150, 10, 190, 90]]), frame=frame)
    assert ids[1] == -1


def test_invalid_settings_are_rejected_with_names():
    for kwargs, message in [
        (dict(nn_budget=0), "nn_budget must be >= 1"),
        (dict(appearance_mode="median"), "appearance_mode must be one of"),
        (dict(minimum_iou_threshold=1.5), r"minimum_iou_threshold must be in \[0.0, 1.0\]"),
        (dict(frame_rate=0), "frame_rate must be in"),
        (dict(distance_metric="cityblock"), "distance_metric must be one of"),
        (dict(lost_track_buffer=2.5), "lost_track_buffer must be an int"),
        (dict(feature_extractor=42), "feature_extractor must be"),
    ]:
        with pytest.raises((ValueError, TypeError), match=message):
            DeepSORTTracker(**kwargs)
    with pytest.raises(TypeError, match="supervision.Detections"):
        DeepSORTTracker().update(GOOD)


def test_empty_detections_are_fine():
    tracker = warmed_tracker()
    for empty in (np.zeros((0, 4)), np.zeros((0, 0)), []):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert tracker.update_arrays(empty).shape == (0,)
    assert tracker.update(sv.Detections.empty()).tracker_id.shape == (0,)


@pytest.mark.parametrize("mode", ["gallery", "ema"])
def test_resume_from_saved_state_matches_uninterrupted_run(mode):
    frames = scene(120, seed=3)
    whole = DeepSORTTracker(appearance_mode=mode, nn_budget=5)
    expected = run(whole, frames)
    first = DeepSORTTracker(appearance_mode=mode, nn_budget=5)
    got = run(first, frames[:47])
    saved = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = DeepSORTTracker()  # other settings: the state brings its own
    resumed.load_state_dict(saved)
    got += run(resumed, frames[47:])
    assert got == expected
    assert_same_state(whole.state_dict(), resumed.state_dict())


def test_pickle_round_trip_continues_identically():
    frames = scene(60, seed=4)
    a = DeepSORTTracker(gating="position")
    run(a, frames[:30])
    b = pickle.loads(pickle.dumps(a))
    assert repr(a) == repr(b)
    assert run(a, frames[30:]) == run(b, frames[30:])


def test_state_version_and_format_errors_leave_tracker_unchanged():
    tracker = warmed_tracker()
    state = tracker.state_dict()
    before = tracker.state_dict()
    with pytest.raises(ValueError, match="version 99 is not supported"):
        tracker.load_state_dict({**state, "version": 99})
    with pytest.raises(ValueError, match="not a deepsort-edge tracker state"):
        tracker.load_state_dict({"hello": 1})
    broken = {**state, "tracks": {**state["tracks"], "mean": state["tracks"]["mean"][:, :3]}}
    with pytest.raises(ValueError, match="'tracks.mean' has shape"):
        tracker.load_state_dict(broken)
    assert_same_state(before, tracker.state_dict())


def test_threads_give_the_same_results_as_one_after_the_other():
    scenes = [scene(150, seed=s, dim=64) for s in range(4)]
    sequential = [run(DeepSORTTracker(), frames) for frames in scenes]
    results: list = [None] * 4

    def work(i: int) -> None:
        results[i] = run(DeepSORTTracker(), scenes[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == sequential


@pytest.mark.slow
def test_read_only_install_still_runs(tmp_path):
    """A package in a read-only folder falls back to a user cache for Numba."""
    install = tmp_path / "site"
    shutil.copytree(PACKAGE_PARENT / "deepsort_edge", install / "deepsort_edge", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [install, *install.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "PYTHONPATH": str(install), "NUMBA_CACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
    code = (
        "import numpy as np; from deepsort_edge import DeepSORTTracker;"
        "t = DeepSORTTracker(minimum_consecutive_frames=1).warmup();"
        "print(t.update_arrays(np.array([[0., 0., 10., 30.]])).tolist())"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "[1]"
        assert any(cache.rglob("*.nbi")), "Numba should have written its cache to NUMBA_CACHE_DIR"
        assert not any(install.rglob("*.nbi"))
    finally:
        for path in [install, *install.rglob("*")]:
            path.chmod(0o755)


def test_pickled_tracker_keeps_its_feature_extractor():
    from deepsort_edge import DeepSORTFeatureExtractor

    tracker = DeepSORTTracker(feature_extractor=DeepSORTFeatureExtractor.default(batch_size=4))
    frame = np.random.default_rng(0).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    for step in range(4):
        tracker.update_arrays(GOOD + step, frame=frame)
    clone = pickle.loads(pickle.dumps(tracker))
    assert clone.feature_extractor.batch_size == 4
    assert clone.feature_extractor.model_path == tracker.feature_extractor.model_path
    boxes = GOOD + 5
    np.testing.assert_allclose(
        clone.feature_extractor.extract_features(frame, boxes), tracker.feature_extractor.extract_features(frame, boxes)
    )
    assert clone.update_arrays(boxes, frame=frame).tolist() == tracker.update_arrays(boxes, frame=frame).tolist()


def test_concurrent_update_of_one_tracker_raises_instead_of_corrupting():
    extractor = BlockingExtractor()
    tracker = DeepSORTTracker(feature_extractor=extractor, minimum_consecutive_frames=1)
    frame = np.zeros((240, 320, 3), np.uint8)
    outcome: dict = {}

    def first() -> None:
        outcome["ids"] = tracker.update_arrays(GOOD, frame=frame)

    worker = threading.Thread(target=first)
    worker.start()
    assert extractor.entered.wait(60)
    try:
        with pytest.raises(RuntimeError, match="another thread; .*use one tracker per thread"):
            tracker.update_arrays(GOOD + 1, frame=frame)
    finally:
        extractor.release.set()
        worker.join()
    assert outcome["ids"].tolist() == [1, 2]
    # The rejected call changed nothing; the tracker goes on with the first call's tracks.
    assert tracker.frame_count == 1 and [t.track_id for t in tracker.tracks] == [1, 2]
    with pytest.raises(ValueError):
        tracker.update_arrays(np.zeros((2, 3)))  # a failing call releases the guard too
    assert tracker.update_arrays(GOOD, frame=frame).tolist() == [1, 2]
    # Copies get a guard of their own.
    clone = copy.deepcopy(DeepSORTTracker(minimum_consecutive_frames=1))
    assert clone._busy is not None and clone.update_arrays(GOOD).tolist() == [1, 2]


def test_embeddings_of_any_finite_scale_are_normalised_not_dropped():
    tracker = DeepSORTTracker(minimum_consecutive_frames=1)
    direction = np.random.default_rng(2).normal(size=(2, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for scale in (1e30, 1e-30):  # squares overflow / underflow in float32
            tracker.update_arrays(GOOD, None, direction * scale)
    gallery = tracker.state_dict()["tracks"]["gallery"]
    np.testing.assert_allclose(np.linalg.norm(gallery[:, :2], axis=2), 1.0, rtol=1e-6)
