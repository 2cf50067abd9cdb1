"""Recorded sequences: the tracker must keep giving the outputs it gave when they were recorded.

``tests/data/recorded_tracks.npz`` records the implementation of commit
1256611 (the pre-fusion engine: ``DeepSORTTracker._step`` calling separate
Numba kernels) on 24 seeded synthetic sequences that cover the settings which
change the per-frame path: gallery (ring buffer of 8, so it wraps) and ema,
cascade and global matching, full and position gating, cosine and euclidean,
IoU and Mahalanobis motion cost, low-score matching on and off, minimum_score,
confidence noise / embedding weighting off, coast damping, class-aware and
class-blind with three classes, both lost-track rules, motion only, frames
without detections or without embeddings, invalid rows, no scores, the
"paper" and "roboflow-2.0.1" presets and a crowded scene (~150 people).
``camera_motion="affine"`` is not recorded: the tracker estimates the affine
map only from frames (OpenCV optical flow), which ``update_arrays`` without
frames cannot reach.

Each case is replayed through the public API,
``DeepSORTTracker(**settings).update_arrays(..., return_boxes=True)``: ids must
be identical and boxes equal to 1e-9, and after the last frame the live
tracks (tentative ones too) must have the recorded counters and Kalman state
(1e-9) and, in ema mode, embeddings (1e-5: float32). The file must only be regenerated
deliberately, when tracking behaviour is *meant* to change (``python -m
tests.record`` from the repository root; its docstring has the file layout),
and the commit must say why.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge import DeepSORTTracker
from deepsort_edge.tracking.validation import InvalidDetectionWarning

from .record import FORMAT

RECORDING = Path(__file__).resolve().parent / "data" / "recorded_tracks.npz"
# Galleries have wrapped (nn_budget 8) and tracks are in every state by then.
SAVE_CASE, SAVE_AT = "gallery_budget8", 55


def _load() -> dict[str, dict]:
    with np.load(RECORDING, allow_pickle=False) as data:
        assert str(data["format"]) == FORMAT
        cases = {}
        for name in data["cases"].tolist():
            arrays = {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith(f"{name}/")}
            arrays["meta"] = json.loads(str(arrays.pop("settings")))
            cases[name] = arrays
    return cases


CASES = _load()


def _frame_inputs(case: dict, f: int) -> tuple:
    """``update_arrays`` arguments of frame ``f`` (0-based), as recorded."""
    lo, hi = case["offsets"][f], case["offsets"][f + 1]
    meta = case["meta"]
    xyxy = case["xyxy"][lo:hi]
    scores = case["scores"][lo:hi] if meta["pass_scores"] else None
    classes = case["class_id"][lo:hi].astype(np.int64) if meta["pass_class_id"] else None
    embeddings = case["embeddings"][lo:hi].astype(np.float32) if case["has_embeddings"][f] else None
    return xyxy, scores, embeddings, classes


def _replay(tracker: DeepSORTTracker, case: dict, frames: range) -> None:
    """Run ``frames`` through ``tracker``, comparing every frame's outputs with the recording."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InvalidDetectionWarning)  # the invalid-rows case warns by design
        for f in frames:
            xyxy, scores, embeddings, classes = _frame_inputs(case, f)
            ids, boxes = tracker.update_arrays(xyxy, scores, embeddings, class_id=classes, return_boxes=True)
            lo, hi = case["offsets"][f], case["offsets"][f + 1]
            np.testing.assert_array_equal(ids, case["ids"][lo:hi], err_msg=f"ids differ at frame {f + 1}")
            np.testing.assert_allclose(
                boxes, case["out_xyxy"][lo:hi], rtol=1e-9, atol=1e-9, err_msg=f"boxes differ at frame {f + 1}"
            )


FINAL_INTS = ("track_id", "state", "hits", "age", "time_since_update", "gallery_count", "class_id")


def _check_final_state(tracker: DeepSORTTracker, case: dict) -> None:
    """The live tracks after the last frame, tentative ones included, in birth order."""
    tracks = tracker.state_dict()["tracks"]
    ints = np.stack([tracks[k].astype(np.int64) for k in FINAL_INTS], axis=1).reshape(-1, len(FINAL_INTS))
    np.testing.assert_array_equal(ints, case["final_ints"], err_msg=f"final tracks differ in {FINAL_INTS}")
    np.testing.assert_allclose(tracks["mean"], case["final_mean"], rtol=1e-9, atol=1e-9)
    cov_diag = np.diagonal(tracks["covariance"], axis1=1, axis2=2)
    np.testing.assert_allclose(cov_diag, case["final_cov_diag"], rtol=1e-9, atol=1e-9)
    if tracks["gallery"].shape[1] == 1:  # ema: a computed float32 embedding per track
        np.testing.assert_allclose(tracks["gallery"], case["final_gallery"], rtol=1e-5, atol=1e-6)


# Settings added since the recording, or whose default changed since (minimum_iou_threshold: 0.2 in frames
# without embeddings; test_tracker tests that), at the values that keep the recorded behaviour.
SINCE_RECORDING = {"appearance_gate_scale": 1.0, "gallery_dtype": "float32", "iou_recovery_frames": 1,
                   "minimum_iou_threshold": 0.3, "recent_track_rule": "none",
                   "new_track_margin": 0.0, "aspect_noise": 0.01, "aspect_velocity_noise": 1e-5}


def _tracker(case: dict) -> DeepSORTTracker:
    meta = case["meta"]
    # lost_track_rule's default changed since ("overlap" then, "far" now): the rule each case ran with.
    recorded_rule = {"lost_track_rule": meta["resolved"]["lost_track_rule"]}
    tracker = DeepSORTTracker(**{**SINCE_RECORDING, **recorded_rule, **meta["constructor"]})
    # Presets and defaults must still resolve to the recorded settings (new settings may be added).
    resolved = tracker.settings.to_dict()
    assert {k: resolved.get(k) for k in meta["resolved"]} == meta["resolved"]
    return tracker


def test_recording_is_complete():
    names = set(CASES)
    assert len(names) >= 15
    assert {"crowded_gallery", "preset_paper", "preset_roboflow", "motion_only"} <= names
    for name, case in CASES.items():
        frames = case["offsets"].size - 1
        assert 60 <= frames <= 150, name
        assert case["ids"].size == case["xyxy"].shape[0] == case["out_xyxy"].shape[0], name
        # Every case has tracks confirmed and, with ids handed out over time, born later on.
        assert case["ids"].max() >= 5, name
    crowded = CASES["crowded_gallery"]
    assert np.diff(crowded["offsets"]).mean() > 100


@pytest.mark.parametrize("name", list(CASES))
def test_recorded_sequence_replays_identically(name):
    case = CASES[name]
    tracker = _tracker(case)
    _replay(tracker, case, range(case["offsets"].size - 1))
    _check_final_state(tracker, case)


def test_save_and_load_mid_sequence_continues_identically(tmp_path):
    case = CASES[SAVE_CASE]
    tracker = _tracker(case)
    _replay(tracker, case, range(SAVE_AT))
    path = tracker.save(tmp_path / "mid.npz")
    del tracker
    resumed = DeepSORTTracker.load(path)
    _replay(resumed, case, range(SAVE_AT, case["offsets"].size - 1))
    _check_final_state(resumed, case)
