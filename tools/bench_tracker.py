#!/usr/bin/env python
"""Tracker-only benchmark: deepsort-edge against deep-sort-realtime.

Times one tracker update per frame with the appearance embeddings given (no
embedder runs), one thread, the same detections, embeddings and settings for
both trackers:

- MOT17-04-FRCNN public-benchmark detections (about 27 a frame) from the
  shared data, with 512-d embeddings made from the ground truth: each
  detection gets the fixed identity vector of its best-IoU ground-truth box
  (IoU >= 0.5) plus noise, a random vector when nothing matches;
- seeded synthetic scenes with about 10, 50, 200 and 1000 detections a frame;
- a long synthetic run with objects entering and leaving (default 10,050
  frames), comparing per-frame time near frame 500 with the end;
- first-call JIT compile time (fresh process, empty ``NUMBA_CACHE_DIR``)
  and cached start-up time (second process, same cache);
- a plain numpy matmul of full galleries (45 tracks x 100 x 512 against 45
  detections) as the floor for gallery mode.

It prints markdown tables with PASS/FAIL against the targets of issue 2 and
can write everything as JSON.

Usage:
    python tools/bench_tracker.py                 # full run, about 4-5 minutes on 2 cores
    python tools/bench_tracker.py --quick         # smoke run, well under a minute
    python tools/bench_tracker.py --json bench.json

The shared data folder is ``$DEEPSORT_EDGE_DATA`` (default ``../shared/data``
beside the repository); without it the MOT17 part is skipped.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy/numba load their thread pools.
THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
if os.environ.get("BENCH_TRACKER_DEFAULT_THREADS") != "1":  # set only by this script's own probe
    for _name in THREAD_VARIABLES:
        os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from deepsort_edge.tracking.boxes import iou_matrix  # noqa: E402
from deepsort_edge.demo.synthetic import SceneConfig, iter_scene  # noqa: E402

MOT17_04 = Path("MOT17") / "train" / "MOT17-04-FRCNN"
EMBEDDING_DIM = 512

# Targets of issue 2.
TARGET_GALLERY_SPEEDUP = 15.0
TARGET_GALLERY_VS_MATMUL = 1.5
TARGET_EMA_SPEEDUP = 50.0
TARGET_EMA_MS_AT_200 = 5.0
TARGET_LONG_RUN_RATIO = 1.2


# ----------------------------------------------------------------------------- data
@dataclass
class Frame:
    """One frame of tracker input; ``gt`` is the true object of each detection (-1: none)."""

    xyxy: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray
    gt: np.ndarray


@dataclass
class TrackerSettings:
    """Settings shared by both trackers (deep-sort-realtime names in comments)."""

    max_age: int = 30  # max_age; ours: lost_track_buffer at frame_rate 30
    n_init: int = 3  # n_init; ours: minimum_consecutive_frames
    min_iou: float = 0.3  # max_iou_distance = 1 - min_iou
    appearance_threshold: float = 0.7  # max_cosine_distance
    nn_budget: int | None = 100


def shared_data_dir() -> Path:
    return Path(os.environ.get("DEEPSORT_EDGE_DATA", REPO_ROOT.parent / "shared" / "data"))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def load_mot17_04(
    root: Path, *, min_score: float, embedding_noise: float, seed: int, max_frames: int | None
) -> list[Frame]:
    """MOT17-04 detections with ground-truth-derived embeddings (see the module docstring)."""
    det = np.loadtxt(root / "det" / "det.txt", delimiter=",", ndmin=2)
    gt = np.loadtxt(root / "gt" / "gt.txt", delimiter=",", ndmin=2)
    det = det[det[:, 6] >= min_score]
    gt = gt[gt[:, 6] > 0]  # "consider" flag: people the benchmark scores
    num_frames = int(det[:, 0].max())
    if max_frames is not None:
        num_frames = min(num_frames, max_frames)
    rng = np.random.default_rng(seed)
    gt_ids = np.unique(gt[:, 1]).astype(np.int64)
    identity = _unit_rows(rng.standard_normal((gt_ids.size, EMBEDDING_DIM)))
    identity_row = {int(g): k for k, g in enumerate(gt_ids)}
    det_by_frame = _split_by_frame(det, num_frames)
    gt_by_frame = _split_by_frame(gt, num_frames)
    frames = []
    for d, g in zip(det_by_frame, gt_by_frame):
        xyxy = np.concatenate([d[:, 2:4], d[:, 2:4] + d[:, 4:6]], axis=1)
        gt_xyxy = np.concatenate([g[:, 2:4], g[:, 2:4] + g[:, 4:6]], axis=1)
        match = np.full(len(d), -1, dtype=np.int64)
        if len(d) and len(g):
            iou = iou_matrix(xyxy, gt_xyxy)
            best = iou.argmax(axis=1)
            ok = iou[np.arange(len(d)), best] >= 0.5
            match[ok] = g[best[ok], 1].astype(np.int64)
        base = rng.standard_normal((len(d), EMBEDDING_DIM))
        for k in np.flatnonzero(match >= 0):
            base[k] = identity[identity_row[int(match[k])]]
        base = _unit_rows(base)
        noisy = base + rng.standard_normal(base.shape) * (embedding_noise / np.sqrt(EMBEDDING_DIM))
        frames.append(
            Frame(
                xyxy=np.ascontiguousarray(xyxy, dtype=np.float64),
                scores=d[:, 6].astype(np.float32),
                embeddings=np.ascontiguousarray(_unit_rows(noisy), dtype=np.float32),
                gt=match,
            )
        )
    return frames


def _split_by_frame(rows: np.ndarray, num_frames: int) -> list[np.ndarray]:
    rows = rows[rows[:, 0] <= num_frames]
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    bounds = np.searchsorted(rows[:, 0], np.arange(1, num_frames + 2))
    return [rows[bounds[i] : bounds[i + 1]] for i in range(num_frames)]


def synthetic_config(num_objects: int, *, seed: int, turnover: float, embedding_noise: float) -> SceneConfig:
    """The scene used for speed runs: about ``num_objects`` detections a frame."""
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
    for f in iter_scene(cfg, num_frames):
        yield Frame(f.xyxy, f.scores, f.embeddings, f.det_gt_ids)


# ----------------------------------------------------------------------------- runs
@dataclass
class RunResult:
    """Per-frame update times of one tracker on one input, and sanity counts."""

    label: str
    times_ms: np.ndarray
    detections: int = 0
    true_detections: int = 0
    tracked_true: int = 0
    id_switches: int = 0
    distinct_ids: int = 0
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.times_ms.size)

    def median(self, start: int = 0, stop: int | None = None) -> float:
        return float(np.median(self.times_ms[start:stop]))

    def p95(self) -> float:
        return float(np.percentile(self.times_ms, 95))

    def summary(self) -> dict:
        return {
            "label": self.label,
            "frames": self.frames,
            "median_ms": self.median(),
            "p95_ms": self.p95(),
            "mean_ms": float(self.times_ms.mean()),
            "detections_per_frame": self.detections / max(self.frames, 1),
            "coverage": self.tracked_true / max(self.true_detections, 1),
            "id_switches": self.id_switches,
            "distinct_ids": self.distinct_ids,
            "note": self.note,
            **self.extra,
        }


class _IdStats:
    """Coverage (true detections with an id) and id switches per true object."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.ids: set[int] = set()
        self.detections = self.true = self.tracked = self.switches = 0

    def add(self, gt: np.ndarray, ids: np.ndarray) -> None:
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

    def fill(self, result: RunResult) -> RunResult:
        result.detections = self.detections
        result.true_detections = self.true
        result.tracked_true = self.tracked
        result.id_switches = self.switches
        result.distinct_ids = len(self.ids)
        return result


