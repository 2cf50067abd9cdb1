"""Tracker inputs for the speed benchmarks, and the two trackers they compare.

- MOT17-04-FRCNN public detections (about 27 a frame, score >= 0.25) from the
  shared data, with 512-d embeddings made from the ground truth: each detection
  gets the fixed identity vector of its best-IoU ground-truth box (IoU >= 0.5)
  plus noise, a random vector when nothing matches;
- seeded synthetic scenes (:mod:`deepsort_edge.demo.synthetic`) with about as many
  detections a frame as objects.

Both trackers get the same detections, embeddings and settings
(:class:`CompareSettings`); ours uses deep-sort-realtime's one Mahalanobis
gate unless told otherwise, so both compare the same candidate pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsort_edge.demo.synthetic import SceneConfig, iter_scene
from deepsort_edge.tracking.boxes import iou_matrix

from .common import MOT17_04, shared_data_dir

EMBEDDING_DIM = 512


@dataclass
class Frame:
    """One frame of tracker input; ``gt`` is the true object of each detection (-1: none)."""

    xyxy: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray
    gt: np.ndarray


@dataclass(frozen=True)
class CompareSettings:
    """Settings shared by both trackers (deep-sort-realtime's names in comments)."""

    max_age: int = 30  # max_age; ours: lost_track_buffer at frame_rate 30
    n_init: int = 3  # n_init; ours: minimum_consecutive_frames
    min_iou: float = 0.3  # max_iou_distance = 1 - min_iou
    appearance_threshold: float = 0.7  # max_cosine_distance
    nn_budget: int | None = 100

    def describe(self) -> str:
        return (f"max_age {self.max_age}, n_init {self.n_init}, IoU >= {self.min_iou}, "
                f"cosine distance <= {self.appearance_threshold}, nn_budget {self.nn_budget}")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def split_by_frame(rows: np.ndarray, num_frames: int) -> list[np.ndarray]:
    """MOT rows (frame in column 0, 1-based) grouped per frame ``1..num_frames``."""
    rows = rows[rows[:, 0] <= num_frames]
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    bounds = np.searchsorted(rows[:, 0], np.arange(1, num_frames + 2))
    return [rows[bounds[i] : bounds[i + 1]] for i in range(num_frames)]


def load_mot17_04(root: Path, *, min_score: float = 0.25, embedding_noise: float = 0.5, seed: int = 0,
                  max_frames: int | None = None) -> list[Frame]:
    """MOT17-04 detections with ground-truth-derived embeddings (see the module docstring)."""
    det = np.loadtxt(root / "det" / "det.txt", delimiter=",", ndmin=2)
    gt = np.loadtxt(root / "gt" / "gt.txt", delimiter=",", ndmin=2)
    det = det[det[:, 6] >= min_score]
    gt = gt[gt[:, 6] > 0]  # "consider" flag: people the benchmark scores
    num_frames = int(det[:, 0].max()) if max_frames is None else min(int(det[:, 0].max()), max_frames)
    rng = np.random.default_rng(seed)
    gt_ids = np.unique(gt[:, 1]).astype(np.int64)
    identity = dict(zip(gt_ids.tolist(), unit_rows(rng.standard_normal((gt_ids.size, EMBEDDING_DIM)))))
    frames = []
    for d, g in zip(split_by_frame(det, num_frames), split_by_frame(gt, num_frames)):
        xyxy = np.concatenate([d[:, 2:4], d[:, 2:4] + d[:, 4:6]], axis=1)
        match = np.full(len(d), -1, dtype=np.int64)
        if len(d) and len(g):
            iou = iou_matrix(xyxy, np.concatenate([g[:, 2:4], g[:, 2:4] + g[:, 4:6]], axis=1))
            best = iou.argmax(axis=1)
            ok = iou[np.arange(len(d)), best] >= 0.5
            match[ok] = g[best[ok], 1].astype(np.int64)
        base = rng.standard_normal((len(d), EMBEDDING_DIM))
        for k in np.flatnonzero(match >= 0):
            base[k] = identity[int(match[k])]
        base = unit_rows(base)
        noisy = base + rng.standard_normal(base.shape) * (embedding_noise / np.sqrt(EMBEDDING_DIM))
        frames.append(Frame(np.ascontiguousarray(xyxy, dtype=np.float64), d[:, 6].astype(np.float32),
                            np.ascontiguousarray(unit_rows(noisy), dtype=np.float32), match))
    return frames


def mot17_04_frames(*, embedding_noise: float, seed: int, max_frames: int | None) -> list[Frame] | None:
    """MOT17-04 from the shared data, or None where it is absent."""
    root = shared_data_dir() / MOT17_04
    if not ((root / "det" / "det.txt").is_file() and (root / "gt" / "gt.txt").is_file()):
        return None
    return load_mot17_04(root, embedding_noise=embedding_noise, seed=seed, max_frames=max_frames)


def synthetic_config(num_objects: int, *, seed: int, turnover: float, embedding_noise: float) -> SceneConfig:
    """The scene of the speed runs: about ``num_objects`` detections a frame."""
    return SceneConfig(
        num_objects=num_objects,
        seed=seed,
        turnover=turnover,
        miss_rate=0.05,
        false_positive_rate=0.05,  # with the misses: ~num_objects detections a frame
        box_noise=2.0,
        embedding_dim=EMBEDDING_DIM,
        embedding_noise=embedding_noise,
    )


def synthetic_frames(cfg: SceneConfig, num_frames: int) -> Iterator[Frame]:
    """The frames of a synthetic scene, generated one at a time."""
    for f in iter_scene(cfg, num_frames):
        yield Frame(f.xyxy, f.scores, f.embeddings, f.det_gt_ids)


def make_ours(mode: str, settings: CompareSettings, **extra: object):
    """Our tracker with ``settings``; ``extra`` are further DeepSORTTracker settings.

    The Mahalanobis gate is deep-sort-realtime's one gate for every pair
    (``appearance_gate_scale=1``) and its IoU stage takes only tracks missed
    for one frame (``iou_recovery_frames=1``) unless ``extra`` says otherwise.
    """
    from deepsort_edge import DeepSORTTracker

    extra.setdefault("appearance_gate_scale", 1.0)
    extra.setdefault("iou_recovery_frames", 1)
    return DeepSORTTracker(
        lost_track_buffer=settings.max_age,
        frame_rate=30.0,
        minimum_consecutive_frames=settings.n_init,
        minimum_iou_threshold=settings.min_iou,
        appearance_threshold=settings.appearance_threshold,
        nn_budget=settings.nn_budget or 100,
        appearance_mode=mode,
        **extra,
    )


def make_dsr(settings: CompareSettings):
    """deep-sort-realtime's DeepSort with ``settings`` and no embedder (embeddings are given)."""
    from deep_sort_realtime.deepsort_tracker import DeepSort

    return DeepSort(
        max_iou_distance=1.0 - settings.min_iou,
        max_age=settings.max_age,
        n_init=settings.n_init,
        max_cosine_distance=settings.appearance_threshold,
        nn_budget=settings.nn_budget,
        embedder=None,
    )


def dsr_inputs(f: Frame) -> tuple[list, list[int], np.ndarray]:
    """``update_tracks`` arguments of one frame: ``([(tlwh, score, class)], others, embeddings)``.

    ``others`` carries each detection's row so ids can be mapped back.
    """
    tlwh = np.concatenate([f.xyxy[:, :2], f.xyxy[:, 2:] - f.xyxy[:, :2]], axis=1)
    raw = [(box, float(score), "person") for box, score in zip(tlwh.tolist(), f.scores.tolist())]
    return raw, list(range(len(raw))), f.embeddings


def dsr_ids(tracks: list, rows: int) -> np.ndarray:
    """The id deep-sort-realtime gave each detection row this frame (-1: none)."""
    ids = np.full(rows, -1, dtype=np.int64)
    for track in tracks:
        if track.is_confirmed() and track.time_since_update == 0 and track.others is not None:
            ids[track.others] = int(track.track_id)
    return ids


class IdStats:
    """Coverage (true detections with an id) and id switches per true object: a sanity check, not a metric."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.ids: set[int] = set()
        self.detections = self.true = self.tracked = self.switches = self.frames = 0

    def add(self, gt: np.ndarray, ids: np.ndarray) -> None:
        self.frames += 1
        self.detections += len(gt)
        self.ids.update(ids[ids >= 0].tolist())
        true = gt >= 0
        self.true += int(true.sum())
        for g, i in zip(gt[true].tolist(), ids[true].tolist()):
            if i < 0:
                continue
            self.tracked += 1
            previous = self.last.get(g)
            if previous is not None and previous != i:
                self.switches += 1
            self.last[g] = i

    def summary(self) -> dict:
        return {"detections_per_frame": self.detections / max(self.frames, 1),
                "coverage": self.tracked / max(self.true, 1), "id_switches": self.switches,
                "distinct_ids": len(self.ids)}
