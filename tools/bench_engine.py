#!/usr/bin/env python
"""Per-update engine profile: the targets of issue 10 (the fused per-frame kernel).

Every timing is ``time.thread_time`` CPU time of one tracker update, on one
thread (``bench_tracker`` sets ``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS`` and
the BLAS thread counts to 1 before numpy loads); embeddings are given, no
embedder runs inside the timer. Each timing loop runs ``--repeats`` times with
a fresh tracker (after ``warmup()``); a loop's figure is the median update, the
reported one the median of those medians. Sections:

1. ``mot17``: MOT17-04-FRCNN detections (score >= 0.25, shared data) with
   512-d embeddings from the ground-truth identities plus noise, made by
   ``bench_tracker.load_mot17_04``; our tracker in gallery mode (float32 and
   float16) and ema mode, and deep-sort-realtime (nn_budget 100, the same
   settings and its one Mahalanobis gate) in the same process; then, for
   information, our default wider gate for pairs appearance also checks.
2. ``cache-cold``: the same updates (first ``--cold-frames`` frames) with one
   ONNX Runtime inference (one thread) on a batch of ``--crops`` person crops
   between consecutive updates, as in a real pipeline where the embedder runs
   between tracker calls; only the update is timed, and compared with the
   warm loop over the same frames. The model is OSNet-x0.25 from the shared
   data, else a small two-layer conv net built in-process with ``onnx``.
3. ``synthetic``: seeded walkers (``bench_tracker.synthetic_config``: about as
   many detections a frame as objects, 512-d embeddings) at 190, 380, 760,
   1425 and 2850 objects, gallery mode; median over the frames after the
   first ``--synthetic-skip``. Frames are generated between updates (untimed).
4. ``startup``: a fresh process with an empty ``NUMBA_CACHE_DIR`` times
   ``import deepsort_edge``, constructing a tracker and its first 5
   ``update_arrays`` calls (no ``warmup()``; tracks confirmed on frame 3, one
   missed on frame 4, so frame 5's cascade has two levels; embeddings given),
   then a second process with that cache; for the default (ema) and gallery modes.

It prints a markdown table per section and the targets with PASS/FAIL
(SKIP where a section did not run), and can write everything as JSON.

Usage:
    python tools/bench_engine.py                          # everything, several minutes on 2 cores
    python tools/bench_engine.py --quick                  # smoke run, under a minute (no start-up probe)
    python tools/bench_engine.py --sections mot17 synthetic --repeats 5
    python tools/bench_engine.py --json engine.json --no-progress

The shared data folder is ``$DEEPSORT_EDGE_DATA`` (default ``../shared/data``
beside the repository); without it the MOT17-04 sections are skipped and the
cache-cold section, which needs its updates, too.
"""

from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import bench_tracker as bt  # noqa: E402  (first: it sets one thread before numpy loads)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

# Targets of issue 10.
TARGET_GALLERY_MS = 0.15
TARGET_GALLERY_FLOAT16_MS = 0.10
TARGET_EMA_MS = 0.06
TARGET_GALLERY_SPEEDUP = 65.0
TARGET_EMA_SPEEDUP = 120.0
TARGET_CACHE_COLD_RATIO = 1.5
TARGET_LARGEST_MS = 15.0
TARGET_GROWTH = 20.0
TARGET_COLD_START_S = 4.0
TARGET_WARM_START_S = 0.5

SECTIONS = ("mot17", "cache-cold", "synthetic", "startup")
SYNTHETIC_SIZES = (190, 380, 760, 1425, 2850)
OSNET = Path("models") / "osnet_x0_25_msmt17.onnx"


