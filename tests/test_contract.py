"""The tracker contract: what a roboflow trackers user relies on, and the two-phase API.

Each test states the behaviour a 2.0.1 (or 2.6 ``BaseTracker``) user expects
and checks it against plain numpy or a second tracker run the one-phase way.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import supervision as sv

from deepsort_edge import DeepSORTTracker, MultiStreamTracker
from deepsort_edge.tracking.settings import TrackerSettings
from deepsort_edge.tracking.tracker import FrameResult, PreparedFrame
from tests.common import BlockingExtractor



def person(cx: float, cy: float, h: float = 100.0) -> list[float]:
    """A person-shaped box (width 0.4 h) centred on ``(cx, cy)``, xyxy."""
    w = 0.4 * h
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _scene(frames: int = 12, seed: int = 0) -> list[sv.Detections]:
    """Three people walking right, with scores, classes, masks and a data column."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(frames):
        boxes = np.array([person(40 + 120 * k + 3 * t, 60 + 10 * k) for k in range(3)], dtype=np.float64)
        boxes += rng.normal(0, 0.5, boxes.shape)
        mask = np.zeros((3, 240, 480), dtype=bool)
        for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            mask[k, max(y1, 0):y2, max(x1, 0):x2] = True
        out.append(sv.Detections(
            xyxy=boxes, confidence=np.array([0.9, 0.8, 0.7]), class_id=np.array([0, 0, 1]), mask=mask,
            data={"name": np.array(["a", "b", "c"]), "embeddings": rng.normal(size=(3, 8)).astype(np.float32)},
        ))
    return out


class RecordingExtractor:
    """A 2.0.1-style user extractor: reads ``detections.xyxy``; records what it was given."""

    def __init__(self) -> None:
        self.given: list[object] = []

    def extract_features(self, frame: np.ndarray, detections: object) -> np.ndarray:
        self.given.append(detections)
        boxes = detections.xyxy if isinstance(detections, sv.Detections) else np.asarray(detections)
        # Deterministic features from the box position only.
        return np.stack([np.cos(boxes[:, 0] / 50.0), np.sin(boxes[:, 0] / 50.0), boxes[:, 1] / 100.0 + 1], 1)


# --------------------------------------------------------------------------- drop-in (2.0.1)
def test_user_extractor_gets_detections_from_update_and_arrays_from_update_arrays():
    frame = np.zeros((240, 480, 3), np.uint8)
    dets = _scene(1)[0]
    dets.data.pop("embeddings")
    first = RecordingExtractor()
    DeepSORTTracker(feature_extractor=first).update(dets, frame)
    (given,) = first.given
    assert isinstance(given, sv.Detections) and len(given) == 3
    np.testing.assert_array_equal(given.xyxy, dets.xyxy)
    np.testing.assert_array_equal(given.mask, dets.mask)  # the rows, with everything they carry
    second = RecordingExtractor()
    DeepSORTTracker(feature_extractor=second).update_arrays(dets.xyxy, dets.confidence, frame=frame)
    (given,) = second.given
    assert isinstance(given, np.ndarray) and given.shape == (3, 4)
    np.testing.assert_array_equal(given, dets.xyxy)


def test_extractor_gets_only_the_rows_that_take_part():
    frame = np.zeros((240, 480, 3), np.uint8)
    dets = _scene(1)[0]
    dets.data.pop("embeddings")
    dets.xyxy[1] = [50.0, 50.0, 40.0, 40.0]  # inverted: dropped with a warning
    extractor = RecordingExtractor()
    tracker = DeepSORTTracker(feature_extractor=extractor, minimum_score=0.75, minimum_consecutive_frames=1)
    with pytest.warns(UserWarning, match="dropped 1 of 3"):
        out = tracker.update(dets, frame)
    (given,) = extractor.given
    np.testing.assert_array_equal(given.xyxy, dets.xyxy[[0]])  # row 2 scores under minimum_score
    assert out.tracker_id.tolist() == [1, -1, -1]


