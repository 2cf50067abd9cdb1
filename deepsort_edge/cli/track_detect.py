"""``deepsort-edge track SOURCE --detector MODEL.onnx|hog``: detect, embed and track from frames.

SOURCE is a video file, a folder of images, a MOTChallenge sequence folder
(its ``img1/``; ``det/det.txt`` is not used), a camera index (``0``) or a
stream URL (``rtsp://``, ``http://``, ...). Reading, detection + embedding and
tracking + writing overlap through bounded buffers
(:func:`deepsort_edge.streams.detect_track.detect_and_track`); from a camera or stream
the oldest waiting frame is dropped when the pipeline falls behind, and the
progress line and the summary count them. Ctrl-C ends the run cleanly: the
results (and video) up to then are kept, ``interrupted`` is set in the summary.
``--save-detections det.txt`` writes every detection in MOT format, so that
tracking can be rerun alone (``track VIDEO --detections det.txt``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.cli.errors import check_output_path
from deepsort_edge.cli.track_one import InputError, build_extractor, settings_that_ran, tracker_kwargs
from deepsort_edge.cli.track_one import warn as _warn
from deepsort_edge.io.mot import MOTResultWriter, MOTSequence
from deepsort_edge.io.video import (
    VIDEO_SUFFIXES,
    FrameSource,
    ImageFilesSource,
    ImageFolderSource,
    StreamSource,
    TrackAnnotator,
    VideoError,
    VideoSource,
    is_live_source,
    open_video_writer,
)

__all__ = ["build_detector", "format_detect_summary", "track_with_detector"]

_WINDOW = "deepsort-edge"


def build_detector(args: argparse.Namespace) -> Any:
    """The detector ``--detector`` names, with ``--classes`` / ``--detector-*`` applied."""
    from deepsort_edge import detection  # noqa: PLC0415

    spec = str(args.detector)
    kwargs: dict[str, Any] = {}
    if args.detector_threshold is not None:
        if not 0.0 <= args.detector_threshold <= 1.0:
            raise InputError(f"--detector-threshold must be in [0, 1], got {args.detector_threshold:g}")
        kwargs["score_threshold"] = args.detector_threshold
    if spec.lower().partition(":")[0] == "hog":
        if args.classes is not None and any(c not in ("person", "0") for c in args.classes):
            raise InputError(f"--classes: the hog detector finds only people, got {' '.join(args.classes)}")
        if args.detector_layout is not None:
            raise InputError("--detector-layout applies to ONNX models, not hog")
    else:
        if not Path(spec).is_file():
            raise InputError(f"--detector {spec}: no such file (give an ONNX model or 'hog')")
        if args.provider:
            kwargs["providers"] = args.provider if len(args.provider) > 1 else args.provider[0]
        if args.classes is not None:
            kwargs["classes"] = args.classes
        if args.detector_layout is not None:
            kwargs["layout"] = args.detector_layout
    try:
        return detection.load_detector(spec, **kwargs)
    except ImportError as exc:
        raise InputError(f"--detector {spec}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"--detector {spec}: {exc}") from None


def _open_source(args: argparse.Namespace) -> tuple[str, FrameSource, float | None]:
    """``(name, frame source, frame rate or None)`` for SOURCE."""
    spec = args.source
    try:
        if isinstance(spec, str) or is_live_source(spec):
            source: FrameSource = StreamSource(str(spec), args.max_frames)
            name = f"camera{spec}" if str(spec).isdigit() else "stream"
            return name, source, source.fps
        path = Path(spec)
        if path.is_dir():
            seq = MOTSequence.from_folder(path)
            if seq.image_dir is not None:
                frames = seq.num_frames or 0
                if args.max_frames is not None:
                    frames = min(frames, args.max_frames)
                rate = seq.info.frame_rate if seq.info is not None else None
                return seq.name, ImageFolderSource(seq, frames), rate
            source = ImageFilesSource(path, args.max_frames)
            if source.num_frames == 0:
                raise InputError(f"{path} holds no images (nor an img1/ folder)")
            return path.name, source, None
        if not path.exists():
            raise InputError(f"input not found: {path}")
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"{path} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}), a folder, "
                             "a camera index or a stream URL")
        source = VideoSource(path, args.max_frames)
        return path.stem, source, source.fps
    except VideoError as exc:
        raise InputError(str(exc)) from None


def _check_detector_outputs(args: argparse.Namespace, output: Path) -> None:
    """Before any work: every output can be written and none is the input."""
    source = Path(args.source).resolve() if not isinstance(args.source, str) else None
    for path, option in ((output, "-o/--output"), (args.summary, "--summary"), (args.video_out, "--video-out"),
                         (args.save_detections, "--save-detections")):
        if path is None:
            continue
        check_output_path(path, option)
        if source is not None and path.resolve() == source:
            raise InputError(f"{option} {path} is the input of this run; it would be overwritten")


def _check_display() -> None:
    import cv2  # noqa: PLC0415

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("--show needs a display, and none is set (DISPLAY/WAYLAND_DISPLAY); "
                         "use --video-out to save the tracked video instead")
    try:
        cv2.namedWindow(_WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error:
        raise InputError("--show needs OpenCV with GUI support (opencv-python, not opencv-python-headless); "
                         "use --video-out instead") from None


def track_with_detector(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``track SOURCE --detector ...`` as ``args`` says; returns the JSON-ready summary.

    Raises:
        InputError: a problem with the input, the detector or an output.
    """
    if args.detections is not None:
        raise InputError("give --detector or --detections, not both")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.interpolate < 0:
        raise InputError(f"--interpolate must be >= 0, got {args.interpolate}")
    if args.workers is not None or args.ray is not None:
        _warn("--workers and --ray apply to a folder of several inputs with detections; ignored")
    if args.score_scale is not None or args.score_norm != "none":
        _warn("--score-norm and --score-scale apply to --detections files; with --detector "
              "use --detector-threshold")
    detector = build_detector(args)
    name, source, rate = _open_source(args)
    live = source.kind == "live"
    output = args.output or Path("runs") / "track" / f"{name}.txt"
    try:
        _check_detector_outputs(args, output)
        if args.show:
            _check_display()
        frame_rate = args.frame_rate or rate or 30.0
        if args.frame_rate is None and rate is None:
            _warn(f"{args.source} reports no frame rate: assuming 30 fps (give --frame-rate)")
        appearance = not args.no_appearance
        from deepsort_edge import DeepSORTTracker  # noqa: PLC0415  (numba: import only when tracking)

        try:
            extractor = build_extractor(args) if appearance else None
            tracker = DeepSORTTracker(feature_extractor=None, frame_rate=frame_rate,
                                      use_appearance=None if appearance else False, **tracker_kwargs(args))
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None
        tracker.warmup()
        return _run(args, detector, extractor, tracker, source, name, output, frame_rate, live)
    finally:
        source.close()