# ----------------------------------------------------------------------------- timing
def time_updates(
    update: Callable[[Any], object],
    inputs: Iterable[Any],
    *,
    total: int,
    desc: str,
    progress: bool,
    between: Callable[[], object] | None = None,
) -> np.ndarray:
    """CPU milliseconds (``time.thread_time_ns``) of ``update(x)`` for each input; ``between()`` runs untimed first."""
    times = []
    clock = time.thread_time_ns
    for x in bt._progress(inputs, total, desc, progress):
        if between is not None:
            between()
        t0 = clock()
        update(x)
        times.append((clock() - t0) / 1e6)
    return np.array(times)


def ours_update(tracker) -> Callable[[bt.Frame], object]:
    return lambda f: tracker.update_arrays(f.xyxy, f.scores, f.embeddings)


class KernelClock:
    """CPU milliseconds spent inside the frame kernel, per call, while installed.

    Swaps ``deepsort_edge.tracking.tracker.track_frame`` for a timing wrapper (about
    0.3 us a call), so an update's time splits into the kernel's and the
    Python glue's.
    """

    def __init__(self) -> None:
        self.times_ms: list[float] = []

    def __enter__(self) -> KernelClock:
        import deepsort_edge.tracking.tracker as tracker_module

        self._module, self._kernel = tracker_module, tracker_module.track_frame
        kernel, times, clock = self._kernel, self.times_ms, time.thread_time_ns

        def timed(*args: object) -> object:
            t0 = clock()
            done = kernel(*args)
            times.append((clock() - t0) / 1e6)
            return done

        tracker_module.track_frame = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self._module.track_frame = self._kernel


class Loop:
    """Per-update times of the repeats of one timing loop."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.runs: list[np.ndarray] = []

    def add(self, times_ms: np.ndarray) -> None:
        self.runs.append(times_ms)

    def median(self, start: int = 0, stop: int | None = None) -> float:
        """Median over the repeats of each repeat's median update (frames ``start:stop``)."""
        return float(np.median([np.median(r[start:stop]) for r in self.runs]))

    def p95(self, start: int = 0) -> float:
        """Median over the repeats of each repeat's 95th-percentile update."""
        return float(np.median([np.percentile(r[start:], 95) for r in self.runs]))

    def summary(self, start: int = 0) -> dict:
        return {
            "label": self.label,
            "repeats": len(self.runs),
            "updates": int(self.runs[0].size) if self.runs else 0,
            "from_update": start + 1,
            "median_ms": self.median(start),
            "p95_ms": self.p95(start),
            "repeat_medians_ms": [float(np.median(r[start:])) for r in self.runs],
            "times_ms": [r.tolist() for r in self.runs],
        }


class Report(bt.Report):
    def skip(self, *targets: tuple[str, float, str]) -> None:
        for name, threshold, better in targets:
            self.target(name, None, threshold, better)


NAMES = {
    "gallery": "MOT17-04 gallery float32: ms per update",
    "gallery_float16": "MOT17-04 gallery float16: ms per update",
    "ema": "MOT17-04 ema: ms per update",
    "gallery_speedup": "MOT17-04 gallery: deep-sort-realtime / ours",
    "ema_speedup": "MOT17-04 ema: deep-sort-realtime / ours",
    "cold_gallery": "MOT17-04 gallery, ONNX inference between updates: cold / warm",
    "cold_ema": "MOT17-04 ema, ONNX inference between updates: cold / warm",
    "largest": "synthetic 2850 objects, gallery: ms per update",
    "growth": "synthetic gallery: ms at 2850 / ms at 190",
    "cold_start": "cold start (empty numba cache), {mode}: s",
    "warm_start": "warm start (cached), {mode}: s",
}


def mot17_frames(args: argparse.Namespace) -> list[bt.Frame] | None:
    data = bt.shared_data_dir() / bt.MOT17_04
    if not ((data / "det" / "det.txt").is_file() and (data / "gt" / "gt.txt").is_file()):
        return None
    return bt.load_mot17_04(data, min_score=0.25, embedding_noise=args.embedding_noise, seed=args.seed,
                            max_frames=args.mot_frames)


