"""Live score calibration: ranks against scipy, scale invariance, state, refusals, one rule for CLI and Python."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import percentileofscore

from deepsort_edge import DeepSORTTracker
from deepsort_edge.cli.__main__ import main
from deepsort_edge.io.mot import MOTData, read_mot, write_mot
from deepsort_edge.streams.pipeline import track_mot
from deepsort_edge.tracking.score_calibration import WINDOW, ScoreCalibration
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene
from tests.common import assert_same_state, run

FRAMES = generate_scene(SceneConfig(num_objects=10, width=640, height=480, seed=3, turnover=0.02, miss_rate=0.1,
                                    box_noise=2.0, false_positive_rate=0.15, embedding_dim=8), 60)


def rescored(transform) -> list:
    """FRAMES with every score passed through ``transform``."""
    return [dataclasses.replace(f, scores=transform(f.scores.astype(np.float64))) for f in FRAMES]


def test_ranks_match_scipy_over_the_window_and_the_frame() -> None:
    rng = np.random.default_rng(0)
    calibration = ScoreCalibration(window=50)
    stream: list[float] = []
    for _ in range(30):  # 30 frames of up to 7 scores, ties included: the window wraps several times
        frame = np.round(rng.normal(3.0, 2.0, rng.integers(0, 8)), 1)
        kept = stream[-50:]
        expected = [percentileofscore(kept + frame.tolist(), x, kind="weak") / 100 for x in frame]
        np.testing.assert_allclose(calibration.calibrate(frame, "rank"), expected, rtol=0, atol=1e-12)
        calibration.observe(frame)
        stream += frame.tolist()
        np.testing.assert_array_equal(calibration.to_array(), stream[-50:])


def test_non_finite_scores_are_neither_ranked_nor_kept() -> None:
    calibration = ScoreCalibration()
    out = calibration.calibrate(np.array([np.nan, 2.0, np.inf, 4.0]), "rank")
    assert np.isnan(out[0]) and out[2] == np.inf and out[1] == 0.5 and out[3] == 1.0
    out = calibration.calibrate(np.array([np.nan, 2.0, -np.inf, 4.0]), "unit")
    assert np.isnan(out[0]) and out[2] == -np.inf and out[1] == 0.5 and out[3] == 1.0
    calibration.observe(np.array([np.nan, 2.0, -np.inf, 4.0]))
    assert calibration.to_array().tolist() == [2.0, 4.0]


def test_unit_maps_by_the_range_seen_and_leaves_unit_scores_alone() -> None:
    rng = np.random.default_rng(1)
    calibration = ScoreCalibration(window=40)
    stream: list[float] = []
    for step in range(25):
        scale = 1.0 if step < 10 else 80.0  # a [0, 1] stretch, then a 0-80 one
        frame = rng.uniform(-0.05 * scale if step % 7 == 0 else 0.0, scale, rng.integers(1, 6))
        seen = np.array(stream[-40:] + frame.tolist())
        lo, hi = min(0.0, seen.min()), max(1.0, seen.max())
        expected = frame if (lo == 0.0 and hi == 1.0) else (frame - lo) / (hi - lo)
        got = calibration.calibrate(frame, "unit")
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        assert got.min() >= 0.0 and got.max() <= 1.0  # in range, and nothing clipped
        calibration.observe(frame)
        stream += frame.tolist()
    # The window forgets the 0-80 scores: back to [0, 1], as given again.
    for _ in range(20):
        calibration.observe(rng.uniform(0.0, 1.0, 3))
    frame = np.array([0.25, 0.75])
    np.testing.assert_array_equal(calibration.calibrate(frame, "unit"), frame)


def test_one_frame_larger_than_the_window_keeps_its_latest_scores() -> None:
    calibration = ScoreCalibration(window=4)
    calibration.observe(np.arange(3.0))
    calibration.observe(np.arange(10.0, 16.0))
    assert calibration.to_array().tolist() == [12.0, 13.0, 14.0, 15.0]


@pytest.mark.parametrize("transform", [
    lambda s: 100.0 * s + 7.0,  # a 0-100 detector with an offset
    lambda s: np.log(s / (1.0 - s + 1e-9) + 1e-9),  # logits
    lambda s: 0.5 + 0.05 * s,  # bunched into [0.5, 0.55]
])
def test_rank_calibration_gives_the_same_tracks_on_any_monotone_scale(transform) -> None:
    def ids(frames) -> list[list[int]]:
        return run(DeepSORTTracker(score_calibration="rank", track_activation_threshold=0.3,
                                   minimum_consecutive_frames=2), frames)

    base = ids(rescored(lambda s: s))
    assert sum(i > 0 for frame in base for i in frame) > 100  # tracks confirmed, low scores in play
    assert ids(rescored(transform)) == base


def test_unit_calibration_leaves_unit_scores_as_given_and_reads_any_multiple_alike() -> None:
    def ids(frames, mode: str) -> list[list[int]]:
        return run(DeepSORTTracker(score_calibration=mode, minimum_consecutive_frames=2), frames)

    assert ids(FRAMES, "unit") == ids(FRAMES, "none")
    # Past 1 from the first frame on, every score reads as score / largest seen: the factor drops out.
    assert ids(rescored(lambda s: 16.0 * s), "unit") == ids(rescored(lambda s: 256.0 * s), "unit")


def test_without_calibration_the_scale_changes_the_tracks() -> None:
    # The reason for the rule: the same boxes with scores squeezed into [0.5, 0.55] start no track at 0.6.
    def ids(frames) -> list[list[int]]:
        return run(DeepSORTTracker(score_calibration="none", track_activation_threshold=0.6), frames)

    assert ids(rescored(lambda s: 0.5 + 0.05 * s)) != ids(rescored(lambda s: s))


def test_warm_up_ranks_the_first_frame_among_itself() -> None:
    tracker = DeepSORTTracker(score_calibration="rank", track_activation_threshold=0.5, new_track_margin=0.0,
                              minimum_consecutive_frames=1, low_score_matching=False)
    boxes = np.array([[0, 0, 10, 30], [50, 0, 60, 30], [100, 0, 110, 30], [150, 0, 160, 30.0]])
    ids = tracker.update_arrays(boxes, np.array([40.0, 10.0, 30.0, 20.0]))  # ranks 1, 0.25, 0.75, 0.5
    assert (ids > 0).tolist() == [True, False, True, True]


def test_state_keeps_the_window_and_resumes_exactly(tmp_path: Path) -> None:
    frames = rescored(lambda s: 100.0 * s)
    whole = DeepSORTTracker(score_calibration="rank")
    expected = run(whole, frames)
    first = DeepSORTTracker(score_calibration="rank")
    head = run(first, frames[:30])
    assert 0 < len(first.state_dict()["score_window"]) <= WINDOW
    resumed = DeepSORTTracker.load(first.save(tmp_path / "state.npz"))
    assert head + run(resumed, frames[30:]) == expected
    assert_same_state(resumed.state_dict(), whole.state_dict())


def test_states_without_a_window_load_and_bad_windows_are_refused() -> None:
    tracker = DeepSORTTracker(score_calibration="rank")
    run(tracker, FRAMES[:5])
    state = tracker.state_dict()
    old = {k: v for k, v in state.items() if k != "score_window"}  # written before the calibration existed
    fresh = DeepSORTTracker()
    fresh.load_state_dict(old)
    assert len(fresh.state_dict()["score_window"]) == 0
    for bad in ([1.0, float("nan")], np.zeros(WINDOW + 1), [[1.0, 2.0]], ["a"]):
        with pytest.raises(ValueError, match="score_window"):
            fresh.load_state_dict({**state, "score_window": bad})


def test_reset_forgets_the_window() -> None:
    tracker = DeepSORTTracker(score_calibration="rank")
    first = run(tracker, FRAMES[:20])
    tracker.reset()
    assert len(tracker.state_dict()["score_window"]) == 0 and run(tracker, FRAMES[:20]) == first


def test_scores_outside_unit_range_are_refused_not_clipped_without_calibration() -> None:
    boxes = np.array([[0, 0, 10, 30.0]])
    tracker = DeepSORTTracker(score_calibration="none")
    tracker.update_arrays(boxes, np.array([0.9]))
    before = tracker.state_dict()
    with pytest.raises(ValueError, match=r"score_calibration='rank'"):
        tracker.update_arrays(boxes, np.array([90.0]))
    assert_same_state(tracker.state_dict(), before)  # a refused frame changes nothing
    # Without the two rules that need [0, 1], any scale is compared as given (the paper's way).
    plain = DeepSORTTracker(score_calibration="none", confidence_noise=False, confidence_embedding=False)
    plain.update_arrays(boxes, np.array([90.0]))
    # A NaN score is a bad row (dropped with a warning), not a score to refuse.
    with pytest.warns(UserWarning):
        DeepSORTTracker(score_calibration="none").update_arrays(np.r_[boxes, boxes + 50], np.array([np.nan, 0.5]))


def _write_detections(path: Path, scale: float) -> int:
    rows = [(i + 1, f.xyxy, f.scores * scale) for i, f in enumerate(FRAMES) if len(f.xyxy)]
    data = MOTData.from_arrays(np.concatenate([np.full(len(b), i) for i, b, _ in rows]),
                               np.full(sum(len(b) for _, b, _ in rows), -1),
                               np.concatenate([b for _, b, _ in rows]), np.concatenate([s for _, _, s in rows]))
    write_mot(path, data)
    return len(FRAMES)


@pytest.mark.parametrize(("scale", "options"), [(100.0, {}), (100.0, {"score_calibration": "rank"}), (1.0, {})])
def test_cli_and_python_give_the_same_tracks(tmp_path: Path, scale, options) -> None:
    # One score rule: the CLI hands the file's scores to the tracker as given, as Python does.
    det = tmp_path / "det.txt"
    frames = _write_detections(det, scale)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    out = tmp_path / "cli.txt"
    assert main(["track", str(det), "-o", str(out), "--no-progress", "--frame-rate", "30", *flags]) == 0
    ours = track_mot(DeepSORTTracker(frame_rate=30, use_appearance=False, **options), read_mot(det), frames)
    cli = read_mot(out)
    assert len(ours) > 100
    np.testing.assert_array_equal(cli.table[:, :2], ours.table[:, :2])  # frames and ids
    np.testing.assert_allclose(cli.xyxy, ours.xyxy, atol=0.01)


def test_cli_refuses_scores_the_tracker_cannot_read_in_one_line(tmp_path: Path, capsys) -> None:
    det = tmp_path / "det.txt"
    _write_detections(det, 100.0)
    assert main(["track", str(det), "-o", str(tmp_path / "r.txt"), "--no-progress",
                 "--score-calibration", "none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepsort-edge track: error:") and "score_calibration='rank'" in err
    assert err.count("\n") == 1 and not (tmp_path / "r.txt").exists()