def _progress(iterable: Iterable, total: int | None, desc: str, enabled: bool) -> Iterable:
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, leave=False, mininterval=0.5)


def make_ours(mode: str, settings: TrackerSettings, **extra: object):
    """Our tracker with ``settings``; ``extra`` are further DeepSORTTracker settings.

    The Mahalanobis gate is deep-sort-realtime's one gate for every pair
    (``appearance_gate_scale=1``) and its IoU stage takes only tracks missed
    for one frame (``iou_recovery_frames=1``) unless ``extra`` says otherwise,
    so both trackers compare the same candidate pairs.
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


def run_ours(
    label: str,
    frames: Iterable[Frame],
    total: int,
    *,
    mode: str,
    settings: TrackerSettings,
    api: str = "arrays",
    budget_s: float | None = None,
    progress: bool = True,
) -> RunResult:
    """Time ``update_arrays`` (or ``update`` with ``sv.Detections``) per frame."""
    tracker = make_ours(mode, settings)
    tracker.warmup()
    if api == "detections":
        import supervision as sv
    stats = _IdStats()
    times = []
    started = time.perf_counter()
    for f in _progress(frames, total, label, progress):
        if api == "detections":
            dets = sv.Detections(xyxy=f.xyxy, confidence=f.scores, data={"embeddings": f.embeddings})
            t0 = time.perf_counter_ns()
            ids = tracker.update(dets).tracker_id
            t1 = time.perf_counter_ns()
        else:
            t0 = time.perf_counter_ns()
            ids = tracker.update_arrays(f.xyxy, f.scores, f.embeddings)
            t1 = time.perf_counter_ns()
        times.append((t1 - t0) / 1e6)
        stats.add(f.gt, np.asarray(ids))
        if budget_s is not None and time.perf_counter() - started > budget_s:
            break
    return stats.fill(RunResult(label, np.array(times)))


def make_dsr(settings: TrackerSettings):
    """deep-sort-realtime's DeepSort with ``settings`` and no embedder (embeddings are given)."""
    from deep_sort_realtime.deepsort_tracker import DeepSort

    return DeepSort(
        max_iou_distance=1.0 - settings.min_iou,
        max_age=settings.max_age,
        n_init=settings.n_init,
        max_cosine_distance=settings.appearance_threshold,
        nn_budget=settings.nn_budget,
        embedder=None,  # embeddings are given: no model is loaded
    )


