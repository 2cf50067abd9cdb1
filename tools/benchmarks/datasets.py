"""The data sets of the quality benchmarks: loading, embedding (cached), selection splits.

``bench.py quality``, ``bench.py peers`` and ``bench.py identities`` score trackers on these.
Data (``DEEPSORT_EDGE_DATA``, default ``../shared/data`` beside the repository);
frame rates always from ``seqinfo.ini``:

============  =======================================================  ===========
set           what                                                      appearance
============  =======================================================  ===========
pets-acf      PETS09-S2L1, MOT15 public ACF detections (score / 100,   OSNet-x0.25
              clipped to [0, 1], every detection kept)
pets-frcnn    PETS09-S2L1, the SORT paper's Faster R-CNN detections    OSNet-x0.25
pets-shipped  pets-frcnn with the shipped int8 EfficientNet-Lite0      shipped model
pets-acf-     pets-acf with the shipped model                           shipped model
shipped
pets-motion   pets-acf / pets-frcnn, motion only                        none
pets-frcnn-   (two sets)
motion
mot17-app     the 7 MOT17 train sequences, shared detections           synthetic OSNet-like
mot17         the same, motion only                                     none
tud           TUD-Campus + TUD-Stadtmitte, SORT Faster R-CNN dets       none
sim-pets-*    detectors simulated from PETS09's ground truth           OSNet-x0.25
              (``sim_detectors.py``, seeded): clean, noisy,            (clean-shipped:
              percent (0-100 scores); clean-shipped; clean-motion      shipped; -motion:
                                                                        none)
sim-mot17-*   the same on MOT17's ground truth: clean, compressed      synthetic
              (scores squeezed into [0.5, 0.55])
hog-pets      OpenCV's HOG people detector on PETS09 frames            OSNet-x0.25
              (``hog_detector.py``; skipped, with the reason,
              where OpenCV has no HOGDescriptor)
============  =======================================================  ===========

Simulated detectors (jitter / dropped / false positives per person / scores):
clean 5 % / 10 % / 3 % / uniform,
noisy 10 % / 25 % / 15 % / beta, percent 5 % / 10 % / 10 % / 0-100,
compressed 8 % / 20 % / 10 % / [0.5, 0.55].

The synthetic appearance model (``synthetic_reid.py``, seeded) matches
OSNet's same- and different-person distance quantiles on PETS09.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.io.mot import MOTData, MOTSequence, read_mot

from . import hog_detector
from .common import (MOT15_TRAIN, MOT17_TRAIN, OSNET, OSNET_KWARGS, PETS09, PETS09_FRCNN_DETS, SORT_FRCNN, UsageError,
                     require_shared_data)
from .sim_detectors import DetectorModel, simulate
from .synthetic_reid import match_to_ground_truth, synthetic_embeddings

MOT17_SELECTION = ("MOT17-02-FRCNN", "MOT17-04-FRCNN", "MOT17-05-FRCNN", "MOT17-09-FRCNN")
SIMULATED: dict[str, DetectorModel] = {
    "clean": DetectorModel(jitter=0.05, drop=0.10, false_positives=0.03, scores="uniform"),
    "noisy": DetectorModel(jitter=0.10, drop=0.25, false_positives=0.15, scores="beta"),
    "percent": DetectorModel(jitter=0.05, drop=0.10, false_positives=0.10, scores="percent"),
    "compressed": DetectorModel(jitter=0.08, drop=0.20, false_positives=0.10, scores="compressed"),
}
SIM_SEED = 1
#: Every set, in report order (``--sets`` picks among these).
REPORT_SETS = ("pets-acf", "pets-frcnn", "pets-shipped", "pets-acf-shipped", "pets-motion", "pets-frcnn-motion",
               "mot17-app", "mot17", "tud", "sim-pets-clean", "sim-pets-clean-shipped", "sim-pets-clean-motion",
               "sim-pets-noisy", "sim-pets-percent", "sim-mot17-clean", "sim-mot17-compressed", "hog-pets")


def wanted_sets(names: str | None, known: tuple[str, ...] = REPORT_SETS) -> tuple[str, ...]:
    """The sets ``--sets`` names (None: every one of ``known``); :class:`UsageError` naming unknown ones."""
    wanted = known if names is None else tuple(names.split(","))
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise UsageError(f"unknown sets {unknown}; known: {list(known)}")
    return wanted


def data_and_sets(names: str | None) -> tuple[Path, tuple[str, ...]]:
    """The shared data folder and the sets ``--sets`` names; :class:`UsageError` when either is wrong."""
    return require_shared_data(), wanted_sets(names)


@dataclass
class Sequence:
    """One sequence of a set: detections, their embeddings (or None), ground truth."""

    name: str
    detections: MOTData
    embeddings: np.ndarray | None
    gt: MOTData
    num_frames: int
    frame_rate: float


def _embed(seq: MOTSequence, det: MOTData, extractor: Any, tag: str, cache_dir: Path) -> np.ndarray:
    """Embeddings of every detection row with ``extractor`` (cached by content: boxes and model file)."""
    model = hashlib.sha1(Path(extractor.model_path).read_bytes()).hexdigest()
    key = hashlib.sha1(det.table.tobytes() + tag.encode() + model.encode()).hexdigest()[:16]
    cache = cache_dir / f"emb-{seq.name}-{key}.npy"
    if cache.is_file():
        return np.load(cache)
    import cv2
    from tqdm import tqdm

    out = np.zeros((len(det), extractor.feature_dim), dtype=np.float32)
    index = det.frame_index()
    for frame in tqdm(sorted(index), desc=f"embedding {seq.name} ({tag})", file=sys.stderr, leave=False):
        rows = index[frame]
        image = cv2.imread(str(seq.image_path(frame)))
        out[rows] = extractor.extract_features(image, det.xyxy[rows])
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out


def load_sets(data: Path, cache_dir: Path, pets_only: bool = False) -> dict[str, list[Sequence]]:
    """Every set (``pets_only``: only the PETS09 ones, the sets without MOT17 and TUD, much faster)."""
    from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor

    pets = MOTSequence.from_folder(data / PETS09)
    pets_gt = read_mot(pets.gt_path)
    acf = read_mot(pets.det_path)
    acf = acf.with_scores(np.clip(acf.scores / 100.0, 0.0, 1.0).astype(np.float32))
    frcnn = read_mot(data / PETS09_FRCNN_DETS)
    osnet = DeepSORTFeatureExtractor.from_onnx(data / OSNET, providers="cpu", **OSNET_KWARGS)
    shipped = DeepSORTFeatureExtractor.default(providers="cpu")
    n, rate = pets.info.length, pets.info.frame_rate
    sets: dict[str, list[Sequence]] = {
        "pets-acf": [Sequence(pets.name, acf, _embed(pets, acf, osnet, "osnet", cache_dir), pets_gt, n, rate)],
        "pets-frcnn": [Sequence(pets.name, frcnn, _embed(pets, frcnn, osnet, "osnet", cache_dir), pets_gt, n,
                                rate)],
        "pets-shipped": [Sequence(pets.name, frcnn, _embed(pets, frcnn, shipped, "shipped", cache_dir), pets_gt,
                                  n, rate)],
    }
    app, motion = [], []
    for folder in [] if pets_only else sorted((data / MOT17_TRAIN).iterdir()):
        seq = MOTSequence.from_folder(folder)
        det, gt = read_mot(seq.det_path), read_mot(seq.gt_path)
        seed = int(hashlib.sha1(seq.name.encode()).hexdigest()[:8], 16)
        emb = synthetic_embeddings(match_to_ground_truth(det, gt), seed=seed)
        app.append(Sequence(seq.name, det, emb, gt, seq.info.length, seq.info.frame_rate))
        motion.append(Sequence(seq.name, det, None, gt, seq.info.length, seq.info.frame_rate))
    if not pets_only:
        sets["mot17-app"], sets["mot17"] = app, motion
    tud = []
    for name in () if pets_only else ("TUD-Campus", "TUD-Stadtmitte"):
        seq = MOTSequence.from_folder(data / MOT15_TRAIN / name)
        det = read_mot(data / SORT_FRCNN / name / "det.txt")
        tud.append(Sequence(name, det, None, read_mot(seq.gt_path), seq.info.length, seq.info.frame_rate))
    if not pets_only:
        sets["tud"] = tud
    sets["pets-acf-shipped"] = [Sequence(pets.name, acf, _embed(pets, acf, shipped, "shipped", cache_dir), pets_gt, n,
                                         rate)]
    sets["pets-motion"] = _motion_only(sets["pets-acf"])
    sets["pets-frcnn-motion"] = _motion_only(sets["pets-frcnn"])
    size = (pets.info.width or 768, pets.info.height or 576)
    for kind in ("clean", "noisy", "percent"):
        det, _ = simulate(pets_gt, SIMULATED[kind], SIM_SEED, size)
        sets[f"sim-pets-{kind}"] = [Sequence(pets.name, det, _embed(pets, det, osnet, "osnet", cache_dir), pets_gt, n,
                                             rate)]
    det = sets["sim-pets-clean"][0].detections
    sets["sim-pets-clean-shipped"] = [Sequence(pets.name, det, _embed(pets, det, shipped, "shipped", cache_dir),
                                               pets_gt, n, rate)]
    sets["sim-pets-clean-motion"] = _motion_only(sets["sim-pets-clean"])
    for kind in () if pets_only else ("clean", "compressed"):
        sim = []
        for s in sets["mot17"]:
            seed = int(hashlib.sha1(s.name.encode()).hexdigest()[:8], 16) + SIM_SEED
            info = MOTSequence.from_folder(data / MOT17_TRAIN / s.name).info
            det, truth = simulate(s.gt, SIMULATED[kind], seed, (info.width or 1920, info.height or 1080))
            sim.append(Sequence(s.name, det, synthetic_embeddings(truth, seed=seed), s.gt, s.num_frames, s.frame_rate))
        sets[f"sim-mot17-{kind}"] = sim
    hog = hog_detector.cached(pets, cache_dir)
    if isinstance(hog, str):
        print(f"hog-pets skipped: {hog}", file=sys.stderr)
    else:
        sets["hog-pets"] = [Sequence(pets.name, hog, _embed(pets, hog, osnet, "osnet", cache_dir), pets_gt, n, rate)]
    return sets


def _motion_only(seqs: list[Sequence]) -> list[Sequence]:
    return [Sequence(s.name, s.detections, None, s.gt, s.num_frames, s.frame_rate) for s in seqs]


def split_sets(sets: dict[str, list[Sequence]]) -> dict[str, list[Sequence]]:
    """The sets plus their selection / held-out parts (``name:select``, ``name:held-out``)."""
    out = dict(sets)
    for name in ("mot17-app", "mot17"):
        if name not in sets:
            continue
        out[f"{name}:select"] = [s for s in sets[name] if s.name in MOT17_SELECTION]
        out[f"{name}:held-out"] = [s for s in sets[name] if s.name not in MOT17_SELECTION]
    return out

