"""Record the tracker's outputs on seeded synthetic sequences, for ``tests/test_recorded.py``.

Runs ``DeepSORTTracker(**settings).update_arrays(..., return_boxes=True)`` on
seeded scenes from :mod:`deepsort_edge.demo.synthetic` (no shared data: nothing
derived from it may ship) under the settings that change the per-frame path
(gallery with a wrapping ring buffer and ema, cascade and global matching,
full and position gating, cosine and euclidean, IoU and Mahalanobis motion
cost, low-score matching, minimum_score, confidence weighting, coast damping,
classes, lost-track rules, motion only, frames without detections or without
embeddings, invalid rows, the presets, a crowded scene) and writes every
input and output to ``tests/data/recorded_tracks.npz``.

The recording pins the behaviour of the implementation at commit 1256611 (the
engine before the fused per-frame kernel). Regenerate it only on purpose, when
tracking behaviour is *meant* to change, and say so in the commit:

    python -m tests.record                  # writes tests/data/recorded_tracks.npz
    python -m tests.record --out other.npz  # somewhere else
    python -m tests.record --list           # the cases and their sizes, nothing written

Run it from the repository root: ``python -m`` puts the current folder first on
``sys.path``, so the checkout's ``deepsort_edge`` is the one recorded.

File layout (``np.load(path)``, no pickles; every case ``C`` has the keys ``C/...``):

- ``format``: ``"deepsort-edge recorded tracks 1"``; ``commit``: the commit recorded;
  ``cases``: the case names, in order.
- ``C/settings``: JSON ``{"constructor": kwargs, "resolved": tracker.settings.to_dict(),
  "pass_scores": bool, "pass_class_id": bool}``; the tracker is built as
  ``DeepSORTTracker(**constructor)`` (it may name a ``preset``).
- ``C/offsets``: ``(F + 1,)`` int64; frame ``f``'s rows are ``offsets[f]:offsets[f + 1]``.
- ``C/xyxy`` ``(R, 4)`` float32 boxes, ``C/scores`` ``(R,)`` float32,
  ``C/class_id`` ``(R,)`` int16 (given as int64), all as passed to ``update_arrays``.
- ``C/has_embeddings``: ``(F,)`` bool, False where the frame is given ``embeddings=None``;
  ``C/embeddings``: ``(R, D)`` float16, given to the tracker as float32 (the values are float16
  ones, so this is exact; rows of frames without embeddings are zero and unused).
- ``C/ids``: ``(R,)`` int32 ids returned; ``C/out_xyxy``: ``(R, 4)`` float64 boxes returned.
- After the last frame, the live tracks of ``tracker.state_dict()["tracks"]`` in birth order:
  ``C/final_mean`` ``(T, 8)`` and ``C/final_cov_diag`` ``(T, 8)`` float64 (Kalman mean and
  covariance diagonal), ``C/final_ints`` ``(T, 7)`` int64 (columns :data:`FINAL_INTS`) and
  ``C/final_gallery`` ``(T, 1, D)`` float32, the ema embeddings (``(0, 1, 1)`` in gallery mode).
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # not when a test imports FORMAT: its child processes keep their threads
    # One thread: the recording must not depend on how work is split.
    for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from deepsort_edge import DeepSORTTracker  # noqa: E402
from deepsort_edge.demo.synthetic import SceneConfig, iter_scene  # noqa: E402
from deepsort_edge.tracking.validation import InvalidDetectionWarning  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FORMAT = "deepsort-edge recorded tracks 1"
RECORDED_COMMIT = "1256611"
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "recorded_tracks.npz"


@dataclass(frozen=True)
class Case:
    """One recorded sequence: tracker settings, the scene, and how its frames are dressed.

    Attributes:
        name: Key prefix in the file.
        settings: ``DeepSORTTracker`` keyword arguments (may hold ``preset``).
        scene: The synthetic scene.
        frames: Number of frames.
        score_range: Scores drawn uniformly from this range for every row
            (None: the generator's own, 0.5-1 for objects, 0.1-0.6 for false positives).
        num_classes: Class ids: ground-truth id modulo this, random for false positives.
        pass_class_id: Give ``class_id`` (else None: one class).
        pass_scores: Give ``scores`` (else None: all 1).
        empty_frames: 1-based frames with no detections at all.
        no_embedding_frames: 1-based frames given ``embeddings=None``.
        invalid_every: Every this many frames, one row becomes NaN and one zero-area (0: never).
    """

    name: str
    settings: dict[str, Any]
    scene: SceneConfig
    frames: int
    score_range: tuple[float, float] | None = None
    num_classes: int = 1
    pass_class_id: bool = True
    pass_scores: bool = True
    empty_frames: tuple[int, ...] = ()
    no_embedding_frames: tuple[int, ...] = ()
    invalid_every: int = 0


def _scene(num_objects: int, seed: int, dim: int = 8, **overrides: Any) -> SceneConfig:
    """A scene with objects entering and leaving, misses, false positives and occlusions."""
    values: dict[str, Any] = dict(
        num_objects=num_objects,
        width=800,  # small image: ten people still cross and occlude each other often
        height=450,
        seed=seed,
        turnover=0.02,
        miss_rate=0.08,
        box_noise=2.0,
        false_positive_rate=0.08,
        embedding_dim=dim,
        embedding_noise=0.3,
        occlusion_rate=0.03,
        max_occlusion_frames=12,
    )
    values.update(overrides)
    return SceneConfig(**values)


# Three empty frames in a row push tracks to time_since_update 4, so the
# cascade has several levels when detections return.
_GAPS = (17, 40, 41, 42, 77)

CASES: tuple[Case, ...] = (
    Case("default_ema", {}, _scene(10, 1), 90, empty_frames=_GAPS),
    Case("gallery_budget8", {"appearance_mode": "gallery", "nn_budget": 8}, _scene(10, 2), 90,
         empty_frames=_GAPS),
    Case("gallery_global", {"appearance_mode": "gallery", "nn_budget": 8, "matching": "global"},
         _scene(10, 3), 90, empty_frames=_GAPS),
    Case("ema_global_position", {"matching": "global", "gating": "position"}, _scene(10, 4), 90,
         empty_frames=_GAPS),
    Case("gallery_position", {"appearance_mode": "gallery", "nn_budget": 8, "gating": "position"},
         _scene(10, 5), 90),
    Case("euclidean_gallery", {"appearance_mode": "gallery", "nn_budget": 8, "distance_metric": "euclidean",
                               "appearance_threshold": 0.8}, _scene(10, 6), 90, empty_frames=_GAPS),
    Case("euclidean_ema", {"distance_metric": "euclidean", "appearance_threshold": 0.7}, _scene(10, 7), 80),
    Case("mahalanobis_weighted", {"motion_cost": "mahalanobis", "appearance_weight": 0.5,
                                  "appearance_mode": "gallery", "nn_budget": 8}, _scene(10, 8), 90,
         empty_frames=_GAPS),
    Case("mahalanobis_ema", {"motion_cost": "mahalanobis", "appearance_weight": 0.7, "ema_momentum": 0.6},
         _scene(10, 9), 80),
    # Scores straddle the activation threshold: the low-score stage has work to do.
    Case("low_score_on", {"track_activation_threshold": 0.5}, _scene(10, 10), 90, score_range=(0.15, 1.0)),
    Case("low_score_off", {"track_activation_threshold": 0.5, "low_score_matching": False}, _scene(10, 10),
         100, score_range=(0.15, 1.0)),
    Case("minimum_score", {"track_activation_threshold": 0.5, "minimum_score": 0.3, "appearance_mode": "gallery",
                           "nn_budget": 8}, _scene(10, 11), 90, score_range=(0.1, 1.0)),
    Case("confidence_off", {"confidence_noise": False, "confidence_embedding": False}, _scene(10, 12), 90,
         score_range=(0.3, 1.0)),
    Case("coast_damping", {"coast_damping": 0.7, "max_age": 40, "appearance_mode": "gallery", "nn_budget": 8},
         _scene(10, 13, occlusion_rate=0.06, max_occlusion_frames=25), 120, empty_frames=_GAPS),
    Case("class_aware_3", {"class_aware": True}, _scene(10, 14), 90, num_classes=3),
    Case("class_blind_3", {"class_aware": False, "appearance_mode": "gallery", "nn_budget": 8}, _scene(10, 14),
         100, num_classes=3),
    Case("lost_rule_none", {"lost_track_rule": "none", "appearance_threshold": 0.4}, _scene(10, 15), 90,
         empty_frames=_GAPS),
    Case("motion_only", {"use_appearance": False, "output_box": "detection"}, _scene(10, 16), 90,
         empty_frames=_GAPS),
    # use_appearance=None: some frames come without embeddings and are matched on motion.
    Case("mixed_embeddings", {"appearance_mode": "gallery", "nn_budget": 8}, _scene(10, 17), 90,
         empty_frames=(30, 31), no_embedding_frames=(5, 6, 20, 21, 22, 23, 50, 51, 52, 53, 54, 55, 80)),
    Case("invalid_rows_no_scores", {"frame_rate": 15.0, "lost_track_buffer": 40, "minimum_consecutive_frames": 1},
         _scene(10, 18), 80, pass_scores=False, pass_class_id=False, invalid_every=7),
    Case("short_memory", {"max_age": 2, "minimum_consecutive_frames": 2, "appearance_weight": 0.0},
         _scene(10, 19), 80, empty_frames=(10, 30, 31)),
    Case("preset_paper", {"preset": "paper"}, _scene(10, 20), 90, empty_frames=_GAPS),
    Case("preset_roboflow", {"preset": "roboflow-2.0.1"}, _scene(10, 21), 90, empty_frames=_GAPS),
    # Crowded: ~150 people crossing and occluding each other; many cascade levels, real assignments.
    Case("crowded_gallery", {"appearance_mode": "gallery", "nn_budget": 8, "max_age": 30},
         _scene(150, 22, dim=8, occlusion_rate=0.04, max_occlusion_frames=15, max_speed=9.0, turnover=0.01,
                false_positive_rate=0.05, embedding_noise=0.5, width=1920, height=1080),
         60, empty_frames=(35,)),
)


def case_frames(case: Case) -> list[dict[str, np.ndarray | None]]:
    """The ``update_arrays`` arguments of each frame, exactly as recorded."""
    rng = np.random.default_rng(10_000 + case.scene.seed)
    dim = case.scene.embedding_dim
    out = []
    for frame in iter_scene(case.scene, case.frames):
        # Inputs on coarse grids (1/16 px, 1/1024, float16 embeddings) held in float32: exact in
        # every dtype the tracker converts them to, and their zero low bits keep the file small.
        xyxy = _on_grid(frame.xyxy, 16.0)
        n = xyxy.shape[0]
        scores = frame.scores if case.score_range is None else rng.uniform(*case.score_range, n)
        scores = _on_grid(scores, 1024.0)
        classes = np.where(frame.det_gt_ids >= 0, frame.det_gt_ids % case.num_classes,
                           rng.integers(0, case.num_classes, n)).astype(np.int64)
        embeddings = None if frame.embeddings is None else frame.embeddings.astype(np.float16).astype(np.float32)
        if case.invalid_every and frame.index % case.invalid_every == 0 and n >= 2:
            xyxy[0] = np.nan
            xyxy[1, 2] = xyxy[1, 0]  # zero width
        if frame.index in case.empty_frames:
            xyxy, scores, classes = xyxy[:0], scores[:0], classes[:0]
            embeddings = embeddings[:0] if embeddings is not None else None
        if frame.index in case.no_embedding_frames or dim == 0:
            embeddings = None
        out.append({
            "xyxy": xyxy,
            "scores": scores if case.pass_scores else None,
            "class_id": classes if case.pass_class_id else None,
            "embeddings": embeddings,
        })
    return out


def _on_grid(values: np.ndarray, steps: float) -> np.ndarray:
    return (np.round(np.asarray(values, dtype=np.float64) * steps) / steps).astype(np.float32)


def record_case(case: Case) -> dict[str, np.ndarray]:
    """Run the tracker on one case; the arrays stored for it (keys without the case prefix)."""
    tracker = DeepSORTTracker(**case.settings)
    frames = case_frames(case)
    dim = case.scene.embedding_dim
    ids, boxes = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InvalidDetectionWarning)
        for f in frames:
            frame_ids, frame_boxes = tracker.update_arrays(
                f["xyxy"], f["scores"], f["embeddings"], class_id=f["class_id"], return_boxes=True
            )
            ids.append(frame_ids)
            boxes.append(frame_boxes)
    counts = np.array([f["xyxy"].shape[0] for f in frames])
    all_xyxy = np.concatenate([f["xyxy"] for f in frames]).reshape(-1, 4)
    rows = all_xyxy.shape[0]
    embeddings = np.zeros((rows, max(dim, 1)), dtype=np.float16)
    start = 0
    for f, count in zip(frames, counts):
        if f["embeddings"] is not None:
            embeddings[start : start + count] = f["embeddings"]
        start += count
    meta = {
        "constructor": case.settings,
        "resolved": tracker.settings.to_dict(),
        "pass_scores": case.pass_scores,
        "pass_class_id": case.pass_class_id,
    }
    classes = np.concatenate([
        f["class_id"] if f["class_id"] is not None else np.zeros(c, np.int64) for f, c in zip(frames, counts)
    ])
    scores = np.concatenate([
        f["scores"] if f["scores"] is not None else np.ones(c, np.float32) for f, c in zip(frames, counts)
    ])
    final = tracker.state_dict()["tracks"]
    return {
        **{f"final_{k}": v for k, v in final_state(final).items()},
        "settings": np.array(json.dumps(meta, sort_keys=True)),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "xyxy": all_xyxy.astype(np.float32),
        "scores": scores.astype(np.float32),
        "class_id": classes.astype(np.int16),
        "has_embeddings": np.array([f["embeddings"] is not None for f in frames]),
        "embeddings": embeddings,
        "ids": np.concatenate(ids).astype(np.int32),
        "out_xyxy": np.concatenate(boxes).reshape(-1, 4).astype(np.float64),
    }


FINAL_INTS = ("track_id", "state", "hits", "age", "time_since_update", "gallery_count", "class_id")


def final_state(tracks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The live tracks after the last frame (``state_dict()["tracks"]``, birth order), compactly."""
    return {
        "mean": tracks["mean"].astype(np.float64),
        "cov_diag": np.diagonal(tracks["covariance"], axis1=1, axis2=2).astype(np.float64),
        "ints": np.stack([tracks[k].astype(np.int64) for k in FINAL_INTS], axis=1).reshape(-1, len(FINAL_INTS)),
        # Gallery rows are copies of matched inputs, already pinned by the ids; an ema
        # embedding is computed, so it is kept (only ema galleries, to keep the file small).
        "gallery": (
            tracks["gallery"].astype(np.float32) if tracks["gallery"].shape[1] == 1 else np.zeros((0, 1, 1), np.float32)
        ),
    }


def _head_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    parser.add_argument("--list", action="store_true", help="print the cases and their sizes; write nothing")
    args = parser.parse_args(argv)

    arrays: dict[str, np.ndarray] = {}
    for case in CASES:
        recorded = record_case(case)
        ids = recorded["ids"]
        frames = recorded["offsets"].size - 1
        print(f"{case.name:24s} {frames:4d} frames {ids.size:6d} rows {len(set(ids[ids >= 0].tolist())):4d} ids "
              f"{(ids >= 0).mean():.2f} tracked")
        arrays.update({f"{case.name}/{k}": v for k, v in recorded.items()})
    if args.list:
        return 0
    head = _head_commit()
    if head != RECORDED_COMMIT:
        print(f"note: recording commit {head}, RECORDED_COMMIT says {RECORDED_COMMIT}", file=sys.stderr)
    arrays["format"] = np.array(FORMAT)
    arrays["commit"] = np.array(head)
    arrays["cases"] = np.array([c.name for c in CASES])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(CASES)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
