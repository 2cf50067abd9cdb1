"""One input of ``deepsort-edge track``: plan it, check it, track it, summarise it.

:func:`track_input` is the single function behind both a single run and each
input of ``track DIR -o OUT_DIR`` (``cli/track_many.py``), so that their
results files are byte-identical. ``cli/track_options.py`` holds the options,
``cli/track.py`` the dispatch between the two.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.cli.errors import UserError, check_output_path
from deepsort_edge.cli.track_options import NOT_OPTIONS
from deepsort_edge.io.mot import (
    MOTData,
    MOTFormatError,
    MOTResultWriter,
    MOTSequence,
    normalise_scores,
    read_mot,
    read_seqinfo,
    write_mot,
)

from deepsort_edge.optional import progress_bar
from deepsort_edge.streams.pipeline import frames_to_step, track_frames
from deepsort_edge.io.video import VIDEO_SUFFIXES as _VIDEO_SUFFIXES
from deepsort_edge.io.video import (
    FrameSource,
    ImageFolderSource,
    TrackAnnotator,
    VideoSource,
    open_video_writer,
    prefetch,
)

PROG = "deepsort-edge track"


class InputError(UserError):
    """A problem with the user's input: reported on stderr, exit status 2."""


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


def given_minimum_score(args: argparse.Namespace) -> float:
    """``--minimum-score`` (alias ``--min-score``) as given, 0 when unset or ``none``.

    The CLI drops rows below it before tracking (no crops are cut for them)
    and also hands it to the tracker, whose ``minimum_score`` then finds
    nothing more to drop.
    """
    value = getattr(args, "minimum_score", None)
    return 0.0 if value is None else float(value)


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


def prepare_detections(
    path: Path, min_score: float, score_norm: str, score_scale: float | None
) -> tuple[MOTData, int, str]:
    """Read a detections file, normalise scores and drop low ones.

    Returns:
        ``(detections kept, detections in the file, note on the scores)``.
    """
    if path.is_dir():
        raise InputError(f"detections file {path} is a folder")
    if not path.is_file():
        raise InputError(f"detections file not found: {path}")
    if score_scale is not None and not (math.isfinite(score_scale) and score_scale > 0):
        raise InputError(f"--score-scale must be a positive number, got {score_scale:g}")
    try:
        raw = read_mot(path)
        scores, note = normalise_scores(raw.scores, score_norm, score_scale)
    except (MOTFormatError, ValueError) as exc:
        raise InputError(f"bad detections file {path}: {exc}") from None
    if not 0.0 <= min_score <= 1.0:
        raise InputError(f"--minimum-score must be in [0, 1] (scores are in [0, 1] after --score-norm), got {min_score:g}")
    data = raw.with_scores(scores)
    if min_score > 0:
        data = data.select(data.table[:, 6] >= min_score)
    # Boxes that are not boxes would only be dropped by the tracker; say so once here.
    return data, len(raw), note


def results_name(path: Path, sequence: str | None = None) -> str:
    """``NAME`` of the default results file ``runs/track/NAME.txt`` for the input ``path``.

    The sequence's name (``seqinfo.ini``) if given, else the folder's name or
    the file's stem; a file named ``det`` (``SEQ/det/det.txt``, ``SEQ/det.txt``,
    ``./det.txt``) is named after the sequence folder that holds it. Never
    empty, hidden (``.txt``) or a path that would leave ``runs/track``.

    Example:
        >>> results_name(Path("MOT17-04-FRCNN/det/det.txt")), results_name(Path("clip.mp4"))
        ('MOT17-04-FRCNN', 'clip')
    """
    absolute = Path(os.path.abspath(path))  # "." and ".." folded away (links are not followed)
    if absolute.is_dir():
        own = absolute.name
    else:
        own = absolute.stem
        if own == "det":
            folder = absolute.parent.parent if absolute.parent.name == "det" else absolute.parent
            own = folder.name or own
    for name in (sequence, own):
        name = (name or "").strip().lstrip(".")
        if name and not any(c in name for c in "/\\\0"):
            return name
    return "track"


@dataclass
class InputPlan:
    """What one input is: its name, frame source, detections file and frame rate (None: unknown)."""

    name: str
    source: FrameSource
    det_path: Path
    frame_rate: float | None
    warnings: list[str]