def dsr_inputs(f: Frame) -> tuple[list, list[int]]:
    """``update_tracks`` arguments for one frame: ``([(tlwh, score, class)], others)``.

    ``others`` carries each detection's row so ids can be mapped back.
    """
    tlwh = np.concatenate([f.xyxy[:, :2], f.xyxy[:, 2:] - f.xyxy[:, :2]], axis=1)
    raw = [(box, float(score), "person") for box, score in zip(tlwh.tolist(), f.scores.tolist())]
    return raw, list(range(len(raw)))


def run_dsr(
    label: str,
    frames: Iterable[Frame],
    total: int,
    *,
    settings: TrackerSettings,
    budget_s: float | None = None,
    progress: bool = True,
) -> RunResult:
    """Time deep-sort-realtime's ``update_tracks`` per frame (inputs built outside the timer)."""
    tracker = make_dsr(settings)
    stats = _IdStats()
    times = []
    started = time.perf_counter()
    for f in _progress(frames, total, label, progress):
        raw, others = dsr_inputs(f)
        t0 = time.perf_counter_ns()
        tracks = tracker.update_tracks(raw, embeds=f.embeddings, others=others)
        t1 = time.perf_counter_ns()
        times.append((t1 - t0) / 1e6)
        ids = np.full(len(raw), -1, dtype=np.int64)
        for track in tracks:
            if track.is_confirmed() and track.time_since_update == 0 and track.others is not None:
                ids[track.others] = int(track.track_id)
        stats.add(f.gt, ids)
        if budget_s is not None and time.perf_counter() - started > budget_s:
            break
    return stats.fill(RunResult(label, np.array(times)))


def matmul_baseline(repeats: int, seed: int) -> RunResult:
    """Full-gallery cosine matmul: (45 tracks x 100, 512) @ (512, 45), float32."""
    rng = np.random.default_rng(seed)
    gallery = _unit_rows(rng.standard_normal((45 * 100, EMBEDDING_DIM))).astype(np.float32)
    dets = _unit_rows(rng.standard_normal((45, EMBEDDING_DIM))).astype(np.float32)
    times = []
    for _ in range(repeats + 10):
        t0 = time.perf_counter_ns()
        gallery @ dets.T
        t1 = time.perf_counter_ns()
        times.append((t1 - t0) / 1e6)
    return RunResult("numpy matmul (45x100, 512) @ (512, 45) float32", np.array(times[10:]))