def test_trackers_items_carry_roboflows_names():
    tracker = DeepSORTTracker(minimum_consecutive_frames=2)
    dets = _scene(3)
    tracker.update(dets[0])
    assert [t.tracker_id for t in tracker.trackers] == [-1, -1, -1]  # tentative: no id yet
    assert tracker.tracked_objects == []
    tracker.update(dets[1])
    items = tracker.trackers
    assert [t.tracker_id for t in items] == [1, 2, 3]
    assert [t.number_of_successful_updates for t in items] == [2, 2, 2]
    assert [t.tracker_id for t in tracker.tracked_objects] == [1, 2, 3]
    for item, view in zip(items, tracker.tracks):
        box = item.get_state_bbox()
        assert box.shape == (4,)
        np.testing.assert_array_equal(box, view.xyxy)
        box[:] = 0  # a copy: the track is not changed
        assert np.all(item.get_state_bbox() == view.xyxy)


def test_minimum_consecutive_frames_zero_behaves_as_one():
    zero = DeepSORTTracker(minimum_consecutive_frames=0)
    one = DeepSORTTracker(minimum_consecutive_frames=1)
    for dets in _scene(10):
        a, b = zero.update(dets), one.update(dets)
        np.testing.assert_array_equal(a.tracker_id, b.tracker_id)
    assert a.tracker_id.tolist() == [1, 2, 3]


def test_result_shares_nothing_with_the_input():
    dets = _scene(1)[0]
    dets.metadata = {"camera": "a"}
    before = {name: np.array(value, copy=True) for name, value in (
        ("xyxy", dets.xyxy), ("confidence", dets.confidence), ("class_id", dets.class_id), ("mask", dets.mask))}
    names = dets.data["name"].copy()
    out = DeepSORTTracker(minimum_consecutive_frames=1).update(dets)
    for value in (out.xyxy, out.confidence, out.class_id, out.mask, out.data["name"], out.data["embeddings"]):
        value[...] = 0  # writing to the result ...
    out.data["extra"] = np.zeros(3)
    out.metadata["camera"] = "b"
    for name, value in before.items():  # ... leaves the caller's detections as they were
        np.testing.assert_array_equal(getattr(dets, name), value)
    np.testing.assert_array_equal(dets.data["name"], names)
    assert set(dets.data) == {"name", "embeddings"} and dets.metadata == {"camera": "a"}
    assert dets.tracker_id is None


def test_update_returns_detector_boxes_and_kalman_boxes_in_data():
    scene = _scene(8)
    tracker = DeepSORTTracker(minimum_consecutive_frames=1)
    twin = DeepSORTTracker(minimum_consecutive_frames=1)  # the same frames through update_arrays
    for dets in scene:
        out = tracker.update(dets)
        ids, kalman = twin.update_arrays(dets.xyxy, dets.confidence, dets.data["embeddings"],
                                         class_id=dets.class_id, return_boxes=True)
        np.testing.assert_array_equal(out.xyxy, dets.xyxy)  # the detector's boxes, so the masks match
        np.testing.assert_array_equal(out.mask, dets.mask)
        np.testing.assert_array_equal(out.tracker_id, ids)
        np.testing.assert_array_equal(out.data["track_xyxy"], kalman)
    assert not np.allclose(out.data["track_xyxy"], out.xyxy)  # the filter smooths the noisy boxes
    # Slicing keeps the Kalman boxes with their rows (supervision slices data like every field).
    np.testing.assert_array_equal(out[[2]].data["track_xyxy"], kalman[[2]])


# --------------------------------------------------------------------------- roboflow 2.6 conventions
def test_update_takes_a_timestamp_that_does_not_change_tracking():
    with_time, without = DeepSORTTracker(minimum_consecutive_frames=1), DeepSORTTracker(minimum_consecutive_frames=1)
    for t, dets in enumerate(_scene(6)):
        a = with_time.update(dets, None, timestamp=100.0 + t / 7)
        b = without.update(dets)
        np.testing.assert_array_equal(a.tracker_id, b.tracker_id)
    with pytest.raises(TypeError, match="timestamp must be a number"):
        with_time.update(dets, timestamp="now")
    with pytest.raises(ValueError, match="timestamp must be finite"):
        with_time.update(dets, timestamp=float("nan"))
    assert with_time.frame_count == 6  # the rejected calls changed nothing


