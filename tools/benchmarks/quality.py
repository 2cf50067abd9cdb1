"""Tracking quality benchmark: presets, an ablation of every switch, and an honest protocol.

The sets, and how each is made, are in ``datasets.py``.

Protocol. Sets are split in two: defaults are chosen on the *selection* sets
(pets-acf, pets-acf-shipped, MOT17-02/04/05/09 with appearance and motion,
sim-pets-clean, sim-pets-noisy, sim-mot17-clean) and reported on all; the
*held-out* sets (pets-frcnn, pets-shipped, MOT17-10/11/13, TUD, the percent
and compressed score scales, HOG) informed no choice until the score rules:
``--select`` grids those (``score_calibration``, ``track_activation_threshold``,
``low_score_matching``) on every set run, since a score rule must hold for every
detector, ranked by worst-case regret (HOTA below the grid's best on that set),
with each configuration's largest loss against the shipped defaults (the
defaults may lose at most 0.3 HOTA on a set). For every preset the script prints its regret on each set
(HOTA below the best configuration evaluated here on that set) and the worst
case. ``--sets a,b`` runs only those sets (while iterating).

Usage:
    python tools/bench.py quality                 # presets + ablation, ~5 min on 2 cores
    python tools/bench.py quality --select        # also the default-selection grid (20 configurations x every set)
    python tools/bench.py quality --readme        # also rewrite README's generated table
    python tools/bench.py quality --sets pets-acf,sim-pets-clean --no-ablation   # a quick look
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.io.evaluation import COMBINED, SequenceData, evaluate
from deepsort_edge.io.mot import MOTData, MOTSequence
from deepsort_edge.streams.pipeline import track_mot
from deepsort_edge.tracking.settings import PRESETS, TrackerSettings

from .common import PETS09, REPO, add_dataset_arguments
from .datasets import REPORT_SETS, Sequence, data_and_sets, load_sets, split_sets
from .report import generated_by, md_table, replace_block

SELECTION_SETS = ("pets-acf", "pets-acf-shipped", "mot17-app:select", "mot17:select", "sim-pets-clean",
                  "sim-pets-noisy", "sim-mot17-clean")
HELD_OUT_SETS = ("pets-frcnn", "pets-shipped", "mot17-app:held-out", "mot17:held-out", "tud", "sim-pets-percent",
                 "sim-mot17-compressed", "hog-pets")
# One row per switch: the default with that switch flipped.
ABLATION: dict[str, dict[str, Any]] = {
    "lost_track_rule=none": {"lost_track_rule": "none"},
    "lost_track_rule=overlap": {"lost_track_rule": "overlap"},  # every missed box, not only beyond the gate
    "recent_track_rule=none": {"recent_track_rule": "none"},  # tracks matched the frame before: the plain threshold
    "low_score_matching=False": {"low_score_matching": False},
    "new_track_margin=0": {"new_track_margin": 0.0},  # every detection at the activation threshold starts a track
    "confidence_noise=False": {"confidence_noise": False},
    "confidence_embedding=False": {"confidence_embedding": False},
    "coast_damping=0.9": {"coast_damping": 0.9},
    # DeepSORT's aspect-ratio noise (the paper preset's): the width held near its first ratio to the height.
    "aspect_noise=0.01": {k: PRESETS["paper"][k] for k in ("aspect_noise", "aspect_velocity_noise")},
    "output_box=detection": {"output_box": "detection"},
    "appearance_mode=gallery": {"appearance_mode": "gallery"},
    "lost_track_buffer=30": {"lost_track_buffer": 30},
    "appearance_threshold=0.2": {"appearance_threshold": 0.2},
    "appearance_threshold=0.3": {"appearance_threshold": 0.3},
    "appearance_gate_scale=1": {"appearance_gate_scale": 1.0},
    "iou_recovery_frames=1": {"iou_recovery_frames": 1},
    "occluded_fraction=0.5": {"occluded_fraction": 0.5},
    "track_activation_threshold=0.5": {"track_activation_threshold": 0.5},
    "minimum_score=0.1": {"minimum_score": 0.1},
    "typical_score=None": {"typical_score": None},  # the threshold as given whatever the detector's median
    "minimum_iou_threshold=0.3": {"minimum_iou_threshold": 0.3},  # in motion-only frames too (default 0.2 there)
    # Appearance that adapts to the scene (off by default; docs/how-it-works.md).
    "appearance_adaptation=gate": {"appearance_adaptation": "gate"},
    "appearance_adaptation=projection": {"appearance_adaptation": "projection"},
}
# The default-selection grid (--select): the score rules (what a detector's score scale and spread
# move) on every set; a configuration that refuses a set's scores ranks after every one that runs
# them all.
GRID: dict[str, tuple[Any, ...]] = {
    "score_calibration": ("unit", "rank"),
    "track_activation_threshold": (0.05, 0.1, 0.2, 0.3, 0.5),
    "low_score_matching": (True, False),
}


# --------------------------------------------------------------------------- runs
def set_summary(metrics: dict[str, dict[str, float]], fps: float = float("nan")) -> dict[str, float]:
    """HOTA / IDF1 / MOTA in percent and IDSW of a set (combined over its sequences)."""
    m = metrics[COMBINED] if COMBINED in metrics else next(iter(metrics.values()))
    return {"HOTA": 100 * m["HOTA"], "IDF1": 100 * m["IDF1"], "MOTA": 100 * m["MOTA"], "IDSW": int(m["IDSW"]),
            "fps": fps}


def run_config(seqs: list[Sequence], settings: dict[str, Any], interpolate: int = 0) -> dict[str, float] | None:
    """Track every sequence with ``settings`` (frame rate from the sequence) and evaluate.

    ``interpolate`` > 0 then fills gaps offline, as ``deepsort-edge track --interpolate`` does.
    None when the settings refuse the set's scores (``score_calibration="none"`` with scores
    outside [0, 1]).
    """
    from deepsort_edge import DeepSORTTracker
    from deepsort_edge.tracking.interpolation import interpolate_gaps

    pairs, frames, spent = {}, 0, 0.0
    for s in seqs:
        tracker = DeepSORTTracker(frame_rate=s.frame_rate, use_appearance=s.embeddings is not None, **settings)
        tracker.warmup()
        start = time.thread_time()
        try:
            results = track_mot(tracker, s.detections, s.num_frames, s.embeddings)
        except ValueError as exc:
            if "score_calibration" not in str(exc):
                raise
            return None
        spent += time.thread_time() - start
        frames += s.num_frames
        pairs[s.name] = SequenceData(s.gt, interpolate_gaps(results, interpolate), s.num_frames)
    return set_summary(evaluate(pairs), frames / spent if spent > 0 else float("nan"))


def run_roboflow(seqs: list[Sequence], kind: str) -> dict[str, float] | None:
    """roboflow trackers' SORT or ByteTrack on the same detections (motion only), if installed."""
    try:
        import supervision as sv
        import trackers
    except Exception:  # noqa: BLE001  (any import failure means "not available")
        return None
    pairs = {}
    for s in seqs:
        tracker = {"sort": trackers.SORTTracker, "bytetrack": trackers.ByteTrackTracker}[kind](frame_rate=s.frame_rate)
        index, parts = s.detections.frame_index(), []
        for frame in range(1, s.num_frames + 1):
            rows = s.detections.table[index.get(frame, slice(0, 0))]
            xyxy = np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]].astype(np.float32).reshape(-1, 4)
            out = tracker.update(sv.Detections(xyxy=xyxy, confidence=rows[:, 6].astype(np.float32),
                                               class_id=np.zeros(len(rows), dtype=int)))
            ids = np.asarray(out.tracker_id if out.tracker_id is not None else [], dtype=np.int64)
            keep = ids >= 0
            if keep.any():
                parts.append(MOTData.from_arrays(np.full(keep.sum(), frame), ids[keep] + 1, out.xyxy[keep]).table)
        pairs[s.name] = SequenceData(s.gt, MOTData(np.concatenate(parts)) if parts else MOTData.empty(), s.num_frames)
    return set_summary(evaluate(pairs))


