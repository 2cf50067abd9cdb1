"""What one input of ``deepsort-edge track`` is, checked before any work: its plan, detections and outputs.

:func:`plan_input` tells a sequence folder, a video and a detections file apart
and finds the frame source, detections, frame rate and results name
(:func:`results_name`); :func:`prepare_detections` reads and filters the
detections; :func:`check_outputs` refuses an output that cannot be written or
would overwrite an input. Every problem is an :class:`InputError`.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path

from deepsort_edge.cli.errors import UserError, check_output_path
from deepsort_edge.io.mot import (
    MOTData,
    MOTFormatError,
    MOTSequence,
    normalise_scores,
    read_mot,
    read_seqinfo,
)
from deepsort_edge.io.video import VIDEO_SUFFIXES as _VIDEO_SUFFIXES
from deepsort_edge.io.video import (
    FrameSource,
    ImageFolderSource,
    VideoSource,
)

__all__ = [
    "InputError",
    "InputPlan",
    "check_outputs",
    "given_minimum_score",
    "plan_input",
    "prepare_detections",
    "results_name",
]


class InputError(UserError):
    """A problem with the user's input: reported on stderr, exit status 2."""


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


def given_minimum_score(args: argparse.Namespace) -> float:
    """``--minimum-score`` (alias ``--min-score``) as given, 0 when unset or ``none``.

    The CLI drops rows below it before tracking (no crops are cut for them)
    and also hands it to the tracker, whose ``minimum_score`` then finds
    nothing more to drop.
    """
    value = getattr(args, "minimum_score", None)
    return 0.0 if value is None else float(value)


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


def check_outputs(args: argparse.Namespace, output: Path, det_path: Path) -> None:
    """Before any work: every output can be written, and none would overwrite an input."""
    inputs = {p.resolve() for p in (args.source, det_path) if p is not None and p.is_file()}
    for path, option in ((output, "-o/--output"), (args.summary, "--summary"), (args.video_out, "--video-out")):
        if path is None:
            continue
        check_output_path(path, option)
        if path.resolve() in inputs:
            raise InputError(f"{option} {path} is an input of this run; it would be overwritten")