# --------------------------------------------------------------------------- settings a user can trust
def test_assigned_setting_takes_effect_from_the_next_update(tmp_path):
    scene = _scene(10)
    changed = DeepSORTTracker(minimum_consecutive_frames=1)
    changed.update(scene[0])
    changed.reset()
    changed.track_activation_threshold = 0.75  # start at 0.85 (new_track_margin): only the 0.9 person from now on
    fresh = DeepSORTTracker(minimum_consecutive_frames=1, track_activation_threshold=0.75)
    for dets in scene[1:]:
        out = changed.update(dets)
        np.testing.assert_array_equal(out.tracker_id, fresh.update(dets).tracker_id)
    assert out.tracker_id.tolist() == [1, -1, -1]
    assert changed.settings == fresh.settings
    assert changed.state_dict()["settings"]["track_activation_threshold"] == 0.75
    assert changed.track_activation_threshold == 0.75 and DeepSORTTracker().track_activation_threshold == 0.3
    saved = DeepSORTTracker.load(changed.save(tmp_path / "t.npz"))
    assert saved.settings == changed.settings  # save() writes what runs


def test_assigned_setting_mid_stream_keeps_tracks_and_changes_what_follows():
    """Shortening max_age mid-stream: the people reappear after 3 empty frames as new tracks."""
    scene = _scene(8)
    empty = sv.Detections.empty()
    shortened = DeepSORTTracker(minimum_consecutive_frames=1, max_age=5, use_appearance=False)
    kept = DeepSORTTracker(minimum_consecutive_frames=1, max_age=5, use_appearance=False)
    for dets in scene[:4]:
        shortened.update(dets)
        kept.update(dets)
    shortened.maximum_frames_without_update = 2  # roboflow's attribute: sets max_age
    assert shortened.settings.max_age == 2 and shortened.maximum_frames_without_update == 2
    assert [t.track_id for t in shortened.tracks] == [1, 2, 3]  # the tracks stay
    for _ in range(3):
        shortened.update(empty)
        kept.update(empty)
    assert shortened.tracks == [] and len(kept.tracks) == 3
    assert shortened.update(scene[4]).tracker_id.tolist() == [4, 5, 6]
    assert kept.update(scene[4]).tracker_id.tolist() == [1, 2, 3]


@pytest.mark.parametrize(("name", "value", "error"), [
    ("track_activation_threshold", float("nan"), ValueError),
    ("appearance_threshold", 3.0, ValueError),
    ("distance_metric", "manhattan", ValueError),
    ("nn_budget", 1.5, TypeError),
])
def test_assigning_a_bad_value_raises_and_changes_nothing(name, value, error):
    tracker = DeepSORTTracker()
    before = tracker.settings
    with pytest.raises(error, match=name):
        setattr(tracker, name, value)
    assert tracker.settings == before and getattr(tracker, name) == getattr(before, name)


def test_store_shaping_settings_change_only_without_tracks():
    tracker = DeepSORTTracker(minimum_consecutive_frames=1)
    tracker.appearance_mode = "gallery"  # no track yet: allowed
    tracker.update(_scene(1)[0])
    with pytest.raises(ValueError, match="call reset"):
        tracker.nn_budget = 5
    assert tracker.settings.nn_budget == 100
    tracker.reset()
    tracker.nn_budget = 5
    tracker.update(_scene(1)[0])
    assert tracker.state_dict()["tracks"]["gallery"].shape[1] == 5


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown tracker settings"):
        DeepSORTTracker().configure(lost_buffer=3)


# --------------------------------------------------------------------------- two-phase API
def test_prepare_commit_equals_update_and_returns_one_type_each():
    frame = np.zeros((240, 480, 3), np.uint8)
    scene = _scene(8)
    for dets in scene:
        dets.data.pop("embeddings")
    one = DeepSORTTracker(feature_extractor=RecordingExtractor(), minimum_consecutive_frames=2)
    two = DeepSORTTracker(feature_extractor=RecordingExtractor(), minimum_consecutive_frames=2)
    outside = RecordingExtractor()
    for dets in scene:
        prepared = two.prepare(dets, frame)
        assert isinstance(prepared, PreparedFrame) and prepared.embed_rows.tolist() == [0, 1, 2]
        features = outside.extract_features(prepared.frame, prepared.embed_input)
        result = two.commit(prepared, features)
        assert isinstance(result, FrameResult)
        np.testing.assert_array_equal(result.ids, one.update(dets, frame).tracker_id)
    assert result.ids.tolist() == [1, 2, 3]