def camera_motion_cost(data: Path, frames: int = 100) -> float:
    """Milliseconds per frame of ``camera_motion="affine"`` (PETS09 frames, decoding excluded)."""
    import cv2

    from deepsort_edge.tracking.camera_motion import CameraMotionEstimator

    seq = MOTSequence.from_folder(data / PETS09)
    images = [cv2.imread(str(seq.image_path(f))) for f in range(1, frames + 1)]
    estimator = CameraMotionEstimator()
    estimator.estimate(images[0])
    start = time.thread_time()
    for image in images[1:]:
        estimator.estimate(image)
    return 1000 * (time.thread_time() - start) / (frames - 1)


# --------------------------------------------------------------------------- tables
# README's summary keeps to these (the full table goes to docs/benchmarks.md).
README_SETS = ("pets-acf", "pets-frcnn", "pets-shipped", "pets-acf-shipped", "mot17-app", "mot17", "tud",
               "sim-pets-clean", "hog-pets")


def cell(m: dict[str, float] | None) -> str:
    return "-" if m is None else f"{m['HOTA']:.1f} / {m['IDF1']:.1f} / {m['IDSW']}"


def regret(results: dict[str, dict[str, dict[str, float] | None]], config: str,
           sets: tuple[str, ...] = REPORT_SETS) -> tuple[dict[str, float], float]:
    """HOTA below the best evaluated configuration, per set (those ``config`` ran), and the worst case.

    Callers leave out offline post-processing (interpolation) and other trackers.
    """
    per_set = {}
    for s in sets:
        if results[config].get(s) is None:
            continue
        scores = [r[s]["HOTA"] for r in results.values() if r.get(s) is not None]
        per_set[s] = max(scores) - results[config][s]["HOTA"]
    return per_set, max(per_set.values(), default=0.0)


