"""tools/benchmarks/sim_detectors.py: the simulated detectors of the quality benchmark do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from deepsort_edge.io.mot import MOTData
from deepsort_edge.tracking.boxes import iou_matrix

from .common import tool_module

_sim = tool_module("benchmarks.sim_detectors")
DetectorModel, simulate = _sim.DetectorModel, _sim.simulate


def _ground_truth(frames: int = 200, people: int = 10) -> MOTData:
    rng = np.random.default_rng(0)
    tl = rng.uniform(50, 500, (people, 2))
    rows = [(f, i + 1, *(tl[i] + 2 * f), *(tl[i] + 2 * f + [30, 80])) for f in range(1, frames + 1)
            for i in range(people)]
    table = np.array(rows, dtype=float)
    return MOTData.from_arrays(table[:, 0], table[:, 1], table[:, 2:6])


def test_a_perfect_detector_returns_the_ground_truth():
    gt = _ground_truth(5, 3)
    det, truth = simulate(gt, DetectorModel(jitter=0.0, drop=0.0, false_positives=0.0), seed=1, size=(2000, 2000))
    np.testing.assert_allclose(det.xyxy, gt.xyxy, atol=1e-9)
    np.testing.assert_array_equal(truth, gt.ids)
    assert ((det.scores >= 0.3) & (det.scores <= 1.0)).all()


def test_rates_and_identities_follow_the_model():
    gt = _ground_truth()
    model = DetectorModel(jitter=0.05, drop=0.1, false_positives=0.05)
    det, truth = simulate(gt, model, seed=3, size=(2000, 2000))
    kept = (truth >= 0).sum()
    # Binomial 2000 x 0.9 and Poisson 2000 x 0.05: well inside 5 standard deviations.
    assert abs(kept - 1800) < 5 * np.sqrt(2000 * 0.09)
    assert abs((truth < 0).sum() - 100) < 5 * np.sqrt(100)
    # Every kept box still overlaps its own person best (jitter is small).
    for frame, rows in det.frame_index().items():
        g = gt.select(gt.frames == frame)
        real = truth[rows] >= 0
        overlap = iou_matrix(det.xyxy[rows][real], g.xyxy)
        np.testing.assert_array_equal(g.ids[overlap.argmax(axis=1)], truth[rows][real])


def test_seeded_and_score_models_share_the_boxes():
    gt = _ground_truth(50, 4)
    a, ta = simulate(gt, DetectorModel(scores="uniform"), seed=7, size=(2000, 2000))
    b, tb = simulate(gt, DetectorModel(scores="percent"), seed=7, size=(2000, 2000))
    c, _ = simulate(gt, DetectorModel(scores="compressed"), seed=7, size=(2000, 2000))
    np.testing.assert_array_equal(a.xyxy, b.xyxy)
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_allclose(b.scores, 100 * a.scores)
    np.testing.assert_allclose(c.scores, 0.5 + 0.05 * a.scores)
    assert not np.array_equal(simulate(gt, DetectorModel(), seed=8, size=(2000, 2000))[0].xyxy, a.xyxy)


def test_bad_models_are_refused():
    with pytest.raises(ValueError, match="drop"):
        DetectorModel(drop=1.5)
    with pytest.raises(ValueError, match="scores"):
        DetectorModel(scores="gaussian")
    with pytest.raises(TypeError, match="model"):
        simulate(_ground_truth(2, 1), "clean", seed=0, size=(10, 10))  # type: ignore[arg-type]
