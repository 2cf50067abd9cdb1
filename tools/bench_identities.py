"""Global identities: multi-camera IDF1 with no linking, with the registry, with an oracle link; registry cost.

Protocol (as MTMC benchmarks score): a sequence is cut into two time windows
that play the role of two cameras (PETS09-S2L1: frames 1-350 and 446-795, a
95-frame, 13.6 s gap that motion cannot bridge; each MOT17 sequence: its
first and last 44 %). Each window gets its own tracker (default settings,
frame rate from seqinfo.ini); the windows are then concatenated into one
sequence (the second window's frames follow the first's) and scored with
TrackEval against the ground truth, whose ids are global by construction.

- **no linking**: each window's local ids, kept apart (the second window's ids offset);
- **registry**: ``IdentityRegistry`` (default settings) fed every confirmed row with its
  detection embedding and the frame's time; rows are written with their global id as
  returned in that frame (rows still undecided, global id -1, are left out, as a
  ``--global-ids`` run writes them);
- **oracle**: every local track renamed to the ground-truth id it overlaps most (IoU >= 0.5):
  the best any linking of these tracks could do.

Sets: PETS09 with the MOT15 ACF detections and with the SORT paper's Faster R-CNN
detections (OSNet-x0.25 embeddings), Faster R-CNN with the shipped model; the 7
MOT17 train sequences with the synthetic ReID features (``tools/synthetic_reid.py``);
a generated demo scene seen by two cameras whose views overlap (shipped model).
Embeddings and data loading are ``tools/bench_quality.py``'s.

Cost: per frame of MOT17-04 (default tracker, synthetic embeddings), the thread
time of ``IdentityRegistry.observe`` with 10, 100 and 1,000 live identities
(seeded in advance) beside the tracker's own ``update_arrays``.

Usage:
    python tools/bench_identities.py                  # all of it, ~4 min on 2 cores (embeddings cached)
    python tools/bench_identities.py --docs           # also rewrite docs/benchmarks.md's section
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from bench_quality import Sequence, cell, data_dir, load_sets, md_table  # noqa: E402
from synthetic_reid import match_to_ground_truth  # noqa: E402

from deepsort_edge.boxes import tlwh_to_xyxy  # noqa: E402
from deepsort_edge.evaluation import COMBINED, SequenceData, evaluate  # noqa: E402
from deepsort_edge.mot import MOTData  # noqa: E402

PETS_WINDOWS = ((1, 350), (446, 795))
WINDOW_FRACTION = 350 / 795  # MOT17 sequences are cut like PETS09
STREAMS = ("cam0", "cam1")


# --------------------------------------------------------------------------- tracking
def windows_of(length: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two windows (first, last frame) covering the first and last ~44 % of ``length`` frames."""
    size = int(round(WINDOW_FRACTION * length))
    return (1, size), (length - size + 1, length)


def track_window(seq: Sequence, window: tuple[int, int], tracker: Any) -> list[tuple[int, np.ndarray, np.ndarray,
                                                                                      np.ndarray]]:
    """Track one window; per frame ``(frame, ids, boxes xyxy, embeddings)`` of every detection row."""
    index, table = seq.detections.frame_index(), seq.detections.table
    out = []
    for frame in range(window[0], window[1] + 1):
        rows = index.get(frame, slice(0, 0))
        xyxy = tlwh_to_xyxy(table[rows, 2:6])
        emb = seq.embeddings[rows] if seq.embeddings is not None else None
        ids, boxes = tracker.update_arrays(xyxy, table[rows, 6].astype(np.float32), emb, return_boxes=True)
        out.append((frame, ids, boxes, emb))
    return out


def link(runs: dict[str, list], rate: float, registry: Any) -> dict[str, list[np.ndarray]]:
    """Global ids of every row, frame by frame, the streams in time order (the windows do not overlap)."""
    out: dict[str, list[np.ndarray]] = {}
    for stream, frames in runs.items():
        out[stream] = [registry.observe(stream, ids, emb, time=frame / rate) for frame, ids, _, emb in frames]
    return out


def to_mot(frames: list, ids_of: list[np.ndarray], offset: int) -> MOTData:
    """Rows with an id >= 1 as MOT rows, frames renumbered from ``offset + 1``."""
    parts = []
    for (frame, _, boxes, _), ids in zip(frames, ids_of):
        keep = ids >= 1
        if keep.any():
            parts.append(MOTData.from_arrays(np.full(int(keep.sum()), frame - frames[0][0] + 1 + offset), ids[keep],
                                             boxes[keep]).table)
    return MOTData(np.concatenate(parts)) if parts else MOTData.empty()


