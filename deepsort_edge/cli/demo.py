"""``deepsort-edge demo``: the whole pipeline on a generated scene, no downloads.

A seeded synthetic scene (:mod:`deepsort_edge.demo.synthetic`) of people-like
figures that walk, cross and hide each other is rendered to frames
(:mod:`deepsort_edge.demo.scene`); a simulated detector sees each figure with
box noise and random misses, and misses figures that are mostly hidden
(visible fraction below 35 %); the shipped default embedder and the tracker
run on the frames; the annotated video, a still, the MOT files and the
metrics against the generated ground truth are written to ``--output-dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.demo.scene import DEMO_SIZE, FIGURE_SCALE
from deepsort_edge.optional import progress_bar

PROG = "deepsort-edge demo"
(WIDTH, HEIGHT), FPS = DEMO_SIZE, 30.0
MIN_VISIBLE = 0.35
# Two pillars in front of the walkers: people pass behind them unseen for a
# while, which motion alone bridges less well than appearance.
PILLARS = np.array([[150.0, 0.0, 200.0, 360.0], [430.0, 0.0, 480.0, 360.0]])


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a generated scene (no downloads)",
        description=(
            "Generate a seeded scene of walking, crossing and occluding people-like figures, "
            "detect them with noise and misses, embed them with the shipped model, track them "
            "and score the result against the generated ground truth."
        ),
    )
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "demo",
                        help="where to write demo.mp4, demo.png, MOT files and metrics "
                             "(default: runs/demo)")
    parser.add_argument("--frames", type=int, default=150, help="frames to generate (default: 150)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed (default: 0)")
    parser.add_argument("--objects", type=int, default=9, help="people in the scene (default: 9)")
    parser.add_argument("--no-video", action="store_true", help="do not write the annotated video")
    parser.add_argument("--no-appearance", action="store_true",
                        help="motion only (to compare with the appearance run)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_scene(frames: int, seed: int, objects: int) -> tuple[list[Any], Any, Any]:
    """Generate the scene; returns ``(frames, detections MOTData, ground truth MOTData)``."""
    from deepsort_edge.demo.scene import box_visibility, scale_boxes  # noqa: PLC0415
    from deepsort_edge.io.mot import MOTData  # noqa: PLC0415
    from deepsort_edge.demo.synthetic import SceneConfig, generate_scene  # noqa: PLC0415

    cfg = SceneConfig(
        num_objects=objects, width=WIDTH, height=HEIGHT, seed=seed, turnover=0.004,
        miss_rate=0.04, box_noise=1.5, false_positive_rate=0.01, max_speed=6.0,
    )
    scene = generate_scene(cfg, frames)
    det_rows, gt_rows = [], []
    for frame in scene:
        gt_xyxy = scale_boxes(frame.gt_xyxy, FIGURE_SCALE)
        visible = box_visibility(gt_xyxy, WIDTH, HEIGHT, occluders=PILLARS)
        vis_by_id = dict(zip(frame.gt_ids.tolist(), visible.tolist(), strict=True))
        gt_rows.append((np.full(len(frame.gt_ids), frame.index), frame.gt_ids, gt_xyxy, visible))
        # A detector misses people it can barely see; false positives (id -1) stay.
        seen = np.array([vis_by_id.get(int(g), 1.0) >= MIN_VISIBLE for g in frame.det_gt_ids], bool)
        det = scale_boxes(frame.xyxy, FIGURE_SCALE)[seen]
        det_rows.append((np.full(len(det), frame.index), np.full(len(det), -1), det,
                         frame.scores[seen]))
    detections = MOTData.from_arrays(
        np.concatenate([r[0] for r in det_rows]), np.concatenate([r[1] for r in det_rows]),
        np.concatenate([r[2] for r in det_rows]), scores=np.concatenate([r[3] for r in det_rows]),
    )
    gt = MOTData.from_arrays(
        np.concatenate([r[0] for r in gt_rows]), np.concatenate([r[1] for r in gt_rows]),
        np.concatenate([r[2] for r in gt_rows]), classes=np.ones(sum(len(r[1]) for r in gt_rows)),
        visibility=np.concatenate([r[3] for r in gt_rows]),
    )
    return scene, detections, gt


def _argument_error(args: argparse.Namespace) -> str | None:
    """The first bad argument's message, or None."""
    if args.frames < 2:
        return f"--frames must be >= 2, got {args.frames}"
    if args.objects < 1:
        return f"--objects must be >= 1, got {args.objects}"
    if args.seed < 0:
        return f"--seed must be >= 0, got {args.seed}"
    return None


