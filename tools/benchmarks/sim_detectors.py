"""Seeded simulated detectors built from ground truth, for the quality benchmark.

A detector model says how much a detector jitters boxes, how many people it
misses, how many false boxes it adds and how it spreads its scores. Applied to
a sequence's ground truth with a seed it gives a detection file (MOT rows, id
-1) and the true identity of each row (-1 for a false positive), so that
appearance can be simulated (``synthetic_reid``) or computed from the frames.

- Jitter: centre offsets ~ N(0, jitter * size), width and height scaled by
  exp(N(0, jitter)).
- Misses: each person is dropped with probability ``drop``; people less than
  half visible (MOT17's visibility column) are dropped more often, falling to
  never detected at visibility 0, as a real detector misses occluded people.
- False positives: Poisson(``false_positives`` x people in the frame) boxes a
  frame, half anywhere in the image and half beside a real person (offset by
  0.5-1 box width: the hard kind, a neighbour-sized ghost), each the size of a
  random person of the frame.
- Scores (``scores``): ``uniform`` (people U(0.3, 1), false boxes U(0, 0.6)),
  ``beta`` (Beta(5, 1.5) and Beta(1.5, 4): most people near 1),
  ``percent`` (``uniform`` times 100: a 0-100 detector) and ``compressed``
  (``uniform`` squeezed into [0.5, 0.55]: a detector whose scores barely
  move).

Example:
    >>> gt = MOTData.from_arrays([1, 1, 2], [1, 2, 1], np.array([[0, 0, 10, 30], [50, 0, 60, 30], [1, 0, 11, 30.]]))
    >>> det, truth = simulate(gt, DetectorModel(drop=0.0, false_positives=0.0), seed=0, size=(640, 480))
    >>> len(det), sorted(truth.tolist())
    (3, [1, 1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepsort_edge.io.mot import MOTData

SCORE_MODELS = ("uniform", "beta", "percent", "compressed")


@dataclass(frozen=True)
class DetectorModel:
    """How a simulated detector errs (see the module docstring)."""

    jitter: float = 0.05
    drop: float = 0.10
    false_positives: float = 0.03
    scores: str = "uniform"

    def __post_init__(self) -> None:
        for name in ("jitter", "drop", "false_positives"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.scores not in SCORE_MODELS:
            raise ValueError(f"scores must be one of {SCORE_MODELS}, got {self.scores!r}")


def has_classes(gt: MOTData) -> bool:
    """Whether ``gt`` is MOT17-style (classes 1-13 in column 8, visibility in column 9); MOT15 has world
    coordinates there."""
    classes, visibility = gt.table[:, 7], gt.table[:, 8]
    return bool(len(gt)) and bool(np.all((classes >= 1) & (classes <= 13) & (classes == np.round(classes)))
                                  & np.all((visibility >= 0) & (visibility <= 1)))


def people(gt: MOTData) -> MOTData:
    """The ground-truth rows a person detector should find: flag != 0 and, in MOT17 files, class 1."""
    keep = gt.table[:, 6] != 0
    if has_classes(gt):
        keep &= gt.classes == 1
    return gt.select(keep)


def _scores(rng: np.random.Generator, model: str, n: int, true: bool) -> np.ndarray:
    if model == "beta":
        return rng.beta(5.0, 1.5, n) if true else rng.beta(1.5, 4.0, n)
    base = rng.uniform(0.3, 1.0, n) if true else rng.uniform(0.0, 0.6, n)
    if model == "percent":
        return 100.0 * base
    if model == "compressed":
        return 0.5 + 0.05 * base
    return base


def simulate(gt: MOTData, model: DetectorModel, seed: int, size: tuple[int, int]) -> tuple[MOTData, np.ndarray]:
    """Detections of ``model`` on ``gt`` (image ``size`` = width, height) and each row's true id (-1: false).

    Deterministic for a given ``seed``.
    """
    if not isinstance(model, DetectorModel):
        raise TypeError(f"model must be a DetectorModel, got {type(model).__name__}")
    rng = np.random.default_rng(seed)
    truth = people(gt)
    width, height = float(size[0]), float(size[1])
    visibility = truth.visibility if has_classes(truth) else np.ones(len(truth))
    # Below half visible the miss probability rises linearly to 1 at visibility 0.
    p_drop = np.where(visibility >= 0.5, model.drop, 1.0 - (1.0 - model.drop) * visibility / 0.5)
    kept = truth.select(rng.random(len(truth)) >= p_drop)
    tlwh = kept.tlwh
    n = len(kept)
    w, h = tlwh[:, 2], tlwh[:, 3]
    cx = tlwh[:, 0] + w / 2 + rng.normal(0.0, model.jitter, n) * w
    cy = tlwh[:, 1] + h / 2 + rng.normal(0.0, model.jitter, n) * h
    w = w * np.exp(rng.normal(0.0, model.jitter, n))
    h = h * np.exp(rng.normal(0.0, model.jitter, n))
    boxes = [np.c_[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]]
    frames, ids = [kept.frames], [kept.ids]
    scores = [_scores(rng, model.scores, n, True)]
    # False positives, frame by frame (sized like a person of that frame).
    for frame, rows in truth.frame_index().items():
        count = rng.poisson(model.false_positives * (rows.stop - rows.start))
        if not count:
            continue
        pick = truth.tlwh[rng.integers(rows.start, rows.stop, count)]
        fw, fh = pick[:, 2], pick[:, 3]
        beside = rng.random(count) < 0.5
        side = rng.choice([-1.0, 1.0], count) * rng.uniform(0.5, 1.0, count)
        fx = np.where(beside, pick[:, 0] + fw / 2 + side * fw, rng.uniform(0, max(width - 1, 1), count))
        fy = np.where(beside, pick[:, 1] + fh / 2, rng.uniform(fh / 2, np.maximum(height - fh / 2, fh / 2 + 1)))
        boxes.append(np.c_[fx - fw / 2, fy - fh / 2, fx + fw / 2, fy + fh / 2])
        frames.append(np.full(count, frame))
        ids.append(np.full(count, -1))
        scores.append(_scores(rng, model.scores, count, False))
    xyxy = np.concatenate(boxes)
    # Clip to the image; drop what is left with no area.
    xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, width - 1)
    xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, height - 1)
    good = (xyxy[:, 2] - xyxy[:, 0] >= 2) & (xyxy[:, 3] - xyxy[:, 1] >= 2)
    frame_all, id_all, score_all = np.concatenate(frames), np.concatenate(ids), np.concatenate(scores)
    order = np.lexsort((np.arange(good.sum()), frame_all[good]))
    det = MOTData.from_arrays(frame_all[good][order], np.full(good.sum(), -1), xyxy[good][order],
                              score_all[good][order])
    return det, id_all[good][order].astype(np.int64)
