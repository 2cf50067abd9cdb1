"""typical_score: the activation threshold in force, against a plain-numpy replay of the rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from deepsort_edge import DeepSORTTracker
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene
from deepsort_edge.tracking.score_calibration import WINDOW, ScoreCalibration
from deepsort_edge.tracking.score_split import (
    EVERY, MINIMUM_SCORES, split_threshold, start_threshold, threshold_in_force, window_median,
)
from deepsort_edge.tracking.settings import PRESETS, TrackerSettings
from tests.common import assert_same_state, run

# Scores 0.5-1 for people, 0.1-0.6 for false positives; 120 frames, ~1,260 scores (past MINIMUM_SCORES by frame ~26).
FRAMES = generate_scene(SceneConfig(num_objects=10, width=640, height=480, seed=3, turnover=0.02, miss_rate=0.1,
                                    box_noise=2.0, false_positive_rate=0.15, embedding_dim=8), 120)


def rescored(factor: float) -> list:
    """FRAMES with every score times ``factor`` (0.5: a HOG-like detector, median ~0.36)."""
    return [dataclasses.replace(f, scores=f.scores.astype(np.float64) * factor) for f in FRAMES]


def test_window_median_is_the_upper_middle_of_the_sorted_scores() -> None:
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 64, 2048):
        values = rng.normal(size=size)
        assert window_median(values) == sorted(values.tolist())[size // 2]
        if size % 2:
            assert window_median(values) == np.median(values)
    with pytest.raises(ValueError, match="at least one score"):
        window_median(np.zeros(0))


def test_split_threshold_scales_only_below_the_typical_score() -> None:
    for median in (0.0, 0.1, 0.41, 0.5, 0.7, 1.0):
        assert split_threshold(0.3, 0.5, median) == pytest.approx(0.3 * min(1.0, median / 0.5), abs=1e-15)
    assert split_threshold(0.3, None, 0.1) == 0.3
    assert split_threshold(-0.2, 0.5, 0.1) == -0.2  # a threshold <= 0 starts every track: left alone
    assert split_threshold(0.3, 0.5, float("nan")) == 0.3
    for bad in (0.0, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match="typical"):
            split_threshold(0.3, bad, 0.4)  # type: ignore[arg-type]


def test_start_threshold_adds_the_margin_scaled_as_the_threshold_is() -> None:
    settings = TrackerSettings()  # threshold 0.3, new_track_margin 0.1
    for activation in (0.3, 0.15, 0.06):
        assert start_threshold(activation, settings) == pytest.approx((0.3 + 0.1) * activation / 0.3, abs=1e-15)
    assert start_threshold(0.3, dataclasses.replace(settings, new_track_margin=0.0)) == 0.3
    at_zero = dataclasses.replace(settings, track_activation_threshold=0.0)
    assert start_threshold(0.0, at_zero) == pytest.approx(0.1)  # a threshold <= 0 is never scaled: nor its margin


def test_threshold_in_force_reads_the_calibrated_median_after_warm_up() -> None:
    settings = TrackerSettings()  # unit calibration, threshold 0.3, typical_score 0.5
    calibration = ScoreCalibration()
    rng = np.random.default_rng(1)
    scores = rng.uniform(0.0, 40.0, MINIMUM_SCORES - 1)  # a 0-100 detector scoring low
    calibration.observe(scores)
    assert threshold_in_force(settings, calibration) == 0.3  # warming up: as given
    calibration.observe(np.array([90.0]))
    kept = np.append(scores, 90.0)
    unit = kept / kept.max()  # the unit calibration's range: lo = 0, hi = the largest seen
    expected = 0.3 * np.sort(unit)[unit.size // 2] / 0.5
    assert threshold_in_force(settings, calibration) == pytest.approx(expected, rel=1e-12)
    assert threshold_in_force(dataclasses.replace(settings, typical_score=None), calibration) == 0.3


def _replayed_ids(frames: list, **settings) -> list[list[int]]:
    """The rule replayed by hand: a tracker without it, its threshold set every EVERY frames from the
    median of the last WINDOW scores seen (plain numpy), as the module docstring states the rule."""
    tracker = DeepSORTTracker(typical_score=None, **settings)
    threshold, margin = tracker.track_activation_threshold, tracker.new_track_margin
    seen: list[float] = []
    out = []
    for f, frame in enumerate(frames):
        window = np.array(seen[-WINDOW:])
        if f % EVERY == 0 and window.size >= MINIMUM_SCORES:
            median = np.sort(window)[window.size // 2]
            scale = min(1.0, median / 0.5)  # the start threshold's margin scales with the threshold
            tracker.configure(track_activation_threshold=threshold * scale, new_track_margin=margin * scale)
        out.append(tracker.update_arrays(frame.xyxy, frame.scores, frame.embeddings).tolist())
        seen += frame.scores.tolist()
    return out


def test_tracker_follows_the_plain_numpy_replay_of_the_rule() -> None:
    low = rescored(0.5)
    settings = dict(minimum_consecutive_frames=2)
    ids = run(DeepSORTTracker(**settings), low)
    assert ids == _replayed_ids(low, **settings)
    assert ids != run(DeepSORTTracker(typical_score=None, **settings), low)  # the rule did move the split
    # A detector whose median is above typical_score keeps the threshold as given: ids as without the rule.
    assert run(DeepSORTTracker(**settings), FRAMES) == run(DeepSORTTracker(typical_score=None, **settings), FRAMES)


def test_below_the_typical_score_the_split_follows_a_rescaling() -> None:
    # With the confidence rules off only the split reads scores: a detector scoring half or a quarter of the
    # same boxes' scores (exact in binary) gets the same tracks. Each tracker starts with its window full of
    # its own scores, so the threshold in force is read off the median from the first frame on.
    def ids(factor: float, typical: float | None) -> list[list[int]]:
        frames = rescored(factor)
        tracker = DeepSORTTracker(confidence_noise=False, confidence_embedding=False, minimum_consecutive_frames=2,
                                  typical_score=typical)
        state = tracker.state_dict()
        del state["activation_threshold"]  # read off the window, as for a state written before the rule
        tracker.load_state_dict({**state, "score_window": np.concatenate([f.scores for f in frames])[-WINDOW:]})
        return run(tracker, frames)

    assert ids(0.5, 0.5) == ids(0.25, 0.5)
    assert ids(0.5, None) != ids(0.25, None)  # a fixed threshold cuts the two scales differently


def test_state_resumes_exactly_between_two_medians(tmp_path: Path) -> None:
    low = rescored(0.5)
    whole = DeepSORTTracker()
    expected = run(whole, low)
    first = DeepSORTTracker()
    head = run(first, low[:40])  # the threshold in force was read at frame 32, the next at 64
    state = first.state_dict()
    assert state["activation_threshold"] < 0.3
    resumed = DeepSORTTracker.load(first.save(tmp_path / "state.npz"))
    assert head + run(resumed, low[40:]) == expected
    assert_same_state(resumed.state_dict(), whole.state_dict())


def test_bad_saved_thresholds_are_refused_and_a_missing_one_is_read_off_the_window() -> None:
    tracker = DeepSORTTracker()
    run(tracker, rescored(0.5)[:40])
    state = tracker.state_dict()
    for bad in (0.31, float("nan"), True, "0.2"):
        with pytest.raises(ValueError, match="activation_threshold"):
            DeepSORTTracker().load_state_dict({**state, "activation_threshold": bad})
    del state["activation_threshold"]
    older = DeepSORTTracker()
    older.load_state_dict(state)
    assert older.state_dict()["activation_threshold"] == threshold_in_force(older.settings, ScoreCalibration.from_array(
        state["score_window"]))


def test_plain_deepsort_presets_read_the_threshold_as_given() -> None:
    assert PRESETS["paper"]["typical_score"] is None and PRESETS["roboflow-2.0.1"]["typical_score"] is None
    assert PRESETS["paper"]["new_track_margin"] == 0.0 and PRESETS["roboflow-2.0.1"]["new_track_margin"] == 0.0
    assert TrackerSettings().typical_score == 0.5
