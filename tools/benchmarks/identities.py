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
MOT17 train sequences with the synthetic ReID features (``synthetic_reid.py``);
a generated demo scene seen by two cameras whose views overlap (shipped model).
Embeddings and data loading are ``bench.py quality``'s.

Cost: per frame of MOT17-04 (default tracker, synthetic embeddings), the thread
time of ``IdentityRegistry.observe`` with 10, 100 and 1,000 live identities
(seeded in advance) beside the tracker's own ``update_arrays``: medians of 5
interleaved runs.

Usage:
    python tools/bench.py identities                  # all of it, ~4 min on 2 cores (embeddings cached)
    python tools/bench.py identities --json docs/bench/identities.json --docs   # and the docs block
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.io.evaluation import COMBINED, SequenceData, evaluate
from deepsort_edge.io.mot import MOTData
from deepsort_edge.tracking.boxes import tlwh_to_xyxy
from deepsort_edge.tracking.settings import IdentitySettings

from .common import MOT17_04_NAME, PETS09_NAME, add_dataset_arguments, require_shared_data
from .datasets import REPORT_SETS, Sequence, load_sets, wanted_sets
from .quality import cell
from .report import generated_by, md_table, publish, run_host
from .synthetic_reid import match_to_ground_truth

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
    from deepsort_edge.streams.identities import IdentityRegistry

    pairs: dict[str, dict[str, SequenceData]] = {"no linking": {}, "registry": {}, "oracle link": {}}
    for seq in seqs:
        windows = PETS_WINDOWS if seq.name == PETS09_NAME else windows_of(seq.num_frames)
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


# --------------------------------------------------------------------------- demo scene
DEMO_SIZE = (960, 360)
DEMO_VIEWS = ((0, 600), (360, 960))  # 240 columns seen by both cameras
DEMO_FRAMES, DEMO_FPS, DEMO_SCALE, DEMO_MIN_VISIBLE = 300, 30.0, 1.6, 0.35


def demo_sequences() -> list[Sequence]:
    """A generated scene seen by two cameras with overlapping views: one Sequence per camera
    (detections, shipped-model embeddings, ground truth in camera coordinates, global gt ids)."""
    from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
    from deepsort_edge.demo.scene import CameraView, SceneRenderer, scale_boxes
    from deepsort_edge.demo.synthetic import SceneConfig, generate_scene

    width, height = DEMO_SIZE
    cfg = SceneConfig(num_objects=8, width=width, height=height, seed=1, turnover=0.004, miss_rate=0.04,
                      box_noise=1.5, max_speed=6.0)
    renderer = SceneRenderer(width, height, seed=1)
    extractor = DeepSORTFeatureExtractor.default(providers="cpu")
    views = [CameraView(*v) for v in DEMO_VIEWS]
    rows: dict[int, dict[str, list]] = {i: {"det": [], "emb": [], "gt": []} for i in range(len(views))}
    for frame in generate_scene(cfg, DEMO_FRAMES):
        gt_xyxy = scale_boxes(frame.gt_xyxy, DEMO_SCALE)
        image = renderer.render(frame.index, frame.gt_ids, gt_xyxy)
        for i, view in enumerate(views):
            visible = view.visibility(gt_xyxy, height)
            inside = visible > 0
            box = view.boxes(gt_xyxy[inside])
            rows[i]["gt"].append(MOTData.from_arrays(np.full(int(inside.sum()), frame.index), frame.gt_ids[inside],
                                                     box, classes=np.ones(int(inside.sum())),
                                                     visibility=visible[inside]).table)
            seen = visible >= DEMO_MIN_VISIBLE  # a detector sees what is mostly in view
            det = np.clip(view.boxes(gt_xyxy[seen]), 0, [view.right - view.left - 1, height - 1] * 2)
            if len(det):
                rows[i]["emb"].append(extractor.extract_features(view.crop(image), det))
                rows[i]["det"].append(MOTData.from_arrays(np.full(len(det), frame.index), np.full(len(det), -1), det,
                                                          scores=np.full(len(det), 0.9)).table)
    return [Sequence(f"demo-cam{i}", MOTData(np.concatenate(r["det"])), np.concatenate(r["emb"]),
                     MOTData(np.concatenate(r["gt"])), DEMO_FRAMES, DEMO_FPS) for i, r in rows.items()]