def targets(d: dict[str, dict[str, float]]) -> list[tuple[str, bool]]:
    """The quality targets of the defaults that the sets run allow to check."""
    checks: list[tuple[str, Any]] = [
        ("PETS09 ACF: HOTA >= 54, IDF1 >= 75, IDSW <= 40", ("pets-acf",),
         lambda a: a["HOTA"] >= 54 and a["IDF1"] >= 75 and a["IDSW"] <= 40),
        ("PETS09 Faster R-CNN: HOTA >= 47, IDF1 >= 69, IDSW <= 45", ("pets-frcnn",),
         lambda a: a["HOTA"] >= 47 and a["IDF1"] >= 69 and a["IDSW"] <= 45),
        ("MOT17 synthetic appearance: HOTA >= 50 and >= motion-only + 1.5", ("mot17-app", "mot17"),
         lambda a, m: a["HOTA"] >= 50 and a["HOTA"] >= m["HOTA"] + 1.5),
        ("MOT17 motion only: HOTA >= 48.0", ("mot17",), lambda m: m["HOTA"] >= 48.0),
        ("shipped model, PETS09 ACF: HOTA >= 56, IDSW <= 42", ("pets-acf-shipped",),
         lambda a: a["HOTA"] >= 56 and a["IDSW"] <= 42),
        ("shipped model, PETS09 Faster R-CNN: HOTA >= 45, IDSW <= 79 and <= motion only + 10",
         ("pets-shipped", "pets-frcnn-motion"),
         lambda a, m: a["HOTA"] >= 45 and a["IDSW"] <= 79 and a["IDSW"] <= m["IDSW"] + 10),
        ("clean detector (PETS09, OSNet): appearance adds <= 5 IDSW over motion only",
         ("sim-pets-clean", "sim-pets-clean-motion"), lambda a, m: a["IDSW"] <= m["IDSW"] + 5),
    ]
    return [(text, bool(rule(*[d[x] for x in need]))) for text, need, rule in checks
            if all(d.get(x) is not None for x in need)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py quality", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser, name="quality", sets=None)
    parser.add_argument("--select", action="store_true", help="rerun the default-selection grid")
    parser.add_argument("--readme", action="store_true", help="rewrite README's generated quality table")
    parser.add_argument("--no-ablation", action="store_true", help="presets only")
    args = parser.parse_args(argv)
    asked = data_and_sets(args.sets)
    data, wanted = asked
    if args.readme and args.sets is not None:
        print("bench.py quality: error: --readme needs every set (drop --sets)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    sets = split_sets(load_sets(data, args.cache_dir))
    report = tuple(s for s in wanted if s in sets)
    configs: dict[str, dict[str, Any]] = {f"preset {name}": {"preset": name} for name in PRESETS}
    if not args.no_ablation:
        configs.update({f"default, {label}": change for label, change in ABLATION.items()})
    results: dict[str, dict[str, dict[str, float] | None]] = {}
    from tqdm import tqdm

    for label, settings in tqdm(configs.items(), desc="configurations", file=sys.stderr):
        results[label] = {s: run_config(sets[s], settings) for s in report}
    results["default + interpolate 20"] = {s: run_config(sets[s], {}, interpolate=20) for s in report}
    for kind in ("sort", "bytetrack"):
        row = {s: run_roboflow(sets[s], kind) if s in ("mot17", "tud") else None for s in report}
        if any(v is not None for v in row.values()):
            results[f"roboflow trackers {kind} (motion only)"] = row

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=float) + "\n", encoding="utf-8")
    rows = [[label, *[cell(r.get(s)) for s in report]] for label, r in results.items()]
    table = md_table(["configuration (HOTA / IDF1 / IDSW)", *report], rows)

    presets = [f"preset {name}" for name in PRESETS]
    online = {k: v for k, v in results.items() if not k.startswith(("roboflow trackers", "default + "))}

    def regret_table(columns: tuple[str, ...]) -> str:
        lines = []
        for p in presets:
            per_set, worst = regret(online, p, columns)
            lines.append([p, *[f"{per_set[s]:.1f}" if s in per_set else "refused" for s in columns],
                          f"**{worst:.1f}**"])
        return md_table(["preset (HOTA regret)", *columns, "worst"], lines)

    checks = targets(results["preset default"])
    held_sets = tuple(s for s in HELD_OUT_SETS if s in sets and s.split(":")[0] in report)
    selection = tuple(s for s in SELECTION_SETS if s in sets and s.split(":")[0] in report)
    split = {s: run_config(sets[s], {}) for s in (*selection, *held_sets)}
    split_table = md_table(["default on", *split], [["HOTA / IDF1 / IDSW", *[cell(m) for m in split.values()]]])
    skipped = [s for s in wanted if s not in sets]
    parts = [
        "#### All sets (frame rate from seqinfo.ini; HOTA / IDF1 / IDSW, TrackEval)", "", table, "",
        *([f"Not run (unavailable here): {', '.join(skipped)}.", ""] if skipped else []),
        "#### Regret: HOTA below the best online configuration above, per set", "", regret_table(report), "",
        "#### Defaults on the selection sets vs the held-out sets", "", split_table, "",
        "#### Targets (defaults)", "",
        *[f"- **{'PASS' if ok else 'FAIL'}** {text}" for text, ok in checks], "",
    ]
    try:
        parts += [f"Camera-motion compensation (`camera_motion=\"affine\"`): "
                  f"{camera_motion_cost(data):.1f} ms a PETS09 frame (768x576, CPU time, one thread).", ""]
    except Exception as exc:  # noqa: BLE001  (the cost line is information only)
        parts += [f"Camera-motion cost not measured: {exc}", ""]
    # Its own docs block: a --readme run without --select leaves the last selection in place.
    selected = "\n".join(select_defaults(sets, report, args.out.with_name("grid.json"))) + "\n" if args.select else ""
    parts.append(generated_by("python tools/bench.py quality", time.perf_counter() - started, "Default settings",
                              TrackerSettings().to_dict()))
    text = "\n".join(parts) + "\n"
    print(text + selected)
    args.out.write_text(text + selected, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=float) + "\n", encoding="utf-8")
    if args.readme:
        readme = tuple(s for s in README_SETS if s in report)
        summary_rows = [[label, *[cell(r.get(s)) for s in readme]] for label, r in results.items()
                        if label.startswith(("preset", "roboflow trackers", "default + "))]
        summary = "\n".join([
            md_table(["configuration (HOTA / IDF1 / IDSW)", *readme], summary_rows), "",
            regret_table(readme), "",
            *[f"- **{'PASS' if ok else 'FAIL'}** {t}" for t, ok in checks], "",
        ])
        write_readme(summary, text, selected)
    return 0 if all(ok for _, ok in checks) else 1


