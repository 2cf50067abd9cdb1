"""deepsort-edge as roboflow trackers 2.6's ``deepsort``: registry, tuner, CLI, conventions.

Needs roboflow ``trackers`` >= 2.6 (skips otherwise, saying so). The checks use
roboflow's own machinery as the reference: its registry lookup, its
``search_space`` validation (run when the class is defined), its
``tracked_objects`` (built from ``tracks`` through ``TrackletProtocol``), its
MOT reader/writer and ``trackers track`` / ``Tuner`` end to end.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from importlib import metadata

import numpy as np
import pytest
import supervision as sv

from deepsort_edge import DeepSORTTracker
from deepsort_edge.integrations import roboflow as integration

from .conftest import subprocess_env


def _trackers_26():
    try:
        version = metadata.version("trackers")
    except metadata.PackageNotFoundError:
        pytest.skip("roboflow trackers is not installed (pip install 'trackers>=2.6' to run these)")
    if integration._trackers_version() < integration.MIN_TRACKERS_VERSION:
        pytest.skip(f"roboflow trackers {version} is installed; these tests need trackers>=2.6")
    from trackers.core.base import BaseTracker

    return BaseTracker


@pytest.fixture(scope="module")
def base_tracker():
    return _trackers_26()


def _walk(seed: int = 0, frames: int = 12):
    """Three boxes walking right, one confidence each, and a spurious low-score box."""
    rng = np.random.default_rng(seed)
    starts = np.array([[10, 20, 50, 120], [200, 40, 240, 140], [400, 10, 440, 110]], dtype=float)
    for t in range(frames):
        boxes = starts + np.array([6.0 * t, 1.0 * t, 6.0 * t, 1.0 * t]) + rng.normal(0, 0.5, (3, 4))
        yield sv.Detections(xyxy=boxes, confidence=np.array([0.9, 0.8, 0.95]), class_id=np.zeros(3, int))


def test_registered_under_deepsort(base_tracker):
    info = base_tracker._lookup_tracker("deepsort")
    assert info is not None and info.tracker_class is integration.register()
    assert issubclass(info.tracker_class, base_tracker)
    assert "deepsort" in base_tracker._registered_trackers()
    # roboflow validated search_space against __init__ when the class was defined.
    assert set(info.tracker_class.search_space) <= set(info.parameters)
    assert info.parameters["feature_extractor"].default_value == "auto"
    assert info.parameters["lost_track_buffer"].description  # parsed from the docstring


def test_same_ids_as_deepsort_tracker_and_tracked_objects(base_tracker):
    cls = integration.register()
    wrapped = cls(feature_extractor="none", minimum_consecutive_frames=2)
    plain = DeepSORTTracker(minimum_consecutive_frames=2)
    for detections in _walk():
        ours = wrapped.update(detections)
        np.testing.assert_array_equal(ours.tracker_id, plain.update(detections).tracker_id)
        assert ours is not detections
    assert sorted(set(ours.tracker_id)) == sorted(set(ours.tracker_id) - {-1}) and len(set(ours.tracker_id)) == 3
    # roboflow's own tracked_objects, built from our tracks through TrackletProtocol.
    objects = wrapped.tracked_objects
    confirmed = {v.track_id: v.xyxy for v in plain.tracks if v.confirmed}
    assert sorted(objects.tracker_id) == sorted(confirmed)
    for tid, box in zip(objects.tracker_id, objects.xyxy, strict=True):
        np.testing.assert_allclose(box, confirmed[tid], rtol=1e-6)
    assert all(hasattr(t, "number_of_successful_updates") for t in wrapped.tracks)

    wrapped.reset()
    assert wrapped.tracks == [] and len(wrapped.tracked_objects) == 0


def test_timestamps_order_the_calls(base_tracker):
    cls = integration.register()
    tracker = cls(feature_extractor="none", minimum_consecutive_frames=1)
    frames = list(_walk(frames=3))
    assert (tracker.update(frames[0], timestamp=1.0).tracker_id >= 0).all()
    with pytest.warns(UserWarning, match="earlier than"):
        skipped = tracker.update(frames[1], timestamp=0.5)
    assert (skipped.tracker_id == -1).all()
    assert (tracker.update(frames[1], timestamp=1.1).tracker_id >= 0).all()


def test_frame_unused_warns_like_roboflow(base_tracker):
    tracker = integration.register()(feature_extractor="none")
    with pytest.warns(UserWarning, match="does not use it"):
        tracker.update(next(_walk()), frame=np.zeros((240, 640, 3), np.uint8))


def test_auto_uses_appearance_only_with_frames(base_tracker):
    tracker = integration.register()(minimum_consecutive_frames=1)
    tracker.update(next(_walk()))  # frameless: motion only for this sequence
    assert tracker.deepsort.feature_extractor is None
    tracker.reset()
    frame = np.random.default_rng(0).integers(0, 256, (240, 640, 3), dtype=np.uint8)
    out = tracker.update(next(_walk()), frame=frame)
    assert tracker.deepsort.feature_extractor is not None and (out.tracker_id >= 0).all()


def test_bad_feature_extractor_type(base_tracker):
    with pytest.raises(TypeError, match="feature_extractor"):
        integration.register()(feature_extractor=3)


def _write_mot(path, sequence) -> None:
    with open(path, "w") as handle:
        for frame_index, detections in enumerate(sequence, start=1):
            for (x1, y1, x2, y2), score in zip(detections.xyxy, detections.confidence, strict=True):
                handle.write(f"{frame_index},-1,{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.2f},-1,-1,-1\n")


def _write_gt(path, sequence) -> None:
    with open(path, "w") as handle:
        for frame_index, detections in enumerate(sequence, start=1):
            for obj, (x1, y1, x2, y2) in enumerate(detections.xyxy, start=1):
                handle.write(f"{frame_index},{obj},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,1,1\n")


def test_roboflow_track_cli_runs_deepsort_with_its_defaults(base_tracker, tmp_path):
    """``trackers track --tracker deepsort`` through our entry point: the ids DeepSORTTracker gives.

    roboflow's CLI gives every tracker the first registered tracker's defaults
    for shared option names; the entry point passes deepsort's own instead.
    """
    from trackers.io.mot import _mot_frame_to_detections, load_mot_file

    sequence = list(_walk(frames=10))
    det, out = tmp_path / "det.txt", tmp_path / "out.txt"
    _write_mot(det, sequence)
    args = ["track", "--detections", str(det), "--tracker", "deepsort", "--mot-output", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "deepsort_edge.integrations.roboflow", *args],
        env=subprocess_env(), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = np.loadtxt(out, delimiter=",", ndmin=2)

    expected = []
    plain = DeepSORTTracker(class_aware=False)  # the wrapper's one changed default
    for frame, data in sorted(load_mot_file(det).items()):
        ids = plain.update(_mot_frame_to_detections(data)).tracker_id
        expected += [(frame, i) for i in ids]
    np.testing.assert_array_equal(rows[:, :2], np.array(expected, dtype=float))
    tracked = rows[rows[:, 1] >= 0]
    assert len(tracked) == 3 * 8 and len(np.unique(tracked[:, 1])) == 3  # confirmed at the 3rd frame


def test_cli_defaults_are_added_only_for_deepsort(base_tracker):
    add = integration._with_deepsort_defaults
    assert add(["track", "--tracker", "sort"]) == ["track", "--tracker", "sort"]
    assert add(["tune", "--tracker", "deepsort"]) == ["tune", "--tracker", "deepsort"]
    argv = add(["track", "--tracker", "deepsort", "--tracker.lost_track_buffer", "9"])
    assert argv.count("--tracker.lost_track_buffer") == 1 and "9" in argv
    options = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert options["--tracker.minimum_consecutive_frames"] == "3"
    assert options["--tracker.feature_extractor"] == "auto"
    assert "--tracker.class_aware" not in options  # a switch: its default is already ours


def test_roboflow_tuner_tunes_deepsort(base_tracker, tmp_path):
    pytest.importorskip("optuna", reason="roboflow's tuner needs optuna (pip install 'trackers[tune]')")
    from trackers.tune import Tuner

    sequence = list(_walk(frames=15))
    (tmp_path / "gt").mkdir()
    (tmp_path / "det").mkdir()
    _write_gt(tmp_path / "gt" / "walk.txt", sequence)
    _write_mot(tmp_path / "det" / "walk.txt", sequence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuner = Tuner("deepsort", tmp_path / "gt", tmp_path / "det", objective="MOTA", n_trials=3, seed=0,
                      fixed_params={"feature_extractor": "none"})
        best = tuner.run()
    assert set(best) == {*integration.SEARCH_SPACE, "feature_extractor"}
    assert len(tuner.study.trials) == 3
    assert max(t.value for t in tuner.study.trials) > 0.5  # three clean walks: MOTA well above 0


def test_register_without_trackers_says_what_to_install(monkeypatch):
    monkeypatch.setattr(integration, "_registered", None)
    monkeypatch.setattr(integration, "_trackers_version", lambda: (2, 0))
    with pytest.raises(ImportError, match=r"trackers>=2\.6.*|trackers >= 2\.6"):
        integration.register()
    assert integration.main(["track"]) == 2


@pytest.mark.parametrize("choice", ["default", "path"])
def test_named_appearance_model_is_used_from_the_first_frame(base_tracker, choice):
    from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor, default_model_path

    given = "default" if choice == "default" else str(default_model_path())
    tracker = integration.register()(feature_extractor=given, device="cpu", minimum_consecutive_frames=1)
    assert isinstance(tracker.deepsort.feature_extractor, DeepSORTFeatureExtractor)
    frame = np.random.default_rng(1).integers(0, 256, (240, 640, 3), dtype=np.uint8)
    assert (tracker.update(next(_walk()), frame=frame).tracker_id >= 0).all()
    with pytest.raises(ValueError, match="frame"):
        tracker.update(next(_walk()))  # appearance without a frame: the tracker's own error
