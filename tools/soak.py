#!/usr/bin/env python
"""Soak run: a long seeded synthetic scene through one DeepSORTTracker.

Objects keep entering and leaving (``turnover``), so tracks are created and
deleted all the time. The script samples resident memory (RSS) and the
per-frame update time over the run and checks three targets (issue 5):

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
neither shows up as growth. Runs on one thread (numba, BLAS, OpenMP).

Usage:
    python tools/soak.py                         # 100,000 frames, 20 objects, gallery mode (~1 minute on 2 cores)
    python tools/soak.py --mode ema --json soak_ema.json
    python tools/soak.py --frames 5000           # a short check
"""

from __future__ import annotations

import os

for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from deepsort_edge.demo.synthetic import SceneConfig, iter_scene  # noqa: E402

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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--objects", type=int, default=20, help="objects present at any time (default 20)")
    p.add_argument("--mode", choices=("gallery", "ema"), default="gallery")
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
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.frames < 2 * args.window + args.warmup_frames:
        p.error(f"--frames must be at least 2 * --window + --warmup-frames "
                f"({2 * args.window + args.warmup_frames}), got {args.frames}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import numba

    from deepsort_edge import DeepSORTTracker, __version__

    tracker = DeepSORTTracker(nn_budget=args.nn_budget, appearance_mode=args.mode, matching=args.matching)
    tracker.warmup()
    horizon = int(getattr(tracker, "maximum_frames_without_update", tracker.lost_track_buffer))
    cfg = SceneConfig(
        num_objects=args.objects,
        seed=args.seed,
        turnover=args.turnover,
        miss_rate=0.05,
        false_positive_rate=0.05,
        occlusion_rate=0.005,
        max_occlusion_frames=20,
        embedding_dim=args.embedding_dim,
        embedding_noise=0.5,
    )
    # Allocated and written before the baseline: np.zeros alone maps pages
    # lazily, and filling them during the run would look like 8 bytes/frame growth.
    times_ms = np.full(args.frames, np.nan)
    checker = IdChecker(horizon)
    sample_every = max(args.frames // args.samples, 1)
    samples: list[dict] = []
    baseline_rss = None
    peak_after_warmup = 0.0
    detections = 0

    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=args.frames, desc=f"soak {args.mode}", file=sys.stderr, mininterval=1.0)
    started = time.perf_counter()
    for frame in iter_scene(cfg, args.frames):
        t0 = time.perf_counter_ns()
        ids = tracker.update_arrays(frame.xyxy, frame.scores, frame.embeddings)
        t1 = time.perf_counter_ns()
        k = frame.index - 1
        times_ms[k] = (t1 - t0) / 1e6
        detections += len(ids)
        checker.add(frame.index, ids)
        if frame.index == args.warmup_frames:
            baseline_rss = rss_mb()
        if frame.index % sample_every == 0 or frame.index == args.frames:
            rss = rss_mb()
            if baseline_rss is not None and frame.index > args.warmup_frames:
                peak_after_warmup = max(peak_after_warmup, rss)
            window = times_ms[max(k + 1 - sample_every, 0) : k + 1]
            samples.append({
                "frame": frame.index,
                "rss_mb": rss,
                "median_ms": float(np.median(window)),
                "p95_ms": float(np.percentile(window, 95)),
                "live_tracks": len(tracker.tracks),
                "ids_so_far": checker.max_id,
            })
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.close()
    elapsed = time.perf_counter() - started

    final_rss = rss_mb()
    growth = final_rss - baseline_rss
    peak_growth = max(peak_after_warmup, final_rss) - baseline_rss
    start = times_ms[args.warmup_frames : args.warmup_frames + args.window]
    end = times_ms[-args.window :]
    ratio = float(np.median(end) / np.median(start))
    targets = [
        {"target": "memory growth after warm-up (MB)", "value": growth, "threshold": f"< {TARGET_GROWTH_MB}",
         "status": "PASS" if growth < TARGET_GROWTH_MB else "FAIL"},
        {"target": "per-frame time end / start (medians)", "value": ratio, "threshold": f"<= {TARGET_TIME_RATIO}",
         "status": "PASS" if ratio <= TARGET_TIME_RATIO else "FAIL"},
        {"target": "ids never reused (violations)", "value": len(checker.violations), "threshold": "== 0",
         "status": "PASS" if not checker.violations else "FAIL"},
    ]

    lines = [
        f"# deepsort-edge soak: {args.frames} frames, mode {args.mode}",
        "",
        f"- scene: {args.objects} objects present at any time, turnover {args.turnover} "
        f"(objects leave and new ones enter), 5% misses, 5% false positives, occlusions up to 20 frames, "
        f"{args.embedding_dim}-d embeddings, seed {args.seed}; {detections / args.frames:.1f} detections a frame",
        f"- tracker: DeepSORTTracker(appearance_mode={args.mode!r}, nn_budget={args.nn_budget}, "
        f"matching={args.matching!r}), other settings "
        f"default (track deleted after {horizon} frames unmatched); one thread",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {numba.__version__}, deepsort-edge {__version__}",
        f"- warm-up: {args.warmup_frames} frames; RSS then {baseline_rss:.1f} MB; run took {elapsed:.0f} s "
        f"(mean update {times_ms.mean():.3f} ms)",
        "",
        f"| frame | RSS MB | RSS - warm-up MB | median ms (last {sample_every} frames) | p95 ms "
        "| live tracks | ids so far |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in samples:
        delta = f"{s['rss_mb'] - baseline_rss:+.2f}" if s["frame"] >= args.warmup_frames else "(warm-up)"
        lines.append(f"| {s['frame']} | {s['rss_mb']:.1f} | {delta} | {s['median_ms']:.3f} | {s['p95_ms']:.3f} "
                     f"| {s['live_tracks']} | {s['ids_so_far']} |")
    lines += [
        "",
        f"Timing windows: frames {args.warmup_frames + 1}-{args.warmup_frames + args.window} median "
        f"{np.median(start):.3f} ms; frames {args.frames - args.window + 1}-{args.frames} median "
        f"{np.median(end):.3f} ms.",
        f"Memory: end {final_rss:.1f} MB, growth {growth:+.2f} MB, peak growth {peak_growth:+.2f} MB after warm-up.",
        f"Ids: {checker.distinct} distinct ids output, largest {checker.max_id}.",
        "",
        "| target | value | threshold | result |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {t['target']} | {t['value']:.3g} | {t['threshold']} | {t['status']} |" for t in targets]
    if checker.violations:
        lines += ["", "Id violations:"] + [f"- {v}" for v in checker.violations]
    report = "\n".join(lines)
    print(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "baseline_rss_mb": baseline_rss, "final_rss_mb": final_rss, "growth_mb": growth,
            "peak_growth_mb": peak_growth, "time_ratio": ratio, "elapsed_s": elapsed,
            "distinct_ids": checker.distinct, "violations": checker.violations,
            "samples": samples, "targets": targets, "report_markdown": report,
        }, indent=2))
    return 0 if all(t["status"] == "PASS" for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