def select_defaults(sets: dict[str, list[Sequence]], report: tuple[str, ...], save: Path | None = None) -> list[str]:
    """The grid over GRID on every set run, ranked by worst-case regret (HOTA below the grid's best per set).

    A configuration that refuses a set's scores ranks after every one that runs them all.
    ``save``: also write every grid result there (JSON).
    """
    from tqdm import tqdm

    base = {name: value for name, value in TrackerSettings().to_dict().items() if name in GRID}
    grid: dict[str, dict[str, dict[str, float] | None]] = {}
    for values in tqdm(list(itertools.product(*GRID.values())), desc="selection grid", file=sys.stderr):
        settings = dict(zip(GRID, values))
        grid[", ".join(f"{k}={v}" for k, v in settings.items())] = {s: run_config(sets[s], settings) for s in report}
    if save is not None:
        save.write_text(json.dumps(grid, indent=2, default=float) + "\n", encoding="utf-8")

    def rank_key(label: str) -> tuple[int, float, str]:
        refused = sum(grid[label][s] is None for s in report)
        return refused, regret(grid, label, report)[1], label

    scored = sorted(grid, key=rank_key)
    best = scored[0]
    base_label = ", ".join(f"{k}={v}" for k, v in base.items())  # in the grid: GRID holds every default

    def loss(label: str) -> float:  # the largest HOTA loss against the shipped defaults, over the sets
        return max((grid[base_label][x]["HOTA"] - grid[label][x]["HOTA"] for x in report
                    if grid[label][x] is not None and grid[base_label][x] is not None), default=float("nan"))

    rows = [[label, f"{rank_key(label)[1]:.2f}", f"{loss(label):.2f}", *[cell(grid[label][x]) for x in report]]
            for label in scored[:10]]
    refusing = [label for label in scored if rank_key(label)[0]]
    return [
        "#### Default selection (grid on every set, ranked by worst-case regret)", "",
        md_table(["settings", "worst regret", "largest loss vs shipped", *report], rows), "",
        f"Shipped defaults ({base_label}): worst-case regret "
        f"{rank_key(base_label)[1]:.2f}" + (f", refusing {rank_key(base_label)[0]} set(s)" if rank_key(base_label)[0] else "")
        + f"; the grid's best: {rank_key(best)[1]:.2f} ({best}). "
        + (f"{len(refusing)} configurations refuse some set's scores." if refusing else ""), "",
    ]


def write_readme(summary: str, full: str, selected: str) -> None:
    """Replace README's generated quality block with ``summary``, docs/benchmarks.md's with ``full`` and,
    when the grid ran (``selected``), its default-selection block."""
    replace_block(REPO / "README.md", "quality-table", summary)
    replace_block(REPO / "docs" / "benchmarks.md", "quality-full", full)
    if selected:
        replace_block(REPO / "docs" / "benchmarks.md", "quality-selection", selected)



