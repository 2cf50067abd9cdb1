"""One input of ``deepsort-edge track``: plan it, check it, track it, summarise it.

:func:`track_input` is the single function behind both a single run and each
input of ``track DIR -o OUT_DIR`` (``cli/track_many.py``), so that their
results files are byte-identical. ``cli/track_options.py`` holds the options,
``cli/track.py`` the dispatch between the two.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.cli.track_options import NOT_OPTIONS
from deepsort_edge.cli.track_plan import (
    InputError,
    InputPlan,
    check_outputs,
    given_minimum_score,
    plan_input,
    prepare_detections,
)
from deepsort_edge.io.mot import (
    MOTData,
    MOTResultWriter,
    read_mot,
    write_mot,
)
from deepsort_edge.io.video import (
    FrameSource,
    TrackAnnotator,
    open_video_writer,
    prefetch,
)
from deepsort_edge.optional import progress_bar
from deepsort_edge.streams.pipeline import frames_to_step, track_frames
from deepsort_edge.tracking.score_calibration import check_given_scores

PROG = "deepsort-edge track"


# --------------------------------------------------------------------------- building blocks
def tracker_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The tracker options given on the command line (unset ones are left out), and ``preset``."""
    from deepsort_edge.tracking import settings  # noqa: PLC0415

    # Options left out are absent from args (argparse.SUPPRESS), so an explicit "none" stays None.
    names = [name for name in settings.names() if name not in NOT_OPTIONS]
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    if getattr(args, "preset", None) is not None:
        given["preset"] = args.preset
    return given


def settings_that_ran(args: argparse.Namespace, tracker: Any) -> dict[str, Any]:
    """A summary's ``tracker`` entry: the ``--preset`` asked for and every setting as the tracker holds it."""
    return {"preset": getattr(args, "preset", None), **tracker.settings.to_dict()}


def build_extractor(args: argparse.Namespace) -> Any:
    """A ``DeepSORTFeatureExtractor`` from ``--model`` (ONNX) or the shipped default."""
    from deepsort_edge.appearance.embedder import DeepSORTFeatureExtractor  # noqa: PLC0415

    kwargs: dict[str, Any] = {}
    if args.provider:
        kwargs["providers"] = args.provider if len(args.provider) > 1 else args.provider[0]
    if args.input_size is not None:
        kwargs["input_size"] = tuple(args.input_size)
    if args.mean is not None:
        kwargs["mean"] = tuple(args.mean)
    if args.std is not None:
        kwargs["std"] = tuple(args.std)
    if args.color_order is not None:
        kwargs["color_order"] = args.color_order
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if args.model is not None:
        if not args.model.is_file():
            raise InputError(f"model not found: {args.model}")
        return DeepSORTFeatureExtractor.from_onnx(args.model, **kwargs)
    return DeepSORTFeatureExtractor.default(**kwargs)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


ProgressFactory = Callable[[int | None, str], Any]


def _check_numbers(args: argparse.Namespace) -> None:
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.interpolate < 0:
        raise InputError(f"--interpolate must be >= 0, got {args.interpolate}")
    if args.frame_rate is not None and not (math.isfinite(args.frame_rate) and args.frame_rate > 0):
        raise InputError(f"--frame-rate must be a positive number, got {args.frame_rate:g}")


def _fit_source(args: argparse.Namespace, source: FrameSource, detections: MOTData, warnings: list[str]) -> None:
    """Set the frame count of a detections-only run; warn where the detections outrun the sequence."""
    if source.kind == "detections" and source.num_frames == 0:
        source.num_frames = detections.last_frame
    if source.kind != "video" and args.max_frames is None and detections.last_frame > source.num_frames:
        warnings.append(
            f"detections go to frame {detections.last_frame} but the sequence has {source.num_frames} "
            f"frames ({source.length_source or 'its length'}): frames {source.num_frames + 1}-"
            f"{detections.last_frame} are not tracked"
        )
    if source.kind == "detections" and args.max_frames is not None:
        source.num_frames = min(source.num_frames, args.max_frames)
    if args.video_out is not None and source.kind == "detections":
        raise InputError("--video-out needs frames: give a sequence folder with img1/ or a video")