def write_sequence(out_dir: Path, detections: Any, gt: Any, frames: int) -> None:
    """Write the scene as a MOTChallenge sequence folder (no img1/): ``track`` and ``eval`` take it as is."""
    from deepsort_edge.io.mot import write_mot  # noqa: PLC0415

    write_mot(out_dir / "det" / "det.txt", detections)
    write_mot(out_dir / "gt" / "gt.txt", gt)
    (out_dir / "seqinfo.ini").write_text(
        f"[Sequence]\nname=demo\nimDir=img1\nframeRate={FPS:g}\nseqLength={frames}\n"
        f"imWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n", encoding="utf-8",
    )


def _track_scene(
    args: argparse.Namespace, scene: list[Any], detections: Any, tracker: Any, extractor: Any, out_dir: Path
) -> tuple[Any, Any, Path | None]:
    """Render, embed and track every frame; write the video and the still.

    Returns:
        ``(stats, results MOTData, video path or None)``.
    """
    import cv2  # noqa: PLC0415

    from deepsort_edge.demo.scene import SceneRenderer, scale_boxes  # noqa: PLC0415
    from deepsort_edge.io.mot import MOTData  # noqa: PLC0415
    from deepsort_edge.io.video import TrackAnnotator, open_video_writer  # noqa: PLC0415
    from deepsort_edge.streams.pipeline import track_frames  # noqa: PLC0415

    renderer = SceneRenderer(WIDTH, HEIGHT, seed=args.seed, occluders=PILLARS)

    def frames():
        for frame in scene:
            yield frame.index, renderer.render(frame.index, frame.gt_ids,
                                               scale_boxes(frame.gt_xyxy, FIGURE_SCALE))

    annotator = TrackAnnotator()
    still_frame = max(1, (2 * args.frames) // 3)
    video = None
    video_path = None
    result_rows: list[np.ndarray] = []

    def on_frame(frame: int, image: np.ndarray | None, xyxy: np.ndarray,
                 scores: np.ndarray, ids: np.ndarray) -> None:
        nonlocal video, video_path
        keep = ids >= 1
        if keep.any():
            result_rows.append(MOTData.from_arrays(np.full(keep.sum(), frame), ids[keep],
                                                   xyxy[keep], scores[keep]).table)
        annotated = annotator(image, xyxy, ids)
        if not args.no_video:
            if video is None:
                video, video_path = open_video_writer(out_dir / "demo.mp4", FPS, (WIDTH, HEIGHT))
            video.write(annotated)
        if frame == still_frame:
            cv2.imwrite(str(out_dir / "demo.png"), annotated)

    bar = progress_bar(total=args.frames, unit="frame", desc="demo", file=sys.stderr,
               disable=True if args.no_progress else None, leave=False)
    try:
        stats = track_frames(frames(), detections, tracker, extractor, on_frame, bar)
    finally:
        bar.close()
        if video is not None:
            video.release()
    results = MOTData(np.concatenate(result_rows)) if result_rows else MOTData.empty()
    return stats, results, video_path


def motion_only_metrics(detections: Any, gt: Any, frames: int) -> dict[str, Any]:
    """Metrics of the same detections tracked on motion alone (no frames needed; a fraction of a second)."""
    from deepsort_edge import DeepSORTTracker  # noqa: PLC0415
    from deepsort_edge.io.evaluation import evaluate_sequence  # noqa: PLC0415
    from deepsort_edge.io.mot import MOTData  # noqa: PLC0415
    from deepsort_edge.io.video import FrameSource  # noqa: PLC0415
    from deepsort_edge.streams.pipeline import track_frames  # noqa: PLC0415

    motion_rows: list[np.ndarray] = []

    def keep_rows(frame: int, image: np.ndarray | None, xyxy: np.ndarray,
                  scores: np.ndarray, ids: np.ndarray) -> None:
        ok = ids >= 1
        if ok.any():
            motion_rows.append(MOTData.from_arrays(np.full(ok.sum(), frame), ids[ok], xyxy[ok]).table)

    track_frames(FrameSource(frames), detections,
                 DeepSORTTracker(frame_rate=FPS, use_appearance=False), None, keep_rows)
    motion = MOTData(np.concatenate(motion_rows)) if motion_rows else MOTData.empty()
    return evaluate_sequence(gt, motion, num_frames=frames)


def _print_summary(
    args: argparse.Namespace, summary: dict[str, Any], detections: int, model_note: str, total_s: float
) -> None:
    from deepsort_edge.io.evaluation import format_table  # noqa: PLC0415

    out_dir: Path = args.output_dir
    metrics, motion_metrics = summary["metrics"], summary["motion_only_metrics"]
    t = summary["time_s"]
    print(f"deepsort-edge demo: {args.frames} frames of {WIDTH}x{HEIGHT}, {args.objects} people "
          f"(seed {args.seed}), {detections} detections, {model_note}")
    if metrics is not None:
        rows = {"demo" if not summary["appearance"] else "demo, appearance": metrics}
        if motion_metrics is not None:
            rows["demo, motion only"] = motion_metrics
        print(format_table(rows, ("HOTA", "MOTA", "IDF1", "IDSW", "Frag", "FP", "FN", "IDs", "GT_IDs")))
    print(f"time: render {t['decode']:.1f} s, embed {t['embed']:.1f} s, track {t['track']:.2f} s, "
          f"warm-up {t['warmup']:.1f} s, total {total_s:.1f} s")
    for label, key in (("video", "video"), ("still", "still"), ("results", "results")):
        if summary["outputs"][key]:
            print(f"{label + ':':8} {summary['outputs'][key]}")
    print(f"{'re-run:':8} deepsort-edge eval {out_dir} {out_dir / 'results.txt'}")


def run(args: argparse.Namespace) -> int:
    """Run ``deepsort-edge demo``; returns the exit status."""
    error = _argument_error(args)
    if error is not None:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    from deepsort_edge import DeepSORTTracker  # noqa: PLC0415
    from deepsort_edge.io.evaluation import evaluate_sequence  # noqa: PLC0415
    from deepsort_edge.io.mot import write_mot  # noqa: PLC0415

    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    scene, detections, gt = build_scene(args.frames, args.seed, args.objects)
    write_sequence(out_dir, detections, gt, args.frames)

    extractor = None
    model_note = "motion only"
    if not args.no_appearance:
        from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor  # noqa: PLC0415

        try:
            extractor = DeepSORTFeatureExtractor.default()
        except FileNotFoundError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        model_note = f"appearance from the shipped model ({extractor.feature_dim}-d), default settings"
    # The tracker's defaults: the demo shows what a user gets without tuning.
    settings = {} if extractor is not None else {"use_appearance": False}
    tracker = DeepSORTTracker(frame_rate=FPS, **settings)
    warm = time.perf_counter()
    tracker.warmup()
    warmup_s = time.perf_counter() - warm

    stats, results, video_path = _track_scene(args, scene, detections, tracker, extractor, out_dir)
    stats.warmup_s = warmup_s
    write_mot(out_dir / "results.txt", results)
    try:
        metrics = evaluate_sequence(gt, results, num_frames=args.frames)
    except ImportError as exc:
        metrics = None
        print(f"{PROG}: warning: metrics skipped: {exc}", file=sys.stderr)
    motion_metrics = None
    if metrics is not None and extractor is not None:
        motion_metrics = motion_only_metrics(detections, gt, args.frames)
    total_s = time.perf_counter() - started
    summary = {
        "frames": args.frames, "seed": args.seed, "objects": args.objects,
        "appearance": extractor is not None, **stats.as_dict(),
        "tracker_settings": settings, "wall_time_s": round(total_s, 2), "metrics": metrics,
        "motion_only_metrics": motion_metrics,
        "outputs": {
            "video": str(video_path) if video_path else None, "still": str(out_dir / "demo.png"),
            "results": str(out_dir / "results.txt"), "detections": str(out_dir / "det" / "det.txt"),
            "ground_truth": str(out_dir / "gt" / "gt.txt"),
        },
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _print_summary(args, summary, stats.detections, model_note, total_s)
    return 0
