"""Many-stream benchmark: separate trackers vs MultiStreamTracker vs Ray, with the shipped embedder.

Eight streams, frames and detections held in memory (decoding is not timed):

- four replays of PETS09-S2L1 (768x576 frames, SORT Faster R-CNN detections,
  about 5.5 a frame), each starting at a different frame (offsets 0, 190,
  380, 570), from the shared data (``$DEEPSORT_EDGE_DATA``, default
  ``../shared/data``); without it, synthetic streams take their place;
- four seeded synthetic scenes (640x360, 8 walking figures drawn by the demo
  renderer, simulated detections).

Three ways of tracking them, each fed the same frames, checked to give the
same ids:

1. ``sequential``: one ``DeepSORTTracker`` per stream with the extractor,
   updated one after the other (one extractor call per stream and frame);
2. ``multistream``: one ``MultiStreamTracker`` (one extractor call per frame
   for all eight streams);
3. ``ray``: ``RayMultiStreamTracker`` with 2 tracker actors and 1 embedder
   actor on a local Ray (start-up not timed).

Printed: stream-frames/s and crops/s of each (best of ``--repeat`` runs,
interleaved), as ratios to ``sequential``;
for Ray the busy time of every actor, the per-core throughput that implies
and the driver's per-update overhead. The first 2 frames of each run are
not timed (first-call costs).

Usage:
    python tools/bench.py streams --frames 40 --repeat 3   # about 3 minutes on 2 cores
    python tools/bench.py streams --frames 40 --repeat 3 --json docs/bench/streams.json --docs
    python tools/bench.py streams --frames 20 --no-ray
    python tools/bench.py streams --provider cuda   # embedder on CUDA (Ray: embedder actor gets a GPU)
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import supervision as sv

from deepsort_edge import DeepSORTTracker, MultiStreamTracker
from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor
from deepsort_edge.demo.scene import SceneRenderer
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene

from .common import PETS09, PETS09_FRCNN_DETS, machine_info, package_env, shared_data_dir
from .report import md_table, publish

DOCS_BLOCK = "streams"

OFFSETS = (0, 190, 380, 570)
UNTIMED = 2
SETTINGS = dict(minimum_consecutive_frames=3)

Stream = list[tuple[sv.Detections, np.ndarray]]


def pets_streams(frames: int) -> dict[str, Stream] | None:
    import cv2

    from deepsort_edge.io.mot import read_mot

    root = shared_data_dir()
    if not (root / PETS09 / "img1").is_dir() or not (root / PETS09_FRCNN_DETS).is_file():
        return None
    dets = read_mot(root / PETS09_FRCNN_DETS)
    index = dets.frame_index()
    cache: dict[int, tuple[sv.Detections, np.ndarray]] = {}
    streams = {}
    for k, offset in enumerate(OFFSETS):
        stream = []
        for t in range(frames):
            frame = (offset + t) % 795 + 1
            if frame not in cache:
                rows = dets.table[index[frame]] if frame in index else dets.table[:0]
                xyxy = rows[:, 2:6].copy()
                xyxy[:, 2:] += xyxy[:, :2]
                image = cv2.imread(str(root / PETS09 / "img1" / f"{frame:06d}.jpg"), cv2.IMREAD_COLOR)
                cache[frame] = (sv.Detections(xyxy=xyxy, confidence=rows[:, 6].copy()), image)
            stream.append(cache[frame])
        streams[f"pets{k}"] = stream
    return streams


def synthetic_stream(seed: int, frames: int, width: int = 640, height: int = 360) -> Stream:
    cfg = SceneConfig(num_objects=8, width=width, height=height, seed=seed, miss_rate=0.05, turnover=0.01,
                      false_positive_rate=0.05)
    renderer = SceneRenderer(width, height, seed=seed)
    return [
        (sv.Detections(xyxy=f.xyxy, confidence=f.scores.astype(np.float64)),
         renderer.render(f.index, f.gt_ids, f.gt_xyxy))
        for f in generate_scene(cfg, frames)
    ]


def load_streams(frames: int) -> tuple[dict[str, Stream], str]:
    pets = pets_streams(frames)
    streams: dict[str, Stream] = dict(pets or {})
    source = "4 PETS09-S2L1 replays (offsets 0/190/380/570) + 4 synthetic" if pets else "8 synthetic (no shared data)"
    for seed in range(8 - len(streams)):
        streams[f"synth{seed}"] = synthetic_stream(100 + seed, frames)
    return streams, source


def _frame(streams: dict[str, Stream], t: int) -> tuple[dict, dict]:
    return {s: v[t][0] for s, v in streams.items()}, {s: v[t][1] for s, v in streams.items()}


def run_sequential(streams: dict[str, Stream], fx) -> tuple[float, list]:
    trackers = {s: DeepSORTTracker(feature_extractor=fx, **SETTINGS) for s in streams}
    frames = len(next(iter(streams.values())))
    ids, start = [], 0.0
    for t in range(frames):
        if t == UNTIMED:
            start = time.perf_counter()
        ids.append({s: trackers[s].update(d, f).tracker_id for s, (d, f) in ((s, v[t]) for s, v in streams.items())})
    return time.perf_counter() - start, ids


def run_multi(streams: dict[str, Stream], multi) -> tuple[float, list]:
    frames = len(next(iter(streams.values())))
    ids, start = [], 0.0
    for t in range(frames):
        if t == UNTIMED:
            start = time.perf_counter()
        out = multi.update(*_frame(streams, t))
        ids.append({s: d.tracker_id for s, d in out.items()})
    return time.perf_counter() - start, ids


def same_ids(a: list, b: list) -> bool:
    return all(np.array_equal(x[s], y[s]) for x, y in zip(a, b) for s in x)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.py streams", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="frames per stream (default 60)")
    parser.add_argument("--provider", default="cpu", help="ONNX Runtime provider for the embedder (cpu, cuda, ...)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="crops per ONNX Runtime call (default 8: larger calls are slower per crop on CPU)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode, best kept (default 2)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    parser.add_argument("--ray-workers", type=int, default=2, help="tracker actors (default 2)")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.md's streams block")
    args = parser.parse_args(argv)
    if args.frames <= UNTIMED:
        parser.error(f"--frames must be > {UNTIMED}")
    return args


def start_ray(fx, args: argparse.Namespace):
    """A local Ray with a ``RayMultiStreamTracker``, and its start-up time (not timed in the runs)."""
    import ray

    from deepsort_edge.streams.distributed import RayMultiStreamTracker

    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": package_env()["PYTHONPATH"]}})
    return RayMultiStreamTracker(fx, num_workers=args.ray_workers, **SETTINGS), time.perf_counter() - start


def run_modes(streams: dict[str, Stream], fx, remote, repeat: int) -> tuple[dict, dict, dict | None]:
    """Best seconds and same-ids flag per mode (best of ``repeat``, interleaved), and Ray's actor statistics."""
    best = {"sequential": float("inf"), "multi": float("inf"), "ray": float("inf")}
    same = {"sequential": True, "multi": True, "ray": True}
    ray_stats = None
    for _ in range(repeat):
        seconds, seq_ids = run_sequential(streams, fx)
        best["sequential"] = min(best["sequential"], seconds)
        seconds, ids = run_multi(streams, MultiStreamTracker(fx, **SETTINGS))
        best["multi"], same["multi"] = min(best["multi"], seconds), same["multi"] and same_ids(seq_ids, ids)
        if remote is not None:
            remote.reset()
            before = remote.stats()
            seconds, ids = run_multi(streams, remote)
            if seconds < best["ray"]:  # keep the actor statistics of the best run
                after = remote.stats()
                ray_stats = {key: ([a - b for a, b in zip(after[key], before[key])]
                                   if isinstance(after[key], list) and key != "streams_per_worker"
                                   else after[key]) for key in after}
                ray_stats["updates"] = after["updates"] - before["updates"]
            best["ray"], same["ray"] = min(best["ray"], seconds), same["ray"] and same_ids(seq_ids, ids)
    return best, same, ray_stats