def window_gt(gt: MOTData, window: tuple[int, int], offset: int) -> MOTData:
    keep = (gt.frames >= window[0]) & (gt.frames <= window[1])
    table = gt.table[keep].copy()
    table[:, 0] += offset - window[0] + 1
    return MOTData(table)


def oracle_ids(result: MOTData, gt: MOTData) -> np.ndarray:
    """Each result track renamed to the gt id its rows overlap most (IoU >= 0.5).

    Tracks are renamed in order of their votes; one that would share a frame
    with a track already holding that gt id, or that matches no gt row, keeps
    a fresh id (an id appears at most once per frame).
    """
    matched = match_to_ground_truth(result, gt)
    fresh = int(gt.ids.max()) + 1 if len(gt) else 1
    votes = []
    for track in np.unique(result.ids):
        rows = result.ids == track
        count = Counter(matched[rows & (matched >= 0)].tolist()).most_common(1)
        votes.append((-(count[0][1] if count else 0), int(track), count[0][0] if count else -1))
    names: dict[int, int] = {}
    frames_of: dict[int, set[int]] = {}
    for _, track, gid in sorted(votes):
        frames = set(result.frames[result.ids == track].tolist())
        if gid >= 0 and not frames & frames_of.get(gid, set()):
            names[track] = gid
            frames_of.setdefault(gid, set()).update(frames)
        else:
            names[track], fresh = fresh, fresh + 1
    return np.array([names[int(t)] for t in result.ids], dtype=np.int64)


def score_set(seqs: list[Sequence], registry_kwargs: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """HOTA / IDF1 / IDSW (combined over ``seqs``) with no linking, the registry and the oracle link."""
    from deepsort_edge import DeepSORTTracker
    from deepsort_edge.identities import IdentityRegistry

    pairs: dict[str, dict[str, SequenceData]] = {"no linking": {}, "registry": {}, "oracle link": {}}
    for seq in seqs:
        windows = PETS_WINDOWS if seq.name == "PETS09-S2L1" else windows_of(seq.num_frames)
        runs = {s: track_window(seq, w, DeepSORTTracker(frame_rate=seq.frame_rate)) for s, w in zip(STREAMS, windows)}
        registry = IdentityRegistry(**(registry_kwargs or {}))
        global_ids = link(runs, seq.frame_rate, registry)
        sizes = [w[1] - w[0] + 1 for w in windows]
        offsets = [0, sizes[0]]
        gt = MOTData(np.concatenate([window_gt(seq.gt, w, o).table for w, o in zip(windows, offsets)]))
        local = [to_mot(runs[s], [f[1] for f in runs[s]], o) for s, o in zip(STREAMS, offsets)]
        shift = int(local[0].ids.max()) if len(local[0]) else 0
        local[1].table[:, 1] += shift
        plain = MOTData(np.concatenate([m.table for m in local]))
        linked = MOTData(np.concatenate([to_mot(runs[s], global_ids[s], o).table for s, o in zip(STREAMS, offsets)]))
        oracle = MOTData(plain.table.copy())
        oracle.table[:, 1] = oracle_ids(plain, gt)
        n = sum(sizes)
        for name, result in (("no linking", plain), ("registry", linked), ("oracle link", oracle)):
            pairs[name][seq.name] = SequenceData(gt, result, n)
    out = {}
    for name, p in pairs.items():
        m = evaluate(p)
        m = m[COMBINED] if COMBINED in m else next(iter(m.values()))
        out[name] = {"HOTA": 100 * m["HOTA"], "IDF1": 100 * m["IDF1"], "IDSW": int(m["IDSW"])}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "identities.md")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "runs" / "bench" / "cache")
    parser.add_argument("--sets", default="pets-acf,pets-frcnn,pets-shipped,mot17-app,demo")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an IdentitySettings override (repeatable)")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost measurement")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.md's identities section")
    args = parser.parse_args(argv)
    data = data_dir()
    if not (data / "README.md").is_file():
        print(f"shared data not found at {data}; set DEEPSORT_EDGE_DATA", file=sys.stderr)
        return 2
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    started = time.perf_counter()
    sets = load_sets(data, args.cache_dir)
    results = {}
    for name in args.sets.split(","):
        if name == "demo":
            continue
        results[name] = score_set(sets[name], overrides)
        print(name, json.dumps(results[name]), file=sys.stderr)
    rows = [[label, *[cell(results[s][label]) for s in results]] for label in ("no linking", "registry", "oracle link")]
    print(md_table(["global ids (HOTA / IDF1 / IDSW)", *results], rows))
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