def plan_input(args: argparse.Namespace, warnings: list[str]) -> InputPlan:
    """Work out the input mode, frame source and detection file."""
    src: Path = args.source
    if src.is_dir():
        seq = MOTSequence.from_folder(src)
        det_path = args.detections or seq.det_path
        if det_path is None:
            raise InputError(f"no detections: {src} has no det/det.txt and no --detections given")
        num_frames = seq.num_frames
        use_images = seq.image_dir is not None and not args.no_appearance
        if seq.image_dir is None and not args.no_appearance:
            warnings.append(f"{src} has no image folder: tracking motion-only")
        length_source = (
            f"seqLength in {seq.root / 'seqinfo.ini'}" if seq.info is not None else f"images in {seq.image_dir}"
        )
        if num_frames is None:
            num_frames = read_mot(det_path).last_frame if det_path.is_file() else 0
            length_source = ""
        if args.max_frames is not None:
            num_frames = min(num_frames, args.max_frames)
        if use_images or (args.video_out is not None and seq.image_dir is not None):
            source: FrameSource = ImageFolderSource(seq, num_frames)
        else:
            source = FrameSource(num_frames)
        source.length_source = length_source
        rate = seq.info.frame_rate if seq.info is not None else None
        name = results_name(seq.root, seq.info.name if seq.info is not None else None)
        return InputPlan(name, source, det_path, rate, warnings)
    if not src.exists():
        raise InputError(f"input not found: {src}")
    if src.suffix.lower() in _VIDEO_SUFFIXES:
        if args.detections is None:
            raise InputError(f"a video needs --detections (a MOT det.txt for {src.name})")
        source = VideoSource(src, args.max_frames)
        return InputPlan(results_name(src), source, args.detections, source.fps, warnings)
    # A detections file alone: motion-only; use a neighbouring seqinfo.ini if any.
    if args.detections is not None:
        raise InputError(f"{src} is a detections file; do not also pass --detections")
    rate, length, sequence, length_source = None, None, None, ""
    folder = Path(os.path.abspath(src)).parent  # "det.txt" run inside det/ still finds ../seqinfo.ini
    for ini in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if ini.is_file():
            info = read_seqinfo(ini)
            rate, length, sequence = info.frame_rate, info.length, info.name
            length_source = f"seqLength in {ini}"
            break
    name = results_name(src, sequence)
    source = FrameSource(length or 0)
    source.length_source = length_source if length else ""
    source.kind = "detections"
    if getattr(args, "model", None) is not None and not args.no_appearance:
        warnings.append(f"--model {args.model} is not used: a detections file alone has no frames to embed")
    return InputPlan(name, source, src, rate, warnings)


def _check_outputs(args: argparse.Namespace, output: Path, det_path: Path) -> None:
    """Before any work: every output can be written, and none would overwrite an input."""
    inputs = {p.resolve() for p in (args.source, det_path) if p is not None and p.is_file()}
    for path, option in ((output, "-o/--output"), (args.summary, "--summary"), (args.video_out, "--video-out")):
        if path is None:
            continue
        check_output_path(path, option)
        if path.resolve() in inputs:
            raise InputError(f"{option} {path} is an input of this run; it would be overwritten")


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


ProgressFactory = Callable[[int | None, str], Any]


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
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.interpolate < 0:
        raise InputError(f"--interpolate must be >= 0, got {args.interpolate}")
    if args.frame_rate is not None and not (math.isfinite(args.frame_rate) and args.frame_rate > 0):
        raise InputError(f"--frame-rate must be a positive number, got {args.frame_rate:g}")
    warnings: list[str] = []
    plan = plan_input(args, warnings)
    source = plan.source
    output = args.output or Path("runs") / "track" / f"{plan.name}.txt"
    _check_outputs(args, output, plan.det_path)
    detections, det_in_file, score_note = prepare_detections(
        plan.det_path, given_minimum_score(args), args.score_norm, args.score_scale
    )
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
    if args.frame_rate is not None:
        frame_rate = args.frame_rate
    elif plan.frame_rate is not None:
        frame_rate = plan.frame_rate
    else:
        frame_rate = 30.0
        if source.kind == "video":
            warnings.append(f"{args.source} reports no frame rate: assuming 30 fps (give --frame-rate)")
    appearance = not args.no_appearance and source.kind != "detections"
    if source.kind != "detections" and source.size is not None and len(detections):
        far = detections.xyxy[:, 2:].max(axis=0)
        width, height = source.size
        if far[0] > 1.25 * width or far[1] > 1.25 * height:
            warnings.append(
                f"detections reach ({far[0]:.0f}, {far[1]:.0f}) but frames are {width}x{height}: "
                "are the detections for another resolution?"
            )

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
    if source.kind == "detections":
        coast = tracker.maximum_frames_without_update + 1
        source.frames = frames_to_step(detections.frame_index(), source.num_frames, coast)
    start = time.perf_counter()
    tracker.warmup()
    warmup_s = time.perf_counter() - start

    try:
        writer = MOTResultWriter(output)
    except OSError as exc:
        raise InputError(f"-o/--output {output}: cannot write ({exc.strerror or exc})") from None
    video = None
    annotator = None
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

    if args.video_out is not None:
        annotator = TrackAnnotator()
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
    stats.warmup_s = warmup_s
    if args.interpolate:
        from deepsort_edge.tracking.interpolation import interpolate_gaps  # noqa: PLC0415

        filled = interpolate_gaps(read_mot(output), args.interpolate)
        stats.rows = len(filled)
        write_mot(output, filled)
    if source.kind == "detections":
        stats.frames = source.num_frames  # skipped frames were tracked too: nothing happened in them

    if source.unreadable:
        shown = ", ".join(map(str, source.unreadable[:10])) + (" ..." if len(source.unreadable) > 10 else "")
        warnings.append(
            f"{len(source.unreadable)} frame(s) could not be decoded and were tracked without "
            f"detections: {shown}"
        )
    if stats.frames == 0 and source.kind == "video":
        raise InputError(f"could not read any frame from {args.source}")
    stopped_early = False
    if source.kind == "video":
        wanted = max(detections.last_frame, source.reported_frames or 0)
        if args.max_frames is not None:
            wanted = min(wanted, args.max_frames)
        if stats.frames < wanted:
            stopped_early = True
            reason = (
                "the detections go" if detections.last_frame > stats.frames else "its header says it goes"
            )
            warnings.append(
                f"video ended after {stats.frames} frames but {reason} to frame {wanted}: "
                f"frames {stats.frames + 1}-{wanted} were not tracked"
            )
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