# ----------------------------------------------------------------------------- sections
def section_mot17(report: Report, args: argparse.Namespace, frames: list[bt.Frame] | None, progress: bool) -> None:
    from deepsort_edge.tracking.settings import TrackerSettings as TrackerDefaults

    emit = report.emit
    if frames is None:
        emit(f"## MOT17-04: skipped, shared data not found under {bt.shared_data_dir()} (set DEEPSORT_EDGE_DATA)")
        emit()
        report.skip((NAMES["gallery"], TARGET_GALLERY_MS, "lower"), (NAMES["ema"], TARGET_EMA_MS, "lower"),
                    (NAMES["gallery_speedup"], TARGET_GALLERY_SPEEDUP, "higher"),
                    (NAMES["ema_speedup"], TARGET_EMA_SPEEDUP, "higher"),
                    (NAMES["gallery_float16"], TARGET_GALLERY_FLOAT16_MS, "lower"))
        return
    settings = bt.TrackerSettings()
    variants: dict[str, tuple[str, dict]] = {
        "gallery": ("gallery", {}), "ema": ("ema", {}), "gallery_float16": ("gallery", {"gallery_dtype": "float16"}),
    }
    # Our default gate for pairs appearance also checks is wider than deep-sort-realtime's (issue 8):
    # more candidate pairs, so more gallery reads. Informational rows, not the targets.
    wide = {"appearance_gate_scale": TrackerDefaults().appearance_gate_scale}
    variants["gallery_default_gate"] = ("gallery", wide)
    variants["ema_default_gate"] = ("ema", wide)
    labels = {"gallery_default_gate": f"deepsort-edge gallery, appearance_gate_scale={wide['appearance_gate_scale']:g}",
              "ema_default_gate": f"deepsort-edge ema, appearance_gate_scale={wide['appearance_gate_scale']:g}"}
    # Issue 18's appearance_adaptation (off by default): what it adds to that update (informational).
    variants["ema_adaptation"] = ("ema", {**wide, "appearance_adaptation": "projection"})
    labels["ema_adaptation"] = f"{labels['ema_default_gate']}, appearance_adaptation=projection"
    loops = {key: Loop(labels.get(key, f"deepsort-edge {key.replace('_', ' ')}")) for key in variants}
    loops["dsr"] = Loop(f"deep-sort-realtime nn_budget={settings.nn_budget}")
    dsr_args = [(*bt.dsr_inputs(f), f.embeddings) for f in frames]
    n = len(frames)
    for rep in range(args.repeats):
        tag = f"{rep + 1}/{args.repeats}"
        for key, (mode, extra) in variants.items():
            tracker = bt.make_ours(mode, settings, **extra).warmup()
            loops[key].add(time_updates(ours_update(tracker), frames, total=n, desc=f"{key} {tag}",
                                        progress=progress))
        dsr = bt.make_dsr(settings)
        loops["dsr"].add(time_updates(lambda a: dsr.update_tracks(a[0], embeds=a[2], others=a[1]), dsr_args,
                                      total=n, desc=f"deep-sort-realtime {tag}", progress=progress))
    report.results["mot17_04"] = {k: v.summary() for k, v in loops.items()}
    dets = np.mean([f.xyxy.shape[0] for f in frames])
    emit(f"## MOT17-04-FRCNN ({n} frames, {dets:.1f} detections a frame, 512-d embeddings), "
         f"CPU ms per update, median of {args.repeats} repeats' medians")
    emit()
    emit("| tracker | median ms | p95 ms | deep-sort-realtime / this |")
    emit("|---|---:|---:|---:|")
    dsr_ms = loops["dsr"].median()
    for key, loop in loops.items():
        emit(f"| {loop.label} | {loop.median():.4f} | {loop.p95():.4f} | {dsr_ms / loop.median():.1f}x |")
    emit()
    report.target(NAMES["gallery"], loops["gallery"].median(), TARGET_GALLERY_MS, "lower")
    report.target(NAMES["gallery_float16"], loops["gallery_float16"].median(), TARGET_GALLERY_FLOAT16_MS, "lower")
    report.target(NAMES["ema"], loops["ema"].median(), TARGET_EMA_MS, "lower")
    report.target(NAMES["gallery_speedup"], dsr_ms / loops["gallery"].median(), TARGET_GALLERY_SPEEDUP, "higher")
    report.target(NAMES["ema_speedup"], dsr_ms / loops["ema"].median(), TARGET_EMA_SPEEDUP, "higher")