def test_commit_refuses_stale_foreign_or_mismatched_frames():
    a, b = DeepSORTTracker(feature_extractor=RecordingExtractor()), DeepSORTTracker()
    frame = np.zeros((240, 480, 3), np.uint8)
    dets = _scene(1)[0]
    dets.data.pop("embeddings")
    prepared = a.prepare(dets, frame)
    with pytest.raises(ValueError, match="features are required"):
        a.commit(prepared)
    with pytest.raises(ValueError, match=r"expected \(3, D\)"):
        a.commit(prepared, np.ones((2, 4)))
    with pytest.raises(ValueError, match="stale"):
        b.commit(prepared, np.ones((3, 4)))
    assert a.frame_count == 0  # nothing above changed the tracker
    a.commit(prepared, np.ones((3, 4)))
    with pytest.raises(ValueError, match="stale"):
        a.commit(prepared, np.ones((3, 4)))  # twice
    plain = b.prepare_arrays(dets.xyxy)
    with pytest.raises(ValueError, match="no row of this prepared frame needs them"):
        b.commit(plain, np.ones((3, 4)))


def test_commit_with_a_bad_row_checks_once_and_drops_it():
    """Rows are checked in the kernel; a bad one is dropped and the rest tracked as if it were absent."""
    boxes = np.array([person(50, 50), [np.nan, 0, 10, 10], person(200, 60)])
    tracker = DeepSORTTracker(minimum_consecutive_frames=1)
    clean = DeepSORTTracker(minimum_consecutive_frames=1)
    for step in range(3):
        with pytest.warns(UserWarning, match="1 with non-finite coordinates"):
            ids = tracker.commit(tracker.prepare_arrays(boxes + step)).ids
        np.testing.assert_array_equal(ids[[0, 2]], clean.update_arrays(boxes[[0, 2]] + step))
        assert ids[1] == -1
    raising = DeepSORTTracker(on_invalid="raise")
    with pytest.raises(ValueError, match="invalid detections"):
        raising.commit(raising.prepare_arrays(boxes))
    assert raising.frame_count == 0 and raising.tracks == []


# --------------------------------------------------------------------------- threads
def test_multistream_second_thread_raises_instead_of_losing_frames():
    extractor = BlockingExtractor()
    multi = MultiStreamTracker(feature_extractor=extractor, minimum_consecutive_frames=1)
    frame = np.zeros((240, 480, 3), np.uint8)
    dets = sv.Detections(xyxy=np.array([person(50, 50)]), confidence=np.array([0.9]))
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("out", multi.update({"a": dets}, {"a": frame})))
    worker.start()
    assert extractor.entered.wait(60)
    try:
        with pytest.raises(RuntimeError, match="another thread; .*one MultiStreamTracker per thread"):
            multi.update({"b": dets}, {"b": frame})  # a disjoint stream: still refused, not silently lost
    finally:
        extractor.release.set()
        worker.join(60)
    assert outcome["out"]["a"].tracker_id.tolist() == [1]
    assert multi.streams == ("a",) and multi.frame_count("a") == 1
    assert multi.update({"b": dets}, {"b": frame})["b"].tracker_id.tolist() == [1]  # free again


def test_schema_allows_zero_consecutive_frames():
    assert TrackerSettings(minimum_consecutive_frames=0).minimum_consecutive_frames == 0


def test_ray_refuses_camera_motion_it_cannot_see():
    """Tracker actors get frame shapes, never pixels: camera motion is refused, not silently off."""
    pytest.importorskip("ray")
    from deepsort_edge.streams.distributed import RayMultiStreamTracker

    with pytest.raises(ValueError, match="camera_motion='affine' is not supported by RayMultiStreamTracker"):
        RayMultiStreamTracker(camera_motion="affine")


def test_multistream_camera_motion_runs_where_the_frames_are():
    """In-process, each stream's commit estimates its camera motion from its own frames."""
    rng = np.random.default_rng(3)
    texture = rng.integers(0, 255, (260, 360, 3), dtype=np.uint8)
    multi = MultiStreamTracker(camera_motion="affine", minimum_consecutive_frames=1, use_appearance=False)
    alone = DeepSORTTracker(camera_motion="affine", minimum_consecutive_frames=1, use_appearance=False)
    for t in range(6):
        frame = np.ascontiguousarray(texture[10:250, 4 * t : 4 * t + 320])  # the camera pans 4 px a frame
        dets = sv.Detections(xyxy=np.array([person(100 - 4 * t, 120)]), confidence=np.array([0.9]))
        got = multi.update({"cam": dets}, {"cam": frame})["cam"]
        want = alone.update(dets, frame)
        np.testing.assert_array_equal(got.tracker_id, want.tracker_id)
        np.testing.assert_allclose(got.data["track_xyxy"], want.data["track_xyxy"])
    assert multi.tracks("cam")[0].track_id == 1
