#!/usr/bin/env python
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
    python tools/bench_streams.py --frames 40 --repeat 3   # about 3 minutes on 2 cores
    python tools/bench_streams.py --frames 20 --no-ray
    python tools/bench_streams.py --provider cuda   # embedder on CUDA (Ray: embedder actor gets a GPU)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

import supervision as sv  # noqa: E402

from deepsort_edge import DeepSORTTracker, MultiStreamTracker  # noqa: E402
from deepsort_edge.demo.scene import SceneRenderer  # noqa: E402
from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor  # noqa: E402
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene  # noqa: E402

PETS = Path("MOT15") / "train" / "PETS09-S2L1"
PETS_DETS = Path("MOT15") / "train-sort-frcnn-det" / "PETS09-S2L1" / "det.txt"
OFFSETS = (0, 190, 380, 570)
UNTIMED = 2
SETTINGS = dict(minimum_consecutive_frames=3)

Stream = list[tuple[sv.Detections, np.ndarray]]


def shared_data_dir() -> Path:
    return Path(os.environ.get("DEEPSORT_EDGE_DATA", REPO_ROOT.parent / "shared" / "data"))


def pets_streams(frames: int) -> dict[str, Stream] | None:
    import cv2

    from deepsort_edge.io.mot import read_mot

    root = shared_data_dir()
    if not (root / PETS / "img1").is_dir() or not (root / PETS_DETS).is_file():
        return None
    dets = read_mot(root / PETS_DETS)
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
                image = cv2.imread(str(root / PETS / "img1" / f"{frame:06d}.jpg"), cv2.IMREAD_COLOR)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="frames per stream (default 60)")
    parser.add_argument("--provider", default="cpu", help="ONNX Runtime provider for the embedder (cpu, cuda, ...)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="crops per ONNX Runtime call (default 8: larger calls are slower per crop on CPU)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode, best kept (default 2)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    parser.add_argument("--ray-workers", type=int, default=2, help="tracker actors (default 2)")
    args = parser.parse_args(argv)
    if args.frames <= UNTIMED:
        parser.error(f"--frames must be > {UNTIMED}")

    streams, source = load_streams(args.frames)
    timed = args.frames - UNTIMED
    stream_frames = timed * len(streams)
    crops = sum(len(v[t][0]) for v in streams.values() for t in range(UNTIMED, args.frames))
    fx = DeepSORTFeatureExtractor.default(providers=args.provider, batch_size=args.batch_size)
    DeepSORTTracker(**SETTINGS).warmup()
    fx.extract_features(streams[next(iter(streams))][0][1], np.array([[0.0, 0.0, 40.0, 100.0]]))

    print(f"# bench_streams: {len(streams)} streams x {args.frames} frames ({source})")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; embedder {fx.source_model} on {fx.providers[0]}, batch {fx.batch_size}")
    print(f"timed: {stream_frames} stream-frames, {crops} crops ({crops / stream_frames:.1f} a stream-frame)")
    print()

    # Best of --repeat runs per mode, interleaved, against noise from other load on the machine.
    seq_s = multi_s = ray_s = float("inf")
    remote = None
    if not args.no_ray:
        import ray

        from deepsort_edge.streams.distributed import RayMultiStreamTracker

        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}})
        remote = RayMultiStreamTracker(fx, num_workers=args.ray_workers, **SETTINGS)
        startup = time.perf_counter() - start
    same = {"multi": True, "ray": True}
    ray_stats = None
    for _ in range(args.repeat):
        seconds, seq_ids = run_sequential(streams, fx)
        seq_s = min(seq_s, seconds)
        seconds, ids = run_multi(streams, MultiStreamTracker(fx, **SETTINGS))
        multi_s, same["multi"] = min(multi_s, seconds), same["multi"] and same_ids(seq_ids, ids)
        if remote is not None:
            remote.reset()
            before = remote.stats()
            seconds, ids = run_multi(streams, remote)
            if seconds < ray_s:  # keep the actor statistics of the best run
                after = remote.stats()
                ray_stats = {key: ([a - b for a, b in zip(after[key], before[key])]
                                   if isinstance(after[key], list) and key != "streams_per_worker"
                                   else after[key]) for key in after}
                ray_stats["updates"] = after["updates"] - before["updates"]
            ray_s, same["ray"] = min(ray_s, seconds), same["ray"] and same_ids(seq_ids, ids)
    if remote is not None:
        remote.close()
        ray.shutdown()
        ray_stats["startup_s"] = startup
    rows = [("sequential (8 DeepSORTTrackers)", seq_s, True),
            ("MultiStreamTracker (1 batch/frame)", multi_s, same["multi"])]
    if remote is not None:
        rows.append((f"Ray ({args.ray_workers} tracker actors + 1 embedder)", ray_s, same["ray"]))

    print("| mode | stream-frames/s | crops/s | vs sequential | same ids |")
    print("|---|---:|---:|---:|---|")
    for name, seconds, same in rows:
        print(f"| {name} | {stream_frames / seconds:,.1f} | {crops / seconds:,.0f} | "
              f"{seq_s / seconds:.2f}x | {'yes' if same else 'NO'} |")
    print()
    print(f"gain from cross-stream batching (MultiStreamTracker / sequential): {seq_s / multi_s:.2f}x")
    if ray_stats is not None:
        updates = ray_stats["updates"]
        worker_busy = ray_stats["worker_busy_s"]
        embed_busy = sum(ray_stats["embedder_busy_s"])
        print()
        print(f"Ray: start-up (ray.init + actors, warm-up) {ray_stats['startup_s']:.1f} s, not timed above; "
              f"{updates} updates incl. {UNTIMED} untimed")
        per_worker = []
        for i, b in enumerate(worker_busy):
            n = ray_stats["streams_per_worker"][i] * updates
            per_worker.append(n / b if b > 0 else float("inf"))
            print(f"  tracker actor {i}: {ray_stats['streams_per_worker'][i]} streams, busy {b:.2f} s "
                  f"= {per_worker[-1]:,.0f} stream-frames/s")
        embed_crops = sum(ray_stats["embedder_crops"])
        crops_per_frame = embed_crops / (updates * len(streams))
        embed_rate = embed_crops / embed_busy
        print(f"  embedder actor: {embed_crops} crops, busy {embed_busy:.2f} s = {embed_rate:,.0f} crops/s "
              f"= {embed_rate / crops_per_frame:,.1f} stream-frames/s (ONNX Runtime's default threads)")
        wall_ms = ray_s / timed * 1e3
        path_ms = (max(worker_busy) + embed_busy) / updates * 1e3  # busiest tracker, then the embedder
        print(f"  per update: {wall_ms:.1f} ms wall, of which {path_ms:.1f} ms in the busiest tracker actor "
              f"plus the embedder; the other {max(wall_ms - path_ms, 0.0):.1f} ms are driver, transfers "
              "and scheduling")
        print(f"  scaling estimate: the embedder is {min(per_worker) * crops_per_frame / embed_rate:,.0f}x "
              f"slower than a tracker actor, so throughput grows with embedder actors: about "
              f"{embed_rate / crops_per_frame:,.1f} stream-frames/s per embedder (on as many cores as "
              f"it got here), one tracker actor per ~{max(1, int(min(per_worker) * crops_per_frame / embed_rate)):,} "
              "embedders, until the driver's per-update overhead above is the limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
