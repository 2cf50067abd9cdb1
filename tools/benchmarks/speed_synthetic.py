"""Speed sections ``synthetic`` and ``long-run``: seeded scenes from 10 to 2850 objects, and a long run.

``synthetic``: seeded walkers (:func:`inputs.synthetic_config`: about as many
detections a frame as objects, 512-d embeddings) at each of
``--synthetic-sizes``; gallery and ema mode, and deep-sort-realtime up to
``--dsr-max-objects`` (it takes seconds a frame beyond); median over the frames
after the first ``--synthetic-skip``. Frames are generated between updates
(untimed). For gallery mode the "read floor" is the time to read every live
gallery once at this core's one-thread streaming rate: exact gallery search
cannot beat it.

``long-run``: ``--long-frames`` frames of 50 objects coming and going
(turnover 0.01); the median update near frame 500 against the last 100 frames,
best of ``--long-repeats`` runs per window (other load only ever adds time).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .inputs import CompareSettings, dsr_ids, dsr_inputs, make_dsr, make_ours, synthetic_config, synthetic_frames
from .report import Report
from .timing import Loop, time_updates

TARGET_LARGEST_MS = 15.0
TARGET_GROWTH = 20.0
TARGET_EMA_MS_AT_190 = 5.0
TARGET_LONG_RATIO = 1.2


def streaming_rate_gb_s(nbytes: int = 512 * 2**20, repeats: int = 3) -> float:
    """One thread's best rate of reading memory: a compiled sum over ``nbytes`` of float32, GB/s.

    CPU time (``time.thread_time``), as every timing here: on a shared machine
    wall time would count the time other processes held the core.
    """
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
        t0 = time.thread_time()
        total(data)
        best = min(best, time.thread_time() - t0)
    return data.nbytes / best / 1e9


def time_size(args: argparse.Namespace, size: int, settings: CompareSettings) -> dict:
    """Every tracker's loop on the scene of ``size`` objects; the gallery's bytes at the end."""
    cfg = synthetic_config(size, seed=args.seed + size, turnover=0.002, embedding_noise=args.embedding_noise)
    total = args.synthetic_frames
    kinds = ["gallery", "ema"] + (["dsr"] if size <= args.dsr_max_objects else [])
    loops = {kind: Loop(f"{kind} {size}") for kind in kinds}
    counted: list[int] = []
    gallery_entries = 0
    for rep in range(args.repeats):
        for kind, loop in loops.items():
            desc = f"synthetic {size} {kind} {rep + 1}/{args.repeats}"
            if kind == "dsr":
                dsr = make_dsr(settings)
                loop.add(time_updates(lambda a: dsr_ids(dsr.update_tracks(a[0], embeds=a[2], others=a[1]),
                                                        len(a[0])),
                                      map(dsr_inputs, synthetic_frames(cfg, total)), total=total, desc=desc,
                                      progress=args.progress))
                continue
            tracker = make_ours(kind, settings).warmup()
            loop.add(time_updates(lambda f: tracker.update_arrays(f.xyxy, f.scores, f.embeddings),
                                  synthetic_frames(cfg, total), total=total, desc=desc, progress=args.progress,
                                  after=(lambda f, _: counted.append(f.xyxy.shape[0])) if rep == 0 else None))
            if kind == "gallery":
                gallery_entries = sum(t.gallery_size for t in tracker.tracks)
    skip = min(args.synthetic_skip, max(total - 1, 0))
    row = {kind: loop.summary(skip) for kind, loop in loops.items()}
    row["detections_per_frame"] = float(np.mean(counted))
    row["gallery_mb"] = gallery_entries * cfg.embedding_dim * 4 / 1e6
    return row


def gallery_growth(rows: dict) -> float | None:
    """Gallery mode's ms per update at 2850 objects over that at 190 (None unless both ran)."""
    if 190 not in rows or 2850 not in rows:
        return None
    return rows[2850]["gallery"]["median_ms"] / rows[190]["gallery"]["median_ms"]