def score_cameras(cams: list[Sequence], registry_kwargs: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """As :func:`score_set`, for cameras that run at the same time (views may overlap): the cameras'
    frames are concatenated for scoring, and the registry sees them frame by frame, interleaved."""
    from deepsort_edge import DeepSORTTracker
    from deepsort_edge.streams.identities import IdentityRegistry

    streams = [c.name for c in cams]
    registry = IdentityRegistry(overlaps=[tuple(streams)], **(registry_kwargs or {}))
    runs = {c.name: track_window(c, (1, c.num_frames), DeepSORTTracker(frame_rate=c.frame_rate)) for c in cams}
    global_ids: dict[str, list[np.ndarray]] = {s: [] for s in streams}
    for k in range(cams[0].num_frames):
        for c in cams:
            frame, ids, _, emb = runs[c.name][k]
            global_ids[c.name].append(registry.observe(c.name, ids, emb, time=frame / c.frame_rate))
    offsets = [i * cams[0].num_frames for i in range(len(cams))]
    gt = MOTData(np.concatenate([window_gt(c.gt, (1, c.num_frames), o).table for c, o in zip(cams, offsets)]))
    local, shift = [], 0
    for c, o in zip(cams, offsets):
        m = to_mot(runs[c.name], [f[1] for f in runs[c.name]], o)
        m.table[:, 1] += shift
        shift = int(m.ids.max()) if len(m) else shift
        local.append(m)
    plain = MOTData(np.concatenate([m.table for m in local]))
    linked = MOTData(np.concatenate([to_mot(runs[c.name], global_ids[c.name], o).table for c, o in zip(cams, offsets)]))
    oracle = MOTData(plain.table.copy())
    oracle.table[:, 1] = oracle_ids(plain, gt)
    out = {}
    for name, result in (("no linking", plain), ("registry", linked), ("oracle link", oracle)):
        m = evaluate({"demo": SequenceData(gt, result, sum(c.num_frames for c in cams))})["demo"]
        out[name] = {"HOTA": 100 * m["HOTA"], "IDF1": 100 * m["IDF1"], "IDSW": int(m["IDSW"])}
    return out


# --------------------------------------------------------------------------- cost
def registry_cost(seq: Sequence, live: tuple[int, ...] = (10, 100, 1000), repeats: int = 5) -> dict[str, float]:
    """Milliseconds per frame (thread time, the median of ``repeats`` runs): the default tracker's update
    on ``seq``, and the registry's ``observe`` on its output with ``n`` identities kept live beside the
    sequence's own. The runs interleave (tracker, then each registry size), so a change in the
    machine's load moves all of them alike."""
    from deepsort_edge import DeepSORTTracker
    from deepsort_edge.streams.identities import IdentityRegistry

    index, table = seq.detections.frame_index(), seq.detections.table
    inputs = []
    for frame in range(1, seq.num_frames + 1):
        rows = index.get(frame, slice(0, 0))
        inputs.append((frame, tlwh_to_xyxy(table[rows, 2:6]), table[rows, 6].astype(np.float32), seq.embeddings[rows]))
    rng = np.random.default_rng(0)
    # n people seen just before the sequence starts, in another camera: live, never linked (random looks).
    crowds = {n: rng.normal(size=(n, seq.embeddings.shape[1])) for n in live}
    runs: dict[str, list[float]] = {}
    for _ in range(repeats):
        tracker = DeepSORTTracker(frame_rate=seq.frame_rate).warmup()
        frames, spent = [], 0.0
        for frame, xyxy, scores, emb in inputs:
            start = time.thread_time()
            ids = tracker.update_arrays(xyxy, scores, emb)
            spent += time.thread_time() - start
            frames.append((frame, ids, emb))
        runs.setdefault("tracker update", []).append(1000 * spent / len(frames))
        for n, crowd in crowds.items():
            registry = IdentityRegistry()
            for step in range(registry.settings.min_frames):
                registry.observe("elsewhere", np.arange(n), crowd, time=-1.0 + 0.01 * step)
            start = time.thread_time()
            for frame, ids, emb in frames:
                registry.observe("cam", ids, emb, time=frame / seq.frame_rate)
            label = f"registry, {n} + {len(registry) - n} identities"
            runs.setdefault(label, []).append(1000 * (time.thread_time() - start) / len(frames))
    return {label: float(np.median(values)) for label, values in runs.items()}


DOCS_BLOCK = "identities"
#: PETS09 sets with the issue's IDF1 targets, in its scoring (see :func:`checks`).
ISSUE_TARGETS = (("pets-acf", 82.0), ("pets-frcnn", 72.5))


def checks(data: dict) -> list[tuple[str, bool]]:
    """The targets, each ``(text, passed)``, from a run's JSON."""
    results, cost, out = data["results"], data.get("cost"), []
    for name, issue_target in ISSUE_TARGETS:
        if name in results:
            r = results[name]
            # The issue's targets (IDF1 >= 82 / 72.5) are two thirds of the way from no linking to the
            # oracle in its scoring; the same fraction here, where the gap frames are not scored.
            goal = r["no linking"]["IDF1"] + 2 / 3 * (r["oracle link"]["IDF1"] - r["no linking"]["IDF1"])
            out.append((f"{name}, default settings: registry IDF1 >= {goal:.1f} (two thirds of the way to "
                        f"the oracle; the issue's {issue_target} in its scoring)", r["registry"]["IDF1"] >= goal))
            out.append((f"{name}: registry HOTA not below no linking",
                        r["registry"]["HOTA"] >= r["no linking"]["HOTA"]))
    if cost:
        at_100 = next(v for k, v in cost.items() if k.startswith("registry, 100 "))
        out.append(("registry per frame at 100 identities below a default tracker update",
                    at_100 < cost["tracker update"]))
    return out


def render(data: dict) -> str:
    """docs/benchmarks.md's identities block: global-id scores per set, the registry's cost, the targets."""
    results, cost = data["results"], data.get("cost")
    rows = [[label, *[cell(results[s][label]) for s in results]] for label in ("no linking", "registry", "oracle link")]
    parts = ["#### Global IDF1 over both cameras (HOTA / IDF1 / IDSW, TrackEval)", "",
             md_table(["global ids", *results], rows), ""]
    if cost:
        parts += ["#### Cost per frame, MOT17-04 (1050 frames, ~45 detections a frame; thread time, median of 5 runs)",
                  "", md_table(["what", "ms / frame"], [[k, f"{v:.3f}"] for k, v in cost.items()]), ""]
    parts += ["#### Targets", "", *[f"- **{'PASS' if ok else 'FAIL'}** {text}" for text, ok in checks(data)], ""]
    parts.append(generated_by(data["command"], data["elapsed_s"], "Registry settings", data["settings"],
                              data["host"]))
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="bench.py identities", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser, name="identities", sets="pets-acf,pets-frcnn,pets-shipped,mot17-app,demo")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an IdentitySettings override (repeatable)")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost measurement")
    parser.add_argument("--json", type=Path, help="write every number here (docs: docs/bench/identities.json)")
    parser.add_argument("--docs", action="store_true", help=f"rewrite docs/benchmarks.md's {DOCS_BLOCK} block")
    args = parser.parse_args(argv)
    data_dir = require_shared_data()
    names = wanted_sets(args.sets, (*REPORT_SETS, "demo"))
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    started = time.perf_counter()
    sets = load_sets(data_dir, args.cache_dir)
    results = {}
    for name in names:
        results[name] = score_cameras(demo_sequences(), overrides) if name == "demo" else \
            score_set(sets[name], overrides)
        print(name, json.dumps(results[name]), file=sys.stderr)
    cost = None
    if not args.no_cost:
        cost = registry_cost({s.name: s for s in sets["mot17-app"]}[MOT17_04_NAME])
    data = {"command": shlex.join(["python", "tools/bench.py", "identities", *argv]), "host": run_host(),
            "settings": IdentitySettings.from_dict(overrides).to_dict(), "results": results, "cost": cost,
            "elapsed_s": time.perf_counter() - started}
    text = render(data)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    publish(data, args.json, args.docs, DOCS_BLOCK, render)
    return 0 if all(ok for _, ok in checks(data)) else 1
