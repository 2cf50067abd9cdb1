"""The frame kernel's part of the score calibration (``kernels/scores.py``) against a plain-Python reference.

Under ``"unit"`` the tracker passes a frame's scores as given and the kernel
checks them and keeps them in the window; a score outside [0, 1] sends the
frame back to Python, calibrated, and tracked again. The reference here
applies the documented rule with lists and feeds an uncalibrated tracker.
"""

from __future__ import annotations

import warnings

import numpy as np

from deepsort_edge import DeepSORTTracker
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene
from deepsort_edge.kernels.scores import COUNT, HEAD, OUTSIDE, SEEN, finite_in_unit_range, keep_scores
from deepsort_edge.tracking.validation import InvalidDetectionWarning

WINDOW = 2048  # the tracker's window (score_calibration.WINDOW), restated: the reference is independent
FRAMES = generate_scene(SceneConfig(num_objects=12, width=640, height=480, seed=5, turnover=0.02, miss_rate=0.1,
                                    box_noise=2.0, false_positive_rate=0.1, embedding_dim=8), 50)


def _inputs() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """FRAMES with a detector that turns wild at frame 20 and rows the row checks drop."""
    out = []
    for f, frame in enumerate(FRAMES):
        xyxy = frame.xyxy.astype(np.float64)
        scores = frame.scores.astype(np.float64)
        embeddings = frame.embeddings.astype(np.float32)
        if f == 20:
            scores = scores * 40.0  # the first scores outside [0, 1]
        if f in (12, 20, 30) and len(scores) > 2:
            xyxy = xyxy.copy()
            xyxy[0, 0] = np.nan  # dropped, but its score still widens this frame's range
            scores = scores.copy()
            scores[0] = {12: 0.5, 20: 100.0, 30: 60.0}[f]
            scores[1] = np.nan  # dropped: a score that is not finite
        out.append((xyxy, scores, embeddings))
    return out


def _unit_reference(frames: list) -> tuple[list[np.ndarray], list[float]]:
    """Each frame's scores under the documented ``"unit"`` rule, and the window it leaves."""
    stream: list[float] = []
    calibrated = []
    for xyxy, scores, _ in frames:
        finite = np.isfinite(scores)
        seen = stream[-WINDOW:] + scores[finite].tolist()
        lo, hi = min([0.0, *seen]), max([1.0, *seen])
        out = scores.copy()
        if (lo, hi) != (0.0, 1.0):
            out[finite] = (scores[finite] - lo) / (hi - lo)
        calibrated.append(out)
        kept = finite & np.isfinite(xyxy).all(axis=1)  # rows the row checks keep
        stream += scores[kept].tolist()
    return calibrated, stream[-WINDOW:]


def _ids(tracker: DeepSORTTracker, frames: list) -> list[list[int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InvalidDetectionWarning)
        return [tracker.update_arrays(xyxy, scores, embeddings).tolist() for xyxy, scores, embeddings in frames]


def test_unit_in_the_kernel_matches_the_rule_applied_in_python() -> None:
    frames = _inputs()
    calibrated, window = _unit_reference(frames)
    settings = {"minimum_consecutive_frames": 2, "confidence_noise": True, "track_activation_threshold": 0.3}
    tracker = DeepSORTTracker(score_calibration="unit", **settings)
    got = _ids(tracker, frames)
    reference = DeepSORTTracker(score_calibration="none", **settings)
    expected = _ids(reference, [(x, s, e) for (x, _, e), s in zip(frames, calibrated)])
    assert got == expected
    assert sum(i > 0 for frame in got[20:] for i in frame) > 50  # tracks go on through the wild frames
    assert tracker.state_dict()["score_window"] == window


def test_keep_scores_is_a_first_in_first_out_window_of_finite_scores() -> None:
    rng = np.random.default_rng(2)
    ring, state = np.zeros(7), np.zeros(4, np.int64)
    stream: list[float] = []
    for _ in range(12):
        scores = rng.uniform(-0.5, 1.5, rng.integers(0, 5))
        scores[rng.uniform(size=scores.size) < 0.2] = np.nan
        finite = scores[np.isfinite(scores)].tolist()
        assert keep_scores(ring, state, scores) is bool(finite)
        stream += finite
        kept = stream[-7:]
        oldest_first = np.roll(ring, -state[HEAD]) if state[COUNT] == 7 else ring[: state[COUNT]]
        assert oldest_first.tolist() == kept
        assert state[OUTSIDE] == sum(not 0.0 <= s <= 1.0 for s in kept) and state[SEEN] == len(stream)


def test_finite_in_unit_range_ignores_what_the_row_checks_drop() -> None:
    assert finite_in_unit_range(np.array([0.0, 1.0, np.nan, 0.5, np.inf]))
    assert finite_in_unit_range(np.zeros(0))
    assert not finite_in_unit_range(np.array([0.2, 1.0 + 1e-12]))
    assert not finite_in_unit_range(np.array([-0.0001]))
