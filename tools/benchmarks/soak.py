"""Soak run: a long seeded synthetic scene through one DeepSORTTracker.

Objects keep entering and leaving (``turnover``), so tracks are created and
deleted all the time. The script samples resident memory (RSS) and the
per-frame update time over the run and checks three targets:

- memory growth after warm-up < 5 MB (RSS at the end minus RSS when the
  warm-up frames are done; the peak is reported too);
- per-frame time at the end within 1.2x of the start (median of the last
  ``--window`` frames over the median of the first ``--window`` frames after
  warm-up);
- ids never reused: every id the tracker outputs for the first time is larger
  than all ids output before, no id appears twice in one frame, and an id that
  was not output for more than the track-deletion horizon (``max_age``
  frames) never comes back.

Only the tracker's ``update_arrays`` call is timed; scene generation and the
checks are not. Bookkeeping uses memory proportional to the live tracks only,
and the per-frame time array is allocated before the warm-up baseline, so
neither shows up as growth. Runs on one thread (numba, BLAS, OpenMP: the runner sets them).

Usage:
    python tools/bench.py soak                # 100,000 frames, 20 objects, gallery then ema (~1 minute each on 2 cores)
    python tools/bench.py soak --json docs/bench/soak.json --docs   # and rewrite docs/benchmarks.md's block
    python tools/bench.py soak --modes ema --frames 5000            # a short check
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from deepsort_edge.demo.synthetic import SceneConfig, iter_scene

from .common import machine_info
from .common import progress as with_progress
from .report import check, md_table, publish

DOCS_BLOCK = "soak"
TARGET_GROWTH_MB = 5.0
TARGET_TIME_RATIO = 1.2


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class IdChecker:
    """Checks that track ids are never reused, in memory proportional to the live ids."""

    def __init__(self, horizon: int) -> None:
        # A confirmed track missed for more than ``horizon`` frames is deleted (the
        # cascade matches tracks missed for 1..horizon frames), so its id is gone.
        self.horizon = horizon
        self.last_seen: dict[int, int] = {}
        self.max_id = 0
        self.distinct = 0
        self.violations: list[str] = []

    def add(self, frame: int, ids: np.ndarray) -> None:
        out = ids[ids >= 0].tolist()
        if len(set(out)) != len(out):
            self._violation(f"frame {frame}: an id was given to two detections: {sorted(out)}")
        new = set(i for i in out if i not in self.last_seen)
        for i in sorted(new):
            if i <= self.max_id:
                self._violation(f"frame {frame}: id {i} came back or was reused (largest id so far {self.max_id})")
        fresh = [i for i in new if i > self.max_id]
        if fresh:
            self.max_id = max(fresh)
            self.distinct += len(fresh)
        for i in out:
            gap = frame - self.last_seen.get(i, frame)
            if gap > self.horizon:
                self._violation(f"frame {frame}: id {i} returned after {gap} frames (deletion horizon {self.horizon})")
            self.last_seen[i] = frame
        if frame % 64 == 0:
            # Forget ids whose tracks must be deleted by now; seeing them again is a violation.
            stale = [i for i, last in self.last_seen.items() if frame - last > self.horizon]
            for i in stale:
                del self.last_seen[i]

    def _violation(self, message: str) -> None:
        if len(self.violations) < 20:
            self.violations.append(message)
        elif len(self.violations) == 20:
            self.violations.append("... (more violations not listed)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.py soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--objects", type=int, default=20, help="objects present at any time (default 20)")
    p.add_argument("--modes", nargs="+", choices=("gallery", "ema"), default=["gallery", "ema"],
                   help="appearance modes, one run each (default both)")
    p.add_argument("--matching", choices=("cascade", "global"), default="cascade")
    p.add_argument("--nn-budget", type=int, default=100)
    p.add_argument("--embedding-dim", type=int, default=512)
    p.add_argument("--turnover", type=float, default=0.005,
                   help="per-object, per-frame probability of leaving (default 0.005)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup-frames", type=int, default=2000,
                   help="frames before the memory baseline (galleries and track storage fill up)")
    p.add_argument("--window", type=int, default=1000, help="frames in each timing window (default 1000)")
    p.add_argument("--samples", type=int, default=20, help="rows in the report table (default 20)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.md's soak block from the results")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    if args.frames < 2 * args.window + args.warmup_frames:
        p.error(f"--frames must be at least 2 * --window + --warmup-frames "
                f"({2 * args.window + args.warmup_frames}), got {args.frames}")
    return args


def soak(args: argparse.Namespace, mode: str) -> dict:
    """One long run in ``mode``: RSS and update-time samples, id checks, the three targets."""
    from deepsort_edge import DeepSORTTracker

    tracker = DeepSORTTracker(nn_budget=args.nn_budget, appearance_mode=mode, matching=args.matching)
    tracker.warmup()
    horizon = int(getattr(tracker, "maximum_frames_without_update", tracker.lost_track_buffer))
    cfg = SceneConfig(num_objects=args.objects, seed=args.seed, turnover=args.turnover, miss_rate=0.05,
                      false_positive_rate=0.05, occlusion_rate=0.005, max_occlusion_frames=20,
                      embedding_dim=args.embedding_dim, embedding_noise=0.5)
    # Allocated and written before the baseline: np.zeros alone maps pages
    # lazily, and filling them during the run would look like 8 bytes/frame growth.
    times_ms = np.full(args.frames, np.nan)
    checker = IdChecker(horizon)
    sample_every = max(args.frames // args.samples, 1)
    samples: list[dict] = []
    baseline_rss, peak_after_warmup, detections = None, 0.0, 0
    started = time.perf_counter()
    for frame in with_progress(iter_scene(cfg, args.frames), args.frames, f"soak {mode}", args.progress):
        t0 = time.perf_counter_ns()
        ids = tracker.update_arrays(frame.xyxy, frame.scores, frame.embeddings)
        k = frame.index - 1
        times_ms[k] = (time.perf_counter_ns() - t0) / 1e6
        detections += len(ids)
        checker.add(frame.index, ids)
        if frame.index == args.warmup_frames:
            baseline_rss = rss_mb()
        if frame.index % sample_every == 0 or frame.index == args.frames:
            rss = rss_mb()
            if baseline_rss is not None and frame.index > args.warmup_frames:
                peak_after_warmup = max(peak_after_warmup, rss)
            window = times_ms[max(k + 1 - sample_every, 0) : k + 1]
            samples.append({"frame": frame.index, "rss_mb": rss, "median_ms": float(np.median(window)),
                            "p95_ms": float(np.percentile(window, 95)), "live_tracks": len(tracker.tracks),
                            "ids_so_far": checker.max_id})
    final_rss = rss_mb()
    start = times_ms[args.warmup_frames : args.warmup_frames + args.window]
    end = times_ms[-args.window :]
    growth, ratio = final_rss - baseline_rss, float(np.median(end) / np.median(start))
    return {
        "mode": mode, "horizon": horizon, "detections_per_frame": detections / args.frames,
        "elapsed_s": time.perf_counter() - started, "mean_ms": float(times_ms.mean()),
        "baseline_rss_mb": baseline_rss, "final_rss_mb": final_rss, "growth_mb": growth,
        "peak_growth_mb": max(peak_after_warmup, final_rss) - baseline_rss,
        "start_window": [args.warmup_frames + 1, args.warmup_frames + args.window],
        "end_window": [args.frames - args.window + 1, args.frames],
        "start_median_ms": float(np.median(start)), "end_median_ms": float(np.median(end)), "time_ratio": ratio,
        "distinct_ids": checker.distinct, "violations": checker.violations, "samples": samples,
        "targets": [check("memory growth after warm-up (MB)", growth, TARGET_GROWTH_MB, "lower"),
                    check("per-frame time end / start (medians)", ratio, TARGET_TIME_RATIO, "lower"),
                    check("ids reused (violations)", len(checker.violations), 0, "lower")],
    }


def report_lines(args: argparse.Namespace, r: dict) -> list[str]:
    """The markdown report of one run."""
    lines = [
        f"# deepsort-edge soak: {args.frames} frames, mode {r['mode']}", "",
        f"- scene: {args.objects} objects present at any time, turnover {args.turnover} (objects leave and new "
        f"ones enter), 5% misses, 5% false positives, occlusions up to 20 frames, {args.embedding_dim}-d "
        f"embeddings, seed {args.seed}; {r['detections_per_frame']:.1f} detections a frame",
        f"- tracker: DeepSORTTracker(appearance_mode={r['mode']!r}, nn_budget={args.nn_budget}, "
        f"matching={args.matching!r}), other settings default (track deleted after {r['horizon']} frames "
        "unmatched); one thread",
        f"- warm-up: {args.warmup_frames} frames; RSS then {r['baseline_rss_mb']:.1f} MB; run took "
        f"{r['elapsed_s']:.0f} s (mean update {r['mean_ms']:.3f} ms)", "",
    ]
    rows = [[str(s["frame"]), f"{s['rss_mb']:.1f}",
             f"{s['rss_mb'] - r['baseline_rss_mb']:+.2f}" if s["frame"] >= args.warmup_frames else "(warm-up)",
             f"{s['median_ms']:.3f}", f"{s['p95_ms']:.3f}", str(s["live_tracks"]), str(s["ids_so_far"])]
            for s in r["samples"]]
    lines += [md_table(["frame", "RSS MB", "RSS - warm-up MB", "median ms (window)", "p95 ms", "live tracks",
                        "ids so far"], rows, "rrrrrrr"), ""]
    lines += [
        f"Timing windows: frames {r['start_window'][0]}-{r['start_window'][1]} median {r['start_median_ms']:.3f} "
        f"ms; frames {r['end_window'][0]}-{r['end_window'][1]} median {r['end_median_ms']:.3f} ms.",
        f"Memory: end {r['final_rss_mb']:.1f} MB, growth {r['growth_mb']:+.2f} MB, peak growth "
        f"{r['peak_growth_mb']:+.2f} MB after warm-up. Ids: {r['distinct_ids']} distinct.", "",
        md_table(["target", "value", "threshold", "result"],
                 [[t["target"], f"{t['value']:.3g}", t["threshold"], t["status"]] for t in r["targets"]], "lrrl"),
    ]
    return lines + (["", "Id violations:"] + [f"- {v}" for v in r["violations"]] if r["violations"] else [])


def render(data: dict) -> str:
    """docs/benchmarks.md's soak block: one row per mode."""
    a, m = data["args"], data["machine"]
    rows = []
    for r in data["runs"].values():
        rows.append([r["mode"], f"{a['frames']:,}", f"{r['distinct_ids']:,}", f"{r['growth_mb']:+.2f} MB",
                     f"{r['start_median_ms']:.3f} / {r['end_median_ms']:.3f}", f"{r['time_ratio']:.2f}",
                     str(len(r["violations"]))])
    window = next(iter(data["runs"].values()))
    (a0, a1), (b0, b1) = window["start_window"], window["end_window"]
    status = {t["status"] for r in data["runs"].values() for t in r["targets"]}
    return "\n".join([
        f"`{data['command']}` on {m['cpu']} ({m['usable_cpus']} usable CPUs), Python {m['python']}, numba "
        f"{m['numba']}, deepsort-edge {m['deepsort_edge']}; {a['objects']} objects present at any time "
        f"(turnover {a['turnover']}), {a['embedding_dim']}-d embeddings, one thread:", "",
        md_table(["mode", "frames", "identities", "RSS growth after warm-up",
                  f"median ms, frames {a0}-{a1} / {b0}-{b1}", "end / start", "ids reused"], rows), "",
        f"Targets: memory growth after warm-up < {TARGET_GROWTH_MB:g} MB, end / start <= {TARGET_TIME_RATIO}, "
        f"no id reused: {'all pass' if status == {'PASS'} else 'not all pass'}.", "",
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = {}
    for mode in args.modes:
        runs[mode] = soak(args, mode)
        print("\n".join(report_lines(args, runs[mode])), flush=True)
    data = {"command": "python tools/bench.py soak " + shlex.join(argv if argv is not None else sys.argv[2:]),
            "machine": machine_info(), "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "runs": runs}
    data["command"] = data["command"].strip()
    publish(data, args.json, args.docs, DOCS_BLOCK, render)
    return 0 if all(t["status"] == "PASS" for r in runs.values() for t in r["targets"]) else 1