def ray_summary(stats: dict, seconds: float, timed: int, streams: int) -> dict:
    """Per-actor throughput of the best Ray run and the driver's per-update overhead."""
    updates = stats["updates"]
    embed_busy = sum(stats["embedder_busy_s"])
    per_worker = [stats["streams_per_worker"][i] * updates / b if b > 0 else float("inf")
                  for i, b in enumerate(stats["worker_busy_s"])]
    crops_per_frame = sum(stats["embedder_crops"]) / (updates * streams)
    embed_rate = sum(stats["embedder_crops"]) / embed_busy
    wall_ms = seconds / timed * 1e3
    path_ms = (max(stats["worker_busy_s"]) + embed_busy) / updates * 1e3  # busiest tracker, then the embedder
    return {"startup_s": stats["startup_s"], "tracker_actor_stream_frames_per_s": per_worker,
            "embedder_crops_per_s": embed_rate, "embedder_stream_frames_per_s": embed_rate / crops_per_frame,
            "update_wall_ms": wall_ms, "update_overhead_ms": max(wall_ms - path_ms, 0.0),
            "embedders_per_tracker_actor": min(per_worker) * crops_per_frame / embed_rate}


def render(data: dict) -> str:
    """docs/benchmarks.md's streams block."""
    m, n = data["machine"], data["streams"]
    base = data["modes"]["sequential"]["seconds"]
    labels = {"sequential": f"{n} separate `DeepSORTTracker`s", "multi": "`MultiStreamTracker` (one batch a frame)",
              "ray": f"`RayMultiStreamTracker`, {data['ray_workers']} tracker actors + 1 embedder"}
    rows = [[labels[k], f"{data['stream_frames'] / r['seconds']:,.1f}", f"{data['crops'] / r['seconds']:,.0f}",
             f"{base / r['seconds']:.2f}x", "yes" if r["same_ids"] else "NO"] for k, r in data["modes"].items()]
    lines = [f"`{data['command']}` on {m['cpu']} ({m['usable_cpus']} usable CPUs, load average "
             f"{m['load_average']:.1f} at the start); {n} streams ({data['source']}), "
             f"{data['crops'] / data['stream_frames']:.1f} crops a stream-frame, {data['embedder']}:", "",
             md_table([f"{n} streams", "stream-frames/s", "crops/s", "vs separate trackers", "same ids"], rows,
                      "lrrrl"), ""]
    if data.get("ray"):
        r = data["ray"]
        lines += [f"Ray: start-up {r['startup_s']:.0f} s (not timed above); {r['update_wall_ms']:.0f} ms a "
                  f"frame, of which {r['update_overhead_ms']:.0f} ms driver, transfers and scheduling; the "
                  f"embedder actor does {r['embedder_crops_per_s']:,.0f} crops/s "
                  f"({r['embedder_stream_frames_per_s']:,.0f} stream-frames/s), a tracker actor "
                  f"{min(r['tracker_actor_stream_frames_per_s']):,.0f} stream-frames/s: about "
                  f"{r['embedders_per_tracker_actor']:.0f} embedders per tracker actor.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    streams, source = load_streams(args.frames)
    timed = args.frames - UNTIMED
    fx = DeepSORTFeatureExtractor.default(providers=args.provider, batch_size=args.batch_size)
    DeepSORTTracker(**SETTINGS).warmup()
    fx.extract_features(streams[next(iter(streams))][0][1], np.array([[0.0, 0.0, 40.0, 100.0]]))
    remote, startup = start_ray(fx, args) if not args.no_ray else (None, 0.0)
    best, same, ray_stats = run_modes(streams, fx, remote, args.repeat)
    if remote is not None:
        import ray

        remote.close()
        ray.shutdown()
        ray_stats["startup_s"] = startup
    data = {
        "command": "python tools/bench.py streams " + shlex.join(argv if argv is not None else sys.argv[2:]),
        "machine": machine_info(), "streams": len(streams), "source": source, "ray_workers": args.ray_workers,
        "embedder": f"{fx.source_model} on {fx.providers[0]} in calls of {fx.batch_size} crops",
        "stream_frames": timed * len(streams),
        "crops": sum(len(v[t][0]) for v in streams.values() for t in range(UNTIMED, args.frames)),
        "modes": {k: {"seconds": best[k], "same_ids": same[k]} for k in best if best[k] < float("inf")},
        "ray": ray_summary(ray_stats, best["ray"], timed, len(streams)) if ray_stats else None,
    }
    print(render(data))
    print(f"gain from cross-stream batching (MultiStreamTracker / sequential): "
          f"{best['sequential'] / best['multi']:.2f}x")
    publish(data, args.json, args.docs, DOCS_BLOCK, render)
    return 0 if all(same.values()) else 1