def _size_warning(source: FrameSource, detections: MOTData, warnings: list[str]) -> None:
    """Warn when the boxes reach well past the frames (detections made at another resolution)."""
    if source.kind != "detections" and source.size is not None and len(detections):
        far = detections.xyxy[:, 2:].max(axis=0)
        width, height = source.size
        if far[0] > 1.25 * width or far[1] > 1.25 * height:
            warnings.append(
                f"detections reach ({far[0]:.0f}, {far[1]:.0f}) but frames are {width}x{height}: "
                "are the detections for another resolution?"
            )


def _frame_rate(args: argparse.Namespace, plan: InputPlan, warnings: list[str]) -> float:
    """``--frame-rate``, else the input's own, else 30 (with a warning for a video that reports none)."""
    if args.frame_rate is not None:
        return args.frame_rate
    if plan.frame_rate is not None:
        return plan.frame_rate
    if plan.source.kind == "video":
        warnings.append(f"{args.source} reports no frame rate: assuming 30 fps (give --frame-rate)")
    return 30.0


def _build_tracker(
    args: argparse.Namespace, plan: InputPlan, detections: MOTData, appearance: bool, frame_rate: float
) -> tuple[Any, Any]:
    """``(extractor or None, tracker)``, the detections' scores checked against the tracker's score rule."""
    from deepsort_edge import DeepSORTTracker  # noqa: PLC0415  (numba: import only when tracking)

    try:
        extractor = build_extractor(args) if appearance else None
        tracker = DeepSORTTracker(
            feature_extractor=None,
            frame_rate=frame_rate,
            # None (auto) rather than True: every frame with detections gets embeddings here.
            use_appearance=None if appearance else False,
            **tracker_kwargs(args),
        )
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None
    try:  # the tracker's score rule, checked on the whole file before anything is written
        check_given_scores(tracker.settings, detections.scores)
    except ValueError as exc:
        raise InputError(f"bad detections file {plan.det_path}: {exc}") from None
    return extractor, tracker


def _track_to_file(
    args: argparse.Namespace, plan: InputPlan, output: Path, detections: MOTData, tracker: Any, extractor: Any,
    frame_rate: float, progress: ProgressFactory | None,
) -> tuple[Any, Path | None]:
    """Track every frame into the results file (complete or untouched) and the video; ``(stats, video path)``."""
    source = plan.source
    try:
        writer = MOTResultWriter(output)
    except OSError as exc:
        raise InputError(f"-o/--output {output}: cannot write ({exc.strerror or exc})") from None
    video = None
    annotator = TrackAnnotator() if args.video_out is not None else None
    video_path = None

    def on_frame(frame: int, image: np.ndarray | None, xyxy: np.ndarray,
                 scores: np.ndarray, ids: np.ndarray) -> None:
        nonlocal video, video_path
        try:
            writer.write(frame, ids, xyxy, scores)
        except OSError as exc:
            raise InputError(f"-o/--output {output}: writing failed ({exc.strerror or exc})") from None
        if annotator is not None and image is not None:
            if video is None:
                video, video_path = open_video_writer(
                    args.video_out, source.fps or frame_rate, (image.shape[1], image.shape[0])
                )
            video.write(annotator(image, xyxy, ids))

    if progress is None:
        def progress(total: int | None, name: str) -> Any:
            return progress_bar(total=total, unit="frame", desc=name, file=sys.stderr,
                        disable=True if args.no_progress else None, leave=False)

    bar = progress(source.num_frames or None, plan.name)
    try:
        # With images, decoding overlaps embedding and tracking (a reader thread).
        frames = prefetch(source) if source.kind != "detections" else source
        stats = track_frames(frames, detections, tracker, extractor, on_frame, bar)
    except BaseException as exc:
        writer.discard()  # no truncated results file: the output is complete or untouched
        if extractor is not None:
            from deepsort_edge.appearance.embedder import ModelError  # noqa: PLC0415  (already imported with the extractor)

            if isinstance(exc, ModelError):
                raise InputError(f"--model: {exc}") from None
        raise
    finally:
        bar.close()
        source.close()
        if video is not None:
            video.release()
    try:
        writer.close()
    except OSError as exc:  # a full disk often shows only here, when the buffer is flushed
        raise InputError(f"-o/--output {output}: writing failed ({exc.strerror or exc})") from None
    return stats, video_path