def section_synthetic(report: Report, args: argparse.Namespace) -> None:
    settings = CompareSettings()
    probe_mib = 64 if args.quick else 512
    rate = streaming_rate_gb_s(probe_mib * 2**20)
    rows = {size: time_size(args, size, settings) for size in args.synthetic_sizes}
    for row in rows.values():
        row["read_floor_ms"] = row["gallery_mb"] / rate
    skip = min(args.synthetic_skip, max(args.synthetic_frames - 1, 0))
    report.results["synthetic"] = {"frames": args.synthetic_frames, "skipped_frames": skip, "repeats": args.repeats,
                                   "streaming_gb_s": rate, "sizes": rows}
    report.emit(f"## Synthetic walkers ({args.synthetic_frames} frames, 512-d, nn_budget 100), CPU ms per update "
                f"(median over frames {skip + 1}-{args.synthetic_frames}, median of {args.repeats} repeats)")
    report.emit()
    report.emit(f"Read floor: the time to read the live galleries once at this core's one-thread streaming rate "
                f"({rate:.1f} GB/s, a compiled sum over {probe_mib} MiB).")
    report.emit()
    table = []
    for size, r in rows.items():
        dsr = r.get("dsr")
        ratio = (lambda k: f"{dsr['median_ms'] / r[k]['median_ms']:.0f}x") if dsr else (lambda k: "")
        table.append([str(size), f"{r['detections_per_frame']:.0f}",
                      f"{r['gallery']['median_ms']:.3f} / {r['gallery']['p95_ms']:.3f}",
                      f"{r['ema']['median_ms']:.3f} / {r['ema']['p95_ms']:.3f}",
                      f"{dsr['median_ms']:.2f}" if dsr else "", ratio("gallery"), ratio("ema"),
                      f"{r['gallery_mb']:.0f}", f"{r['read_floor_ms']:.2f}"])
    report.table(["objects", "detections a frame", "gallery median / p95", "ema median / p95",
                  "deep-sort-realtime median", "DSR / gallery", "DSR / ema", "galleries MB", "read floor ms"], table)
    growth = gallery_growth(rows)
    report.target("synthetic 2850 objects, gallery: ms per update",
                  rows[2850]["gallery"]["median_ms"] if 2850 in rows else None, TARGET_LARGEST_MS, "lower")
    report.target("synthetic gallery: ms at 2850 / ms at 190", growth, TARGET_GROWTH, "lower")
    report.target("synthetic 190 objects, ema: ms per update",
                  rows[190]["ema"]["median_ms"] if 190 in rows else None, TARGET_EMA_MS_AT_190, "lower")


def section_long_run(report: Report, args: argparse.Namespace) -> None:
    # Windows are 0-based index ranges; the table names them by 1-based frame number.
    n = args.long_frames
    start_window = (449, 550) if n >= 700 else (0, max(n // 4, 1))
    end_window = (max(n - 100, 0), n)
    cfg = synthetic_config(50, seed=args.seed + 7, turnover=0.01, embedding_noise=args.embedding_noise)
    settings = CompareSettings()
    results = {}
    rows = []
    for mode in ("ema", "gallery"):
        firsts, lasts, ids = [], [], set()
        for rep in range(args.long_repeats):
            tracker = make_ours(mode, settings).warmup()
            times = time_updates(lambda f: tracker.update_arrays(f.xyxy, f.scores, f.embeddings),
                                 synthetic_frames(cfg, n), total=n, desc=f"long {mode} {rep + 1}/{args.long_repeats}",
                                 progress=args.progress, after=lambda _, out: ids.update(out[out > 0].tolist()))
            firsts.append(float(np.median(times[slice(*start_window)])))
            lasts.append(float(np.median(times[slice(*end_window)])))
        first, last = min(firsts), min(lasts)
        results[mode] = {"start_window_frames": [start_window[0] + 1, start_window[1]],
                         "end_window_frames": [end_window[0] + 1, end_window[1]], "start_medians_ms": firsts,
                         "end_medians_ms": lasts, "start_median_ms": first, "end_median_ms": last,
                         "ratio": last / first, "distinct_ids": len(ids)}
        rows.append([mode, str(len(ids)), f"{first:.3f}", f"{last:.3f}", f"{last / first:.2f}",
                     ", ".join(f"{b / a:.2f}" for a, b in zip(firsts, lasts))])
        report.target(f"long run {mode}: median ms end / start", last / first, TARGET_LONG_RATIO, "lower")
    report.results["long_run"] = {"frames": n, "objects": 50, "repeats": args.long_repeats, "modes": results}
    report.emit(f"## Long run: {n} frames, 50 objects coming and going (turnover 0.01), CPU ms per update; "
                f"each window's median is the best of {args.long_repeats} runs")
    report.emit()
    report.table(["mode", "ids", f"median ms frames {start_window[0] + 1}-{start_window[1]}",
                  f"median ms frames {end_window[0] + 1}-{end_window[1]}", "end / start", "per-run ratios"], rows)