_MATMUL_PROBE = r"""
import json, time
import numpy as np
rng = np.random.default_rng(0)
g = rng.standard_normal((4500, 512)).astype(np.float32)
d = rng.standard_normal((45, 512)).astype(np.float32)
times = []
for _ in range(310):
    t0 = time.perf_counter_ns(); g @ d.T; times.append((time.perf_counter_ns() - t0) / 1e6)
print(json.dumps(float(np.median(times[10:]))))
"""


def matmul_default_threads() -> float | None:
    """The same matmul in a process with numpy's default thread count (as in issue 2's 1.6 ms)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    proc = subprocess.run([sys.executable, "-c", _MATMUL_PROBE], env=env, capture_output=True, text=True, check=False)
    return float(proc.stdout.strip()) if proc.returncode == 0 else None


_DSR_THREADS_PROBE = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import bench_tracker as b
frames = b.load_mot17_04(Path(sys.argv[2]), min_score=0.25, embedding_noise=float(sys.argv[3]),
                         seed=int(sys.argv[4]), max_frames=int(sys.argv[5]) or None)
r = b.run_dsr("dsr", frames, len(frames), settings=b.TrackerSettings(), progress=False)
print(json.dumps({"median_ms": r.median(), "p95_ms": r.p95(), "frames": r.frames}))
"""