def _after_run(
    args: argparse.Namespace, source: FrameSource, detections: MOTData, stats: Any, warnings: list[str]
) -> bool:
    """Warn of frames that could not be decoded or that a video did not give; True if it ended early."""
    if source.unreadable:
        shown = ", ".join(map(str, source.unreadable[:10])) + (" ..." if len(source.unreadable) > 10 else "")
        warnings.append(
            f"{len(source.unreadable)} frame(s) could not be decoded and were tracked without "
            f"detections: {shown}"
        )
    if stats.frames == 0 and source.kind == "video":
        raise InputError(f"could not read any frame from {args.source}")
    if source.kind != "video":
        return False
    wanted = max(detections.last_frame, source.reported_frames or 0)
    if args.max_frames is not None:
        wanted = min(wanted, args.max_frames)
    if stats.frames >= wanted:
        return False
    reason = "the detections go" if detections.last_frame > stats.frames else "its header says it goes"
    warnings.append(
        f"video ended after {stats.frames} frames but {reason} to frame {wanted}: "
        f"frames {stats.frames + 1}-{wanted} were not tracked"
    )
    return True


def track_input(args: argparse.Namespace, progress: ProgressFactory | None = None) -> dict[str, Any]:
    """Track one input (sequence folder, video or detections file) as ``args`` says.

    The one function behind both a single run and each input of
    ``track DIR -o OUT_DIR``, so that their results files are byte-identical.

    Args:
        args: the parsed ``track`` options for this input.
        progress: ``progress(total_frames, name)`` returns a bar with
            ``update(n)`` and ``close()``; default a tqdm bar on stderr.

    Returns:
        The JSON-ready summary.

    Raises:
        InputError: a problem with the input.
    """
    _check_numbers(args)
    warnings: list[str] = []
    plan = plan_input(args, warnings)
    source = plan.source
    output = args.output or Path("runs") / "track" / f"{plan.name}.txt"
    check_outputs(args, output, plan.det_path)
    detections, det_in_file, score_note = prepare_detections(
        plan.det_path, given_minimum_score(args), args.score_norm, args.score_scale
    )
    _fit_source(args, source, detections, warnings)
    frame_rate = _frame_rate(args, plan, warnings)
    appearance = not args.no_appearance and source.kind != "detections"
    _size_warning(source, detections, warnings)
    extractor, tracker = _build_tracker(args, plan, detections, appearance, frame_rate)
    if source.kind == "detections":
        coast = tracker.maximum_frames_without_update + 1
        source.frames = frames_to_step(detections.frame_index(), source.num_frames, coast)
    start = time.perf_counter()
    tracker.warmup()
    warmup_s = time.perf_counter() - start
    stats, video_path = _track_to_file(args, plan, output, detections, tracker, extractor, frame_rate, progress)
    stats.warmup_s = warmup_s
    if args.interpolate:
        from deepsort_edge.tracking.interpolation import interpolate_gaps  # noqa: PLC0415

        filled = interpolate_gaps(read_mot(output), args.interpolate)
        stats.rows = len(filled)
        write_mot(output, filled)
    if source.kind == "detections":
        stats.frames = source.num_frames  # skipped frames were tracked too: nothing happened in them
    stopped_early = _after_run(args, source, detections, stats, warnings)
    for message in warnings:
        warn(message)

    summary = {
        "input": str(args.source),
        "mode": source.kind,
        "sequence": plan.name,
        "detections_file": str(plan.det_path),
        "detections_in_file": det_in_file,
        "score_note": score_note,
        "min_score": given_minimum_score(args),
        "interpolate": args.interpolate,
        "appearance": appearance,
        "model": (str(args.model) if args.model else "default") if appearance else None,
        "frame_rate": frame_rate,
        **stats.as_dict(),
        "unreadable_frames": source.unreadable,
        "stopped_early": stopped_early,
        "warnings": warnings,
        "tracker": settings_that_ran(args, tracker),
        "outputs": {
            "results": str(output),
            "video": str(video_path) if video_path else None,
            "summary": str(args.summary) if args.summary else None,
        },
    }
    return summary