def inference_session(crops: int, seed: int) -> tuple[Callable[[], object], str] | None:
    """One-thread ONNX Runtime inference on ``crops`` person crops, and what model it is."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model = bt.shared_data_dir() / OSNET
    if model.is_file():
        source: str | bytes = str(model)
        name = f"OSNet-x0.25 (shared data), {crops} crops 256x128"
        shape = (crops, 3, 256, 128)
    else:
        try:
            source = _small_conv_model()
        except ImportError:
            return None
        name = f"in-process 2-layer conv net (no OSNet in the shared data), {crops} crops 128x64"
        shape = (crops, 3, 128, 64)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(seed).random(shape, dtype=np.float32)}
    return (lambda: session.run(None, feed)), name


def _small_conv_model() -> bytes:
    """Conv 3->16, ReLU, conv 16->32 (3x3), global average pool: a stand-in embedder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["features"]),
    ]
    graph = helper.make_graph(
        nodes, "stand_in_embedder",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 128, 64])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 32, 1, 1])],
        initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def section_cache_cold(report: Report, args: argparse.Namespace, frames: list[bt.Frame] | None,
                       progress: bool) -> None:
    emit = report.emit
    targets = ((NAMES["cold_gallery"], TARGET_CACHE_COLD_RATIO, "lower"),
               (NAMES["cold_ema"], TARGET_CACHE_COLD_RATIO, "lower"))
    if frames is None:
        emit("## Cache-cold loop: skipped, it replays MOT17-04 and the shared data is not there")
        emit()
        report.skip(*targets)
        return
    inference = inference_session(args.crops, args.seed)
    if inference is None:
        emit("## Cache-cold loop: skipped, no OSNet model in the shared data and no `onnx` to build one")
        emit()
        report.skip(*targets)
        return
    infer, model_name = inference
    subset = frames[: args.cold_frames]
    n = len(subset)
    settings = bt.TrackerSettings()
    loops = {(mode, kind): Loop(f"{mode} {kind}") for mode in ("gallery", "ema") for kind in ("warm", "cold")}
    kernels = {key: Loop(f"{loop.label} kernel") for key, loop in loops.items()}
    infer_ms = []
    for rep in range(args.repeats):
        for mode in ("gallery", "ema"):
            for kind in ("warm", "cold"):
                tracker = bt.make_ours(mode, settings).warmup()
                between = infer if kind == "cold" else None
                with KernelClock() as kernel:
                    loops[mode, kind].add(time_updates(ours_update(tracker), subset, total=n, between=between,
                                                       desc=f"{mode} {kind} {rep + 1}/{args.repeats}",
                                                       progress=progress))
                kernels[mode, kind].add(np.array(kernel.times_ms))
        t0 = time.thread_time_ns()
        infer()
        infer_ms.append((time.thread_time_ns() - t0) / 1e6)
    report.results["cache_cold"] = {
        "model": model_name, "frames": n, "inference_ms": float(np.median(infer_ms)),
        **{f"{mode}_{kind}": loop.summary() for (mode, kind), loop in loops.items()},
        **{f"{mode}_{kind}_kernel": loop.summary() for (mode, kind), loop in kernels.items()},
    }
    emit(f"## Cache-cold loop: MOT17-04, first {n} frames, one ONNX Runtime inference between updates "
         f"({model_name}, {np.median(infer_ms):.1f} ms CPU each), CPU ms per update")
    emit()
    emit("Kernel: the time inside the one compiled call; glue: the rest of `update_arrays` (Python, "
         "numpy and Numba's dispatch).")
    emit()
    emit("| mode | warm median ms | cold median ms | cold / warm | cold p95 ms | kernel warm / cold ms "
         "| glue warm / cold ms |")
    emit("|---|---:|---:|---:|---:|---:|---:|")
    for mode in ("gallery", "ema"):
        warm, cold = loops[mode, "warm"], loops[mode, "cold"]
        k_warm, k_cold = kernels[mode, "warm"].median(), kernels[mode, "cold"].median()
        ratio = cold.median() / warm.median()
        emit(f"| {mode} | {warm.median():.4f} | {cold.median():.4f} | {ratio:.2f} | {cold.p95():.4f} "
             f"| {k_warm:.4f} / {k_cold:.4f} | {warm.median() - k_warm:.4f} / {cold.median() - k_cold:.4f} |")
        report.target(NAMES[f"cold_{mode}"], ratio, TARGET_CACHE_COLD_RATIO, "lower")
    emit()