def _run(args: argparse.Namespace, detector: Any, extractor: Any, tracker: Any, source: FrameSource,
         name: str, output: Path, frame_rate: float, live: bool) -> dict[str, Any]:
    import cv2  # noqa: PLC0415

    from deepsort_edge.streams.detect_track import detect_and_track  # noqa: PLC0415

    try:
        writer = MOTResultWriter(output)
        det_writer = MOTResultWriter(args.save_detections) if args.save_detections is not None else None
    except OSError as exc:
        raise InputError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None
    annotator = TrackAnnotator() if (args.video_out is not None or args.show) else None
    video = None
    video_path = None

    def on_frame(frame: int, image: np.ndarray | None, xyxy: np.ndarray, scores: np.ndarray,
                 ids: np.ndarray, found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        nonlocal video, video_path
        writer.write(frame, ids, xyxy, scores)
        if det_writer is not None:
            det_writer.write_detections(frame, found[0], found[1])
        if annotator is None or image is None:
            return
        shown = annotator(image, xyxy, ids)
        if args.video_out is not None:
            if video is None:
                video, video_path = open_video_writer(args.video_out, source.fps or frame_rate,
                                                      (image.shape[1], image.shape[0]))
            video.write(shown)
        if args.show:
            cv2.imshow(_WINDOW, shown)
            if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                raise KeyboardInterrupt  # Esc or q: stop as Ctrl-C does

    from ..optional import progress_bar  # noqa: PLC0415

    bar = progress_bar(total=source.num_frames or None, unit="frame", desc=name, file=sys.stderr,
               disable=True if args.no_progress else None, leave=False)
    start = time.perf_counter()
    writers = [w for w in (writer, det_writer) if w is not None]
    try:
        stats = detect_and_track(source, detector, tracker, extractor, on_frame, live=live, progress=bar)
    except BaseException as exc:
        for w in writers:
            w.discard()  # no truncated results file: the output is complete or untouched
        if isinstance(exc, OSError):
            raise InputError(f"writing failed: {exc.strerror or exc}") from None
        raise
    finally:
        bar.close()
        if video is not None:
            video.release()
        if args.show:
            cv2.destroyAllWindows()
    try:
        for w in writers:
            w.close()
    except OSError as exc:  # a full disk often shows only here, when the buffer is flushed
        for w in writers:
            w.discard()
        raise InputError(f"writing failed: {exc.strerror or exc}") from None
    elapsed = time.perf_counter() - start
    if args.interpolate:
        from deepsort_edge.tracking.interpolation import interpolate_gaps  # noqa: PLC0415
        from deepsort_edge.io.mot import read_mot, write_mot  # noqa: PLC0415

        filled = interpolate_gaps(read_mot(output), args.interpolate)
        stats.rows = len(filled)
        write_mot(output, filled)
    if stats.frames_tracked == 0 and not stats.interrupted:
        raise InputError(f"could not read any frame from {args.source}")
    if stats.unreadable:
        _warn(f"{len(stats.unreadable)} frame(s) could not be decoded and were tracked without detections")
    return {
        "input": str(args.source),
        "mode": source.kind,
        "sequence": name,
        "detector": repr(detector),
        "appearance": extractor is not None,
        "model": (str(args.model) if args.model else "default") if extractor is not None else None,
        "frame_rate": frame_rate,
        **stats.as_dict(),
        "elapsed_s": round(elapsed, 3),
        "unreadable_frames": stats.unreadable,
        "tracker": settings_that_ran(args, tracker),
        "outputs": {
            "results": str(output),
            "detections": str(args.save_detections) if args.save_detections else None,
            "video": str(video_path) if video_path else None,
            "summary": str(args.summary) if args.summary else None,
        },
    }


def format_detect_summary(summary: dict[str, Any]) -> str:
    """The human-readable end of a ``--detector`` run."""
    t = summary["time_s"]
    mode = {"images": "image folder", "video": "video", "live": "live source"}[summary["mode"]]
    appearance = f"appearance from {summary['model']} model" if summary["appearance"] else "motion only"
    fps = f"{summary['fps']:,.1f} fps" if summary["fps"] else "n/a"
    lines = [
        f"Tracked {summary['sequence']} ({mode}, {summary['detector']}, {appearance}): {summary['frames']} "
        f"frames of {summary['frames_read']} read ({summary['dropped_frames']} dropped), "
        f"{summary['detections']} detections -> {summary['tracks']} tracks, {summary['result_rows']} result rows",
        f"  time:    read {t['read']:.2f} s, detect {t['detect']:.2f} s, embed {t['embed']:.2f} s, "
        f"track {t['track']:.2f} s, writing {t['output']:.2f} s; overlapped {t['wall']:.2f} s ({fps})",
        f"  results: {summary['outputs']['results']}",
    ]
    for key, label in (("detections", "detections"), ("video", "video"), ("summary", "summary")):
        if summary["outputs"][key]:
            lines.append(f"  {label}: {summary['outputs'][key]}")
    if summary["interrupted"]:
        lines.append("  NOTE: interrupted (Ctrl-C): results up to then are kept")
    return "\n".join(lines)
