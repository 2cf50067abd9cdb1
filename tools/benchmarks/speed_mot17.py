"""Speed section ``mot17``: MOT17-04, our tracker against deep-sort-realtime, per update.

Every loop replays the same frames (:func:`inputs.load_mot17_04`) with a fresh
tracker after ``warmup()``; CPU time of each update, one thread; a loop's
figure is the median update, the reported one the median over ``--repeats``.
Rows: gallery mode (float32, float16), ema mode, both with our default wider
gate for pairs appearance also checks (information), gallery through
``update(sv.Detections)``, deep-sort-realtime with ``nn_budget`` 100 and, on
the first frames only, its default unbounded gallery; and a plain numpy
matmul of full galleries as the floor a dense gallery search would start from.
Coverage and id switches come from the first repeat: a sanity check that both
trackers do the same work, not a quality metric.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from .inputs import CompareSettings, Frame, IdStats, dsr_ids, dsr_inputs, make_dsr, make_ours, unit_rows
from .report import Report
from .timing import Loop, time_updates

# Per-update targets on MOT17-04 (27 detections a frame, one thread, CPU time).
TARGETS = {
    "gallery": ("MOT17-04 gallery float32: ms per update", 0.15, "lower"),
    "gallery_float16": ("MOT17-04 gallery float16: ms per update", 0.10, "lower"),
    "ema": ("MOT17-04 ema: ms per update", 0.06, "lower"),
    "gallery_speedup": ("MOT17-04 gallery: deep-sort-realtime / ours", 65.0, "higher"),
    "ema_speedup": ("MOT17-04 ema: deep-sort-realtime / ours", 120.0, "higher"),
}


def variants() -> dict[str, tuple[str, str, dict, str]]:
    """Key -> (label, appearance mode, extra settings, API) of each of our loops."""
    from deepsort_edge.tracking.settings import TrackerSettings

    wide = {"appearance_gate_scale": TrackerSettings().appearance_gate_scale}
    return {
        "gallery": ("deepsort-edge gallery", "gallery", {}, "arrays"),
        "gallery_float16": ("deepsort-edge gallery, float16", "gallery", {"gallery_dtype": "float16"}, "arrays"),
        "ema": ("deepsort-edge ema", "ema", {}, "arrays"),
        "gallery_default_gate": (f"deepsort-edge gallery, appearance_gate_scale={wide['appearance_gate_scale']:g}",
                                 "gallery", wide, "arrays"),
        "ema_default_gate": (f"deepsort-edge ema, appearance_gate_scale={wide['appearance_gate_scale']:g}",
                             "ema", wide, "arrays"),
        "gallery_detections": ("deepsort-edge gallery, update(sv.Detections)", "gallery", {}, "detections"),
        # appearance_adaptation (off by default): what it adds to a default-gate update.
        "ema_adaptation": (f"deepsort-edge ema, appearance_gate_scale={wide['appearance_gate_scale']:g}, "
                           "appearance_adaptation=projection", "ema", {**wide, "appearance_adaptation": "projection"},
                           "arrays"),
    }


def ours_update(tracker, api: str):
    """``f -> ids`` through ``update_arrays`` or ``update(sv.Detections)`` (detections built untimed)."""
    if api == "arrays":
        return lambda f: tracker.update_arrays(f.xyxy, f.scores, f.embeddings)
    return lambda dets: tracker.update(dets).tracker_id


def as_detections(frames: list[Frame]) -> list:
    import supervision as sv

    return [sv.Detections(xyxy=f.xyxy, confidence=f.scores, data={"embeddings": f.embeddings}) for f in frames]


def matmul_floor(repeats: int, seed: int) -> Loop:
    """Full-gallery cosine matmul, one thread: (45 tracks x 100, 512) @ (512, 45), float32."""
    rng = np.random.default_rng(seed)
    gallery = unit_rows(rng.standard_normal((45 * 100, 512))).astype(np.float32)
    dets = unit_rows(rng.standard_normal((45, 512))).astype(np.float32)
    loop = Loop("numpy matmul (45x100, 512) @ (512, 45) float32")
    for _ in range(10):
        gallery @ dets.T
    loop.add(time_updates(lambda _: gallery @ dets.T, range(repeats), total=repeats, desc="matmul", progress=False))
    return loop


def _stats_hook(stats: IdStats | None, gt_of):
    if stats is None:
        return None
    return lambda x, ids: stats.add(gt_of(x), np.asarray(ids))


def run_loops(args: argparse.Namespace, frames: list[Frame], settings: CompareSettings) -> dict[str, Loop]:
    """Every loop, ``args.repeats`` times, interleaved (a busy machine slows them alike)."""
    ours = variants()
    loops = {key: Loop(label) for key, (label, *_rest) in ours.items()}
    loops["dsr"] = Loop(f"deep-sort-realtime nn_budget={settings.nn_budget}")
    stats = {key: IdStats() for key in loops}
    detections = as_detections(frames)
    gt = {id(d): f.gt for d, f in zip(detections, frames)}
    dsr_args = [dsr_inputs(f) for f in frames]
    dsr_gt = {id(a): f.gt for a, f in zip(dsr_args, frames)}
    n = len(frames)
    for rep in range(args.repeats):
        tag = f"{rep + 1}/{args.repeats}"
        for key, (_, mode, extra, api) in ours.items():
            tracker = make_ours(mode, settings, **extra).warmup()
            inputs = frames if api == "arrays" else detections
            gt_of = (lambda f: f.gt) if api == "arrays" else (lambda d: gt[id(d)])
            loops[key].add(time_updates(ours_update(tracker, api), inputs, total=n, desc=f"{key} {tag}",
                                        progress=args.progress, after=_stats_hook(stats[key] if rep == 0 else None,
                                                                                  gt_of)))
        dsr = make_dsr(settings)
        loops["dsr"].add(time_updates(lambda a: dsr_ids(dsr.update_tracks(a[0], embeds=a[2], others=a[1]), len(a[0])),
                                      dsr_args, total=n, desc=f"deep-sort-realtime {tag}", progress=args.progress,
                                      after=_stats_hook(stats["dsr"] if rep == 0 else None, lambda a: dsr_gt[id(a)])))
    if args.dsr_unbounded_frames > 0:
        k = min(args.dsr_unbounded_frames, n)
        loops["dsr_unbounded"] = Loop(f"deep-sort-realtime nn_budget=None (its default), first {k} frames")
        stats["dsr_unbounded"] = IdStats()
        dsr = make_dsr(replace(settings, nn_budget=None))
        loops["dsr_unbounded"].add(time_updates(
            lambda a: dsr_ids(dsr.update_tracks(a[0], embeds=a[2], others=a[1]), len(a[0])), dsr_args[:k],
            total=k, desc="deep-sort-realtime unbounded", progress=args.progress,
            after=_stats_hook(stats["dsr_unbounded"], lambda a: dsr_gt[id(a)])))
    for key, loop in loops.items():
        loop.extra.update(stats[key].summary())
    return loops


def section_mot17(report: Report, args: argparse.Namespace, frames: list[Frame] | None) -> None:
    emit = report.emit
    if frames is None:
        emit("## MOT17-04: skipped, the shared data is not there (set DEEPSORT_EDGE_DATA)")
        emit()
        for name, threshold, better in TARGETS.values():
            report.target(name, None, threshold, better)
        return
    settings = CompareSettings()
    started = time.perf_counter()
    loops = run_loops(args, frames, settings)
    floor = matmul_floor(50 if args.quick else 300, args.seed)
    dets = float(np.mean([f.xyxy.shape[0] for f in frames]))
    report.results["mot17_04"] = {
        "frames": len(frames), "detections_per_frame": dets, "repeats": args.repeats,
        "seconds": time.perf_counter() - started,
        "loops": {k: v.summary() for k, v in loops.items()}, "matmul_floor": floor.summary(),
    }
    emit(f"## MOT17-04-FRCNN ({len(frames)} frames, {dets:.1f} detections a frame, 512-d embeddings), "
         f"CPU ms per update, median of {args.repeats} repeats' medians")
    emit()
    dsr_ms = loops["dsr"].median()
    rows = []
    for loop in loops.values():
        s = loop.summary()
        rows.append([loop.label, f"{s['median_ms']:.4f}", f"{s['p95_ms']:.4f}", f"{dsr_ms / s['median_ms']:.1f}x",
                     f"{s['coverage']:.3f}", str(s["id_switches"]), str(s["distinct_ids"])])
    rows.append([floor.label, f"{floor.median():.4f}", f"{floor.p95():.4f}", "", "", "", ""])
    report.table(["run", "median ms", "p95 ms", "deep-sort-realtime / this", "coverage", "ID sw", "ids"], rows)
    emit("coverage: share of detections of real people that got a confirmed id; ID sw: changes of id along "
         "one ground-truth person (a sanity check that both trackers do the same work).")
    emit()
    measured = {"gallery": loops["gallery"].median(), "gallery_float16": loops["gallery_float16"].median(),
                "ema": loops["ema"].median(), "gallery_speedup": dsr_ms / loops["gallery"].median(),
                "ema_speedup": dsr_ms / loops["ema"].median()}
    for key, (name, threshold, better) in TARGETS.items():
        report.target(name, measured[key], threshold, better)