def dsr_default_threads(data: Path, embedding_noise: float, seed: int, max_frames: int | None) -> dict | None:
    """deep-sort-realtime on MOT17-04 in a process with numpy's default threads (issue 2's 24 ms setup)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["BENCH_TRACKER_DEFAULT_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _DSR_THREADS_PROBE, str(Path(__file__).resolve().parent), str(data),
         str(embedding_noise), str(seed), str(max_frames or 0)],
        env=env, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        print(f"deep-sort-realtime default-threads probe failed:\n{proc.stderr}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


_STARTUP_PROBE = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from deepsort_edge import DeepSORTTracker
t1 = time.perf_counter()
out = {"import_s": t1 - t0}
rng = np.random.default_rng(0)
boxes = np.array([[100., 100., 140., 200.], [300., 120., 340., 220.], [600., 300., 650., 420.]])
emb = rng.standard_normal((3, 512)).astype(np.float32)
for mode in ("gallery", "ema"):
    tracker = DeepSORTTracker(appearance_mode=mode, minimum_consecutive_frames=1)
    t2 = time.perf_counter()
    tracker.warmup()
    t3 = time.perf_counter()
    tracker.update_arrays(boxes, np.full(3, 0.9), emb)
    tracker.update_arrays(boxes + 2.0, np.full(3, 0.9), emb)
    t4 = time.perf_counter()
    out[mode + "_warmup_s"] = t3 - t2
    out[mode + "_first_two_updates_s"] = t4 - t3
out["total_s"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def startup_times() -> dict:
    """Import + warmup in a fresh process: cold (empty numba cache), then cached."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        for name in ("cold", "cached"):
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", _STARTUP_PROBE], env=env, capture_output=True, text=True, check=False
            )
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"start-up probe ({name}) failed:\n{proc.stderr}")
            results[name] = {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_wall_s": wall}
    return results


# ----------------------------------------------------------------------------- report
def machine_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    import numba

    from deepsort_edge import __version__

    return {
        "cpu": cpu or "unknown",
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "scipy": version("scipy"),
        "deep_sort_realtime": version("deep-sort-realtime"),
        "deepsort_edge": __version__,
        "threads": {name: os.environ[name] for name in THREAD_VARIABLES},
    }


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def _run_row(r: RunResult, reference: RunResult | None) -> str:
    s = r.summary()
    speedup = _fmt(reference.median() / r.median(), 1) + "x" if reference is not None else ""
    return (
        f"| {r.label} | {r.frames} | {_fmt(s['detections_per_frame'], 1)} | {_fmt(s['median_ms'], 3)} "
        f"| {_fmt(s['p95_ms'], 3)} | {_fmt(s['mean_ms'], 3)} | {speedup} | {_fmt(s['coverage'], 3)} "
        f"| {r.id_switches} | {r.distinct_ids} |"
    )


RUN_HEADER = (
    "| run | frames | dets/frame | median ms | p95 ms | mean ms | DSR(100) / this | coverage | ID sw | ids |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _target(name: str, value: float | None, threshold: float, better: str) -> dict:
    if value is None or not np.isfinite(value):
        status = "SKIP"
    elif better == "higher":
        status = "PASS" if value >= threshold else "FAIL"
    else:
        status = "PASS" if value <= threshold else "FAIL"
    sign = ">=" if better == "higher" else "<="
    return {"target": name, "value": value, "threshold": f"{sign} {threshold}", "status": status}


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short smoke run (few frames, no compile-time probe)")
    p.add_argument("--json", type=Path, help="also write every number to this JSON file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embedding-noise", type=float, default=0.5,
                   help="norm of the noise added to identity embeddings (default 0.5: cosine ~0.8 within an object)")
    p.add_argument("--synthetic-sizes", type=int, nargs="+", default=[10, 50, 200, 1000])
    p.add_argument("--synthetic-frames", type=int, default=300)
    p.add_argument("--run-budget-s", type=float, default=60.0,
                   help="stop a single synthetic timing loop after this many seconds (default 60)")
    p.add_argument("--long-frames", type=int, default=10_050)
    p.add_argument("--long-objects", type=int, default=50)
    p.add_argument("--long-repeats", type=int, default=3,
                   help="runs of the long scene per mode; each window keeps its best median (default 3)")
    p.add_argument("--dsr-unbounded-frames", type=int, default=300,
                   help="frames of MOT17-04 for deep-sort-realtime's default unbounded gallery (0: skip)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved repeats of the MOT17-04 runs; the best median of each is kept (default 3)")
    p.add_argument("--dsr-default-threads", action="store_true",
                   help="also time deep-sort-realtime on MOT17-04 in a process with numpy's default thread count "
                        "(how issue 2's 24 ms was measured); informational, not used for the targets")
    p.add_argument("--skip-startup", action="store_true", help="skip the cold/cached start-up probe")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.synthetic_sizes = [10, 50, 200]
        args.synthetic_frames = 20
        args.long_frames = 700
        args.long_repeats = 1
        args.dsr_unbounded_frames = 30
        args.skip_startup = True
        args.repeats = 1
    args.mot_frames = 60 if args.quick else None
    return args


class Report:
    """Markdown lines (printed as they come), the JSON results and the target checks."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.results: dict = {}
        self.targets: list[dict] = []

    def emit(self, line: str = "") -> None:
        self.lines.append(line)
        print(line, flush=True)

    def target(self, name: str, value: float | None, threshold: float, better: str) -> None:
        self.targets.append(_target(name, value, threshold, better))

    def finish(self, title: str, started: float, json_path: Path | None, digits: int = 2) -> None:
        """Print the targets table and the total time; write every number as JSON if asked."""
        self.emit(f"## {title}")
        self.emit()
        self.emit("| target | value | threshold | result |")
        self.emit("|---|---:|---:|---|")
        for t in self.targets:
            self.emit(f"| {t['target']} | {_fmt(t['value'], digits)} | {t['threshold']} | {t['status']} |")
        self.emit()
        elapsed = time.perf_counter() - started
        self.emit(f"Total time {elapsed:.0f} s.")
        self.results.update(targets=self.targets, elapsed_s=elapsed, report_markdown="\n".join(self.lines))
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(self.results, indent=2, default=_json_default))
            print(f"wrote {json_path}", file=sys.stderr)


def section_header(report: Report, args: argparse.Namespace, settings: TrackerSettings) -> None:
    info = machine_info()
    report.results["machine"] = info
    emit = report.emit
    quick_note = " (--quick smoke run: numbers are not meaningful)" if args.quick else ""
    emit("# deepsort-edge tracker benchmark" + quick_note)
    emit()
    emit(f"- CPU: {info['cpu']} ({info['cpu_count']} logical CPUs, {info['usable_cpus']} usable)")
    emit(f"- {info['platform']}; Python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
         f"scipy {info['scipy']}, deep-sort-realtime {info['deep_sort_realtime']}, "
         f"deepsort-edge {info['deepsort_edge']}")
    emit("- one thread: " + ", ".join(f"{k}=1" for k in THREAD_VARIABLES) + " (set before numpy is imported)")
    emit(f"- both trackers: max_age={settings.max_age}, n_init={settings.n_init}, IoU >= {settings.min_iou}, "
         f"cosine distance <= {settings.appearance_threshold}, nn_budget={settings.nn_budget}; "
         f"{EMBEDDING_DIM}-d embeddings given (no embedder), embedding noise {args.embedding_noise}")
    emit("- timed: deepsort-edge `update_arrays` (after `warmup()`), deep-sort-realtime `update_tracks`; "
         "input conversion is outside the timer for both")
    emit()


def section_startup(report: Report) -> None:
    startup = startup_times()
    report.results["startup"] = startup
    emit = report.emit
    emit("## Start-up (fresh process each; import + warmup of gallery and ema trackers)")
    emit()
    emit("| numba cache | import s | warmup gallery s | warmup ema s "
         "| first 2 updates after warmup (gallery / ema) ms | total s |")
    emit("|---|---:|---:|---:|---:|---:|")
    labels = {"cold": "cold (empty NUMBA_CACHE_DIR): first-call JIT compile", "cached": "cached (same NUMBA_CACHE_DIR)"}
    for name, s in startup.items():
        emit(f"| {labels[name]} | {s['import_s']:.2f} | {s['gallery_warmup_s']:.2f} | {s['ema_warmup_s']:.2f} "
             f"| {1e3 * s['gallery_first_two_updates_s']:.1f} / {1e3 * s['ema_first_two_updates_s']:.1f} "
             f"| {s['total_s']:.2f} |")
    emit()


def section_mot17(report: Report, args: argparse.Namespace, settings: TrackerSettings, progress: bool) -> None:
    emit = report.emit
    baseline = matmul_baseline(50 if args.quick else 300, args.seed)
    matmul_all_threads = matmul_default_threads()
    report.results["matmul_default_threads_median_ms"] = matmul_all_threads
    names = {
        "gallery": "MOT17-04 gallery: deep-sort-realtime(100) / ours",
        "matmul": "MOT17-04 gallery: ours / numpy full-gallery matmul",
        "ema": "MOT17-04 ema: deep-sort-realtime(100) / ours",
    }
    data = shared_data_dir() / MOT17_04
    if not ((data / "det" / "det.txt").is_file() and (data / "gt" / "gt.txt").is_file()):
        report.results["matmul_baseline"] = baseline.summary()
        emit(f"## MOT17-04: skipped, shared data not found at {data} (set DEEPSORT_EDGE_DATA)")
        emit()
        emit(f"numpy full-gallery matmul baseline: median {baseline.median():.3f} ms on one thread, "
             f"{_fmt(matmul_all_threads, 3)} ms with numpy's default threads")
        emit()
        report.target(names["gallery"], None, TARGET_GALLERY_SPEEDUP, "higher")
        report.target(names["matmul"], None, TARGET_GALLERY_VS_MATMUL, "lower")
        report.target(names["ema"], None, TARGET_EMA_SPEEDUP, "higher")
        return

    frames = load_mot17_04(data, min_score=0.25, embedding_noise=args.embedding_noise, seed=args.seed,
                           max_frames=args.mot_frames)
    n = len(frames)
    runners: dict[str, Callable[[], RunResult]] = {
        "dsr": lambda: run_dsr(f"deep-sort-realtime nn_budget={settings.nn_budget}", frames, n,
                               settings=settings, progress=progress),
        "gallery": lambda: run_ours("deepsort-edge gallery (nn_budget=100) update_arrays", frames, n,
                                    mode="gallery", settings=settings, progress=progress),
        "ema": lambda: run_ours("deepsort-edge ema update_arrays", frames, n, mode="ema",
                                settings=settings, progress=progress),
        "gallery_sv": lambda: run_ours("deepsort-edge gallery update(sv.Detections)", frames, n,
                                       mode="gallery", settings=settings, api="detections", progress=progress),
    }
    # Interleaved repeats, best median of each: a busy machine then slows
    # every tracker alike instead of whichever happened to run at the time.
    mot: dict[str, RunResult] = {}
    for _ in range(args.repeats):
        for key, runner in runners.items():
            r = runner()
            if key not in mot or r.median() < mot[key].median():
                mot[key] = r
        again = matmul_baseline(300, args.seed)
        if again.median() < baseline.median():
            baseline = again
    if args.dsr_unbounded_frames > 0:
        unbounded = TrackerSettings(**{**settings.__dict__, "nn_budget": None})
        k = min(args.dsr_unbounded_frames, n)
        mot["dsr_unbounded"] = run_dsr(f"deep-sort-realtime nn_budget=None (default), first {k} frames",
                                       frames[:k], k, settings=unbounded, progress=progress)
    dsr_threads = None
    if args.dsr_default_threads:
        dsr_threads = dsr_default_threads(data, args.embedding_noise, args.seed, args.mot_frames)
        report.results["dsr_default_threads"] = dsr_threads
    report.results["matmul_baseline"] = baseline.summary()
    report.results["mot17_04"] = {k: v.summary() for k, v in mot.items()}

    emit(f"## MOT17-04-FRCNN detections (score >= 0.25, {n} frames), ms per update "
         f"(best median of {args.repeats} interleaved repeats)")
    emit()
    emit(RUN_HEADER)
    emit(f"| {baseline.label} | {baseline.frames} reps | | {baseline.median():.3f} | {baseline.p95():.3f} "
         f"| {baseline.times_ms.mean():.3f} | | | | |")
    for key in ("dsr", "dsr_unbounded", "gallery", "ema", "gallery_sv"):
        if key in mot:
            emit(_run_row(mot[key], mot["dsr"]))
    emit()
    emit(f"The matmul baseline runs on one thread like the trackers; with numpy's default threads "
         f"({os.cpu_count()} CPUs) it takes {_fmt(matmul_all_threads, 3)} ms.")
    if dsr_threads:
        emit(f"deep-sort-realtime nn_budget={settings.nn_budget} with numpy's default threads (separate "
             f"process, {dsr_threads['frames']} frames): median {dsr_threads['median_ms']:.2f} ms, p95 "
             f"{dsr_threads['p95_ms']:.2f} ms; ours ema is {dsr_threads['median_ms'] / mot['ema'].median():.0f}x, "
             f"gallery {dsr_threads['median_ms'] / mot['gallery'].median():.0f}x faster than that "
             "(multi-threaded BLAS on tiny matmuls is slow and very sensitive to other load).")
    emit()
    emit("coverage: share of detections of real people that got a confirmed id; ID sw: changes of id "
         "along one ground-truth person (sanity, not a quality benchmark).")
    emit()
    dsr = mot["dsr"].median()
    report.target(names["gallery"], dsr / mot["gallery"].median(), TARGET_GALLERY_SPEEDUP, "higher")
    report.target(names["matmul"], mot["gallery"].median() / baseline.median(), TARGET_GALLERY_VS_MATMUL, "lower")
    report.target(names["ema"], dsr / mot["ema"].median(), TARGET_EMA_SPEEDUP, "higher")


def section_synthetic(report: Report, args: argparse.Namespace, settings: TrackerSettings, progress: bool) -> None:
    emit = report.emit
    emit(f"## Synthetic scenes (seeded; up to {args.synthetic_frames} frames, a timing loop stops after "
         f"{args.run_budget_s:.0f} s), ms per update")
    emit()
    emit("| objects | dets/frame | frames ours / DSR | gallery median / p95 | ema median / p95 "
         "| DSR(100) median / p95 | DSR / gallery | DSR / ema | coverage gallery / ema / DSR |")
    emit("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    synthetic = {}
    total = args.synthetic_frames
    for size in args.synthetic_sizes:
        cfg = synthetic_config(size, seed=args.seed + size, turnover=0.002, embedding_noise=args.embedding_noise)
        common_args = dict(settings=settings, budget_s=args.run_budget_s, progress=progress)
        runs = {
            "gallery": run_ours(f"ours gallery {size}", synthetic_frames(cfg, total), total, mode="gallery",
                                **common_args),
            "ema": run_ours(f"ours ema {size}", synthetic_frames(cfg, total), total, mode="ema", **common_args),
            "dsr": run_dsr(f"DSR {size}", synthetic_frames(cfg, total), total, **common_args),
        }
        # Ratios over the frames every tracker ran (galleries fill over the first 100 frames).
        common = min(r.frames for r in runs.values())
        dsr_common = runs["dsr"].median(0, common)
        ratio_gallery = dsr_common / runs["gallery"].median(0, common)
        ratio_ema = dsr_common / runs["ema"].median(0, common)
        synthetic[size] = {
            **{k: v.summary() for k, v in runs.items()},
            "common_frames": common,
            "dsr_over_gallery": ratio_gallery,
            "dsr_over_ema": ratio_ema,
        }
        g, e, d = runs["gallery"], runs["ema"], runs["dsr"]
        frames_note = f"{g.frames}/{e.frames} / {d.frames}" if g.frames != e.frames else f"{g.frames} / {d.frames}"
        ratio_note = "" if common == max(r.frames for r in runs.values()) else f" (first {common})"
        coverage = " / ".join(f"{r.summary()['coverage']:.3f}" for r in (g, e, d))
        emit(f"| {size} | {g.summary()['detections_per_frame']:.1f} | {frames_note} "
             f"| {g.median():.3f} / {g.p95():.3f} | {e.median():.3f} / {e.p95():.3f} "
             f"| {d.median():.2f} / {d.p95():.2f} | {ratio_gallery:.1f}x{ratio_note} "
             f"| {ratio_ema:.1f}x{ratio_note} | {coverage} |")
    emit()
    report.results["synthetic"] = synthetic
    if 200 in synthetic:
        report.target("synthetic 200 objects: ema median ms", synthetic[200]["ema"]["median_ms"],
                      TARGET_EMA_MS_AT_200, "lower")


def section_long_run(report: Report, args: argparse.Namespace, settings: TrackerSettings, progress: bool) -> None:
    emit = report.emit
    # Windows are 0-based index ranges into the per-frame times; the table
    # names them by 1-based frame number (frames 450-550 = indices 449-549).
    long_frames = args.long_frames
    start_window = (449, 550) if long_frames >= 700 else (0, max(long_frames // 4, 1))
    end_window = (max(long_frames - 101, 0), long_frames)
    cfg = synthetic_config(args.long_objects, seed=args.seed + 7, turnover=0.01, embedding_noise=args.embedding_noise)
    emit(f"## Long run: {long_frames} frames, {args.long_objects} objects, turnover 0.01 "
         f"(objects leave and new ones enter); each window's median is the best of {args.long_repeats} runs")
    emit()
    emit(f"| mode | dets/frame | ids | median ms frames {start_window[0] + 1}-{start_window[1]} "
         f"| median ms frames {end_window[0] + 1}-{end_window[1]} | end / start | per-run ratios |")
    emit("|---|---:|---:|---:|---:|---:|---|")
    long_runs = {}
    for mode in ("ema", "gallery"):
        firsts, lasts = [], []
        for rep in range(args.long_repeats):
            r = run_ours(f"long {mode} {rep + 1}/{args.long_repeats}", synthetic_frames(cfg, long_frames),
                         long_frames, mode=mode, settings=settings, progress=progress)
            firsts.append(r.median(*start_window))
            lasts.append(r.median(*end_window))
        # Best of the repeats per window: other load on the machine only ever adds time.
        first, last = min(firsts), min(lasts)
        long_runs[mode] = {**r.summary(), "start_window_frames": [start_window[0] + 1, start_window[1]],
                           "end_window_frames": [end_window[0] + 1, end_window[1]],
                           "start_medians_ms": firsts, "end_medians_ms": lasts,
                           "start_median_ms": first, "end_median_ms": last, "ratio": last / first}
        per_run = ", ".join(f"{b / a:.2f}" for a, b in zip(firsts, lasts))
        emit(f"| {mode} | {r.summary()['detections_per_frame']:.1f} | {r.distinct_ids} | {first:.3f} | {last:.3f} "
             f"| {last / first:.2f} | {per_run} |")
        report.target(f"long run {mode}: median ms end / start", last / first, TARGET_LONG_RUN_RATIO, "lower")
    emit()
    report.results["long_run"] = long_runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = not args.no_progress
    settings = TrackerSettings()
    started = time.perf_counter()
    report = Report()
    report.results.update(quick=args.quick, settings=settings.__dict__, embedding_noise=args.embedding_noise)

    section_header(report, args, settings)
    if not args.skip_startup:
        section_startup(report)
    section_mot17(report, args, settings, progress)
    section_synthetic(report, args, settings, progress)
    section_long_run(report, args, settings, progress)

    report.finish("Targets", started, args.json)
    return 0


def _json_default(o: object) -> object:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


if __name__ == "__main__":
    sys.exit(main())