def streaming_rate_gb_s(nbytes: int = 512 * 2**20, repeats: int = 3) -> float:
    """One thread's best rate of reading memory: a compiled sum over ``nbytes`` of float32, GB/s."""
    import numba

    @numba.njit(fastmath=True)
    def total(a: np.ndarray) -> float:
        s = np.float32(0.0)
        for i in range(a.shape[0]):
            s += a[i]
        return s

    data = np.ones(nbytes // 4, np.float32)
    total(data[:16])
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        total(data)
        best = min(best, time.perf_counter() - t0)
    return data.nbytes / best / 1e9


def section_synthetic(report: Report, args: argparse.Namespace, progress: bool) -> None:
    emit = report.emit
    settings = bt.TrackerSettings()
    rate = streaming_rate_gb_s()
    total, skip = args.synthetic_frames, min(args.synthetic_skip, max(args.synthetic_frames - 1, 0))
    rows = {}
    for size in args.synthetic_sizes:
        cfg = bt.synthetic_config(size, seed=args.seed + size, turnover=0.002, embedding_noise=args.embedding_noise)
        loop = Loop(f"gallery {size}")
        dets = 0
        for rep in range(args.repeats):
            tracker = bt.make_ours("gallery", settings).warmup()
            frames = bt.synthetic_frames(cfg, total)
            counted = []

            def update(f: bt.Frame, tracker=tracker, counted=counted) -> None:
                tracker.update_arrays(f.xyxy, f.scores, f.embeddings)
                counted.append(f.xyxy.shape[0])

            loop.add(time_updates(update, frames, total=total, desc=f"synthetic {size} {rep + 1}/{args.repeats}",
                                  progress=progress))
            dets = float(np.mean(counted))
        # Bytes of every live gallery entry at the end: what reading each gallery once costs.
        gallery_mb = sum(t.gallery_size for t in tracker.tracks) * cfg.embedding_dim * 4 / 1e6
        rows[size] = {**loop.summary(skip), "detections_per_frame": dets, "gallery_mb": gallery_mb,
                      "read_floor_ms": gallery_mb / rate}
    report.results["synthetic"] = {"frames": total, "skipped_frames": skip, "sizes": rows,
                                   "streaming_gb_s": rate}
    emit(f"## Synthetic walkers, gallery mode (nn_budget 100, 512-d), {total} frames, CPU ms per update "
         f"(median over frames {skip + 1}-{total}, median of {args.repeats} repeats)")
    emit()
    emit(f"Galleries: the float32 entries of the live tracks after the last frame; read floor: the time "
         f"to read them once at this core's one-thread streaming rate ({rate:.1f} GB/s, a compiled sum "
         f"over 512 MiB), which reading every gallery in full cannot beat.")
    emit()
    emit("| objects | detections a frame | median ms | p95 ms | ms / detection (us) | galleries MB "
         "| read floor ms |")
    emit("|---:|---:|---:|---:|---:|---:|---:|")
    for size, r in rows.items():
        emit(f"| {size} | {r['detections_per_frame']:.0f} | {r['median_ms']:.3f} | {r['p95_ms']:.3f} "
             f"| {1e3 * r['median_ms'] / max(r['detections_per_frame'], 1):.2f} | {r['gallery_mb']:.0f} "
             f"| {r['read_floor_ms']:.2f} |")
    emit()
    largest, smallest = max(SYNTHETIC_SIZES), min(SYNTHETIC_SIZES)
    value = rows[largest]["median_ms"] if largest in rows else None
    growth = value / rows[smallest]["median_ms"] if value is not None and smallest in rows else None
    report.results["synthetic"]["growth"] = growth
    report.target(NAMES["largest"], value, TARGET_LARGEST_MS, "lower")
    report.target(NAMES["growth"], growth, TARGET_GROWTH, "lower")


_STARTUP_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import deepsort_edge
from deepsort_edge import DeepSORTTracker
t1 = time.perf_counter()
import numpy as np
rng = np.random.default_rng(0)
boxes = np.array([[100., 100., 140., 200.], [300., 120., 340., 220.], [600., 300., 650., 420.]])
emb = rng.standard_normal((3, 512)).astype(np.float32)
scores = np.array([0.9, 0.8, 0.95])
t2 = time.perf_counter()
tracker = DeepSORTTracker(appearance_mode=sys.argv[1])
# Confirmed on frame 3 (3 hits); the second person is missed on frame 4, so on
# frame 5 the cascade runs with tracks 1 and 2 frames old.
keep = [np.arange(3)] * 3 + [np.array([0, 2]), np.arange(3)]
for step, rows in enumerate(keep):
    ids = tracker.update_arrays(boxes[rows] + 2.0 * step, scores[rows], emb[rows])
t3 = time.perf_counter()
assert (ids > 0).all(), ids
print(json.dumps({"import_s": t1 - t0, "construct_and_5_updates_s": t3 - t2, "total_s": t3 - t0}))
"""


# Numba's own floor: import numba and call one trivial cached kernel (the same fields as above).
_FLOOR_PROBE = r"""
import json, time
t0 = time.perf_counter()
import numba
import numpy as np
t1 = time.perf_counter()

@numba.njit(cache=True)
def total(a):
    return a.sum()

total(np.ones(3))
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "construct_and_5_updates_s": t2 - t1, "total_s": t2 - t0}))
"""


def startup_probe(source: str, *argv: str) -> dict:
    """Cold (empty NUMBA_CACHE_DIR) and then warm start-up of a fresh process running ``source``."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        script = Path(cache) / "startup_probe.py"  # a file: numba caches only functions defined in one
        script.write_text(source)
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(bt.REPO_ROOT), env.get("PYTHONPATH")]))
        for name in ("cold", "warm"):
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, str(script), *argv], env=env, capture_output=True,
                                  text=True, check=False)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"start-up probe ({' '.join(argv) or 'numba'}, {name}) failed:\n{proc.stderr}")
            results[name] = {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_wall_s": wall}
    return results


def section_startup(report: Report, args: argparse.Namespace, progress: bool) -> None:
    emit = report.emit
    modes = ("ema", "gallery")
    probes = {mode: (_STARTUP_PROBE, mode) for mode in modes}
    probes["numba alone"] = (_FLOOR_PROBE,)
    startup = {key: startup_probe(*probe) for key, probe in bt._progress(probes.items(), len(probes), "start-up",
                                                                         progress)}
    report.results["startup"] = startup
    emit("## Start-up: fresh process, import + construct + first 5 updates (cascade with 2 levels), "
         "no warmup(); wall s")
    emit()
    emit("`numba alone`: import numba and numpy, then call one trivial cached kernel (`a.sum()`), the "
         "floor any Numba package starts from.")
    emit()
    emit("| mode | numba cache | import s | construct + 5 updates (numba alone: first call) s | total s "
         "| process wall s |")
    emit("|---|---|---:|---:|---:|---:|")
    for mode, runs in startup.items():
        for name, s in runs.items():
            emit(f"| {mode} | {name} | {s['import_s']:.3f} | {s['construct_and_5_updates_s']:.3f} "
                 f"| {s['total_s']:.3f} | {s['process_wall_s']:.2f} |")
        if mode in modes:
            report.target(NAMES["cold_start"].format(mode=mode), runs["cold"]["total_s"], TARGET_COLD_START_S,
                          "lower")
            report.target(NAMES["warm_start"].format(mode=mode), runs["warm"]["total_s"], TARGET_WARM_START_S,
                          "lower")
    emit()


# ----------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=None,
                   help="what to run (default all; with --quick all but startup)")
    p.add_argument("--quick", action="store_true", help="smoke run: few frames, one repeat, small scenes")
    p.add_argument("--repeats", type=int, default=3, help="runs of each timing loop (default 3)")
    p.add_argument("--json", type=Path, help="also write every number to this JSON file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embedding-noise", type=float, default=0.5,
                   help="norm of the noise on identity embeddings (default 0.5, as bench_tracker)")
    p.add_argument("--mot-frames", type=int, default=None, help="first frames of MOT17-04 only (default all 1050)")
    p.add_argument("--cold-frames", type=int, default=300,
                   help="MOT17-04 frames of the cache-cold loop (default 300: each waits for an inference)")
    p.add_argument("--crops", type=int, default=2, help="person crops per inference in the cache-cold loop")
    p.add_argument("--synthetic-sizes", type=int, nargs="+", default=list(SYNTHETIC_SIZES))
    p.add_argument("--synthetic-frames", type=int, default=120,
                   help="frames per synthetic scene (default 120: galleries fill at 100)")
    p.add_argument("--synthetic-skip", type=int, default=10, help="first frames left out of the synthetic medians")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars on stderr")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.sections is None:
        args.sections = [s for s in SECTIONS if not (args.quick and s == "startup")]
    if args.quick:
        args.repeats = 1
        args.mot_frames = 60
        args.cold_frames = 30
        args.synthetic_sizes = [190, 380]
        args.synthetic_frames = 15
        args.synthetic_skip = 3
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    progress = not args.no_progress
    started = time.perf_counter()
    report = Report()
    info = bt.machine_info()
    report.results.update(machine=info, quick=args.quick, sections=args.sections, repeats=args.repeats)
    emit = report.emit
    emit("# deepsort-edge engine profile (issue 10)" + (" (--quick smoke run: numbers are not meaningful)"
                                                        if args.quick else ""))
    emit()
    emit(f"- CPU: {info['cpu']} ({info['usable_cpus']} usable); Python {info['python']}, numpy {info['numpy']}, "
         f"numba {info['numba']}, deep-sort-realtime {info['deep_sort_realtime']}, "
         f"deepsort-edge {info['deepsort_edge']} from {bt.REPO_ROOT}")
    emit("- CPU time (`time.thread_time`) per update, one thread (" + ", ".join(f"{k}=1" for k in bt.THREAD_VARIABLES)
         + "); tracker settings as bench_tracker: max_age 30, n_init 3, IoU >= 0.3, cosine <= 0.7, nn_budget 100")
    emit()
    frames = mot17_frames(args) if {"mot17", "cache-cold"} & set(args.sections) else None
    if "mot17" in args.sections:
        section_mot17(report, args, frames, progress)
    if "cache-cold" in args.sections:
        section_cache_cold(report, args, frames, progress)
    if "synthetic" in args.sections:
        section_synthetic(report, args, progress)
    if "startup" in args.sections:
        section_startup(report, args, progress)

    report.finish("Targets (issue 10)", started, args.json, digits=4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
