"""``deepsort-edge quantize``: static int8 (QDQ) of any ONNX re-identification model or detector.

Calibrates on crops from a MOTChallenge sequence (first half) or a folder of
crop images, then checks the int8 model against the float32 one by cosine on
held-out crops (a sequence's second half) and prints both CPU speeds. The
int8 file carries the model's preprocessing in its metadata. Needs ``onnx``
(the export extra; torch is not needed). With ``--detector`` the model is an
object detector: it is calibrated on whole frames (a video, an image folder or
a sequence's ``img1/``, first half) and checked by matching its detections
with the float32 model's on the second half.

Example:
    $ deepsort-edge quantize osnet.onnx -o osnet-int8.onnx --calibration-data MOT15/train/PETS09-S2L1 \\
          --input-size 256 128 --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 --color-order rgb
    $ deepsort-edge quantize yolo11n.onnx -o yolo11n-int8.onnx --detector --calibration-data clip.mp4
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepsort_edge.cli.errors import UserError
from deepsort_edge.cli.export import BUILTIN_CALIBRATION, check_crop_counts, load_crops

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``quantize`` subcommand."""
    parser = subparsers.add_parser(
        "quantize",
        help="static int8 quantisation of an ONNX re-identification model or detector, checked against float32",
        description="Quantise an ONNX appearance model (or, with --detector, an object detector) to static "
                    "int8 (QDQ) with ONNX Runtime.",
    )
    parser.add_argument("model", type=Path, help="float32 ONNX model")
    parser.add_argument("-o", "--output", required=True, type=Path, help="int8 ONNX file to write")
    parser.add_argument("--calibration-data", required=True, type=Path,
                        help="MOTChallenge sequence folder (img1/ + gt/gt.txt or det/det.txt), a folder "
                             "of crop images, or 'builtin' (people drawn by the demo scene plus textures, no "
                             "data; crops from your own cameras calibrate a ReID model better); a sequence's "
                             "first half calibrates, its second half verifies")
    parser.add_argument("--detector", action="store_true",
                        help="the model is an object detector: calibrate on frames of a video, an image folder "
                             "or a sequence (first half), verify on the rest")
    from deepsort_edge.detection.layouts import LAYOUTS  # noqa: PLC0415  (plain numpy)

    parser.add_argument("--detector-layout", choices=LAYOUTS, default=None,
                        help="with --detector: the output layout (default: told from the model)")
    parser.add_argument("--calibration-count", type=int, default=None,
                        help="calibration crops (default: 256), or frames with --detector (default: 32)")
    parser.add_argument("--verify-count", type=int, default=None,
                        help="verification crops (default: 256), or frames with --detector (default: 16)")
    parser.add_argument("--keep-float", type=int, default=0, metavar="N",
                        help="leading convolutions left in float32 (default: 0)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="model input size (default: from the model)")
    parser.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"), help="normalisation mean, 0-1")
    parser.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="normalisation std, 0-1")
    parser.add_argument("--color-order", choices=("rgb", "bgr"), help="channel order the model expects")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``deepsort-edge quantize``; returns the exit status."""
    if not args.model.is_file():
        raise UserError(f"model not found: {args.model}")
    if args.calibration_count is None:
        args.calibration_count = 32 if args.detector else 256
    if args.verify_count is None:
        args.verify_count = 16 if args.detector else 256
    check_crop_counts(args)
    if args.keep_float < 0:
        raise UserError(f"--keep-float must be >= 0, got {args.keep_float}")
    try:
        import onnx  # noqa: F401, PLC0415
    except ImportError:
        raise UserError('quantize needs onnx: pip install onnx (or ".[cpu,export]" in a clone)') from None
    if args.detector:
        return _run_detector(args)
    from deepsort_edge.appearance.quantization import quantize_model  # noqa: PLC0415

    try:
        calibration, verification = load_crops(args.calibration_data, args.calibration_count, args.verify_count)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    preprocessing = {key: value for key, value in (
        ("input_size", tuple(args.input_size) if args.input_size else None),
        ("mean", tuple(args.mean) if args.mean else None),
        ("std", tuple(args.std) if args.std else None),
        ("color_order", args.color_order),
    ) if value is not None}
    return _report(quantize_model, args.model, args.output, calibration, verification,
                   keep_float=args.keep_float, **preprocessing)


def _report(quantize: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Run a quantiser and print its report; its ``ValueError`` is a user error (one line)."""
    try:
        report = quantize(*args, **kwargs)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(report.summary())
    return 0


def _frames(source: Path, count: int) -> list[Any]:
    """About ``count`` frames spread evenly over a video, an image folder or a sequence's ``img1/``."""
    from deepsort_edge.io.mot import MOTSequence  # noqa: PLC0415
    from deepsort_edge.io.video import VIDEO_SUFFIXES, ImageFilesSource, ImageFolderSource, VideoError, VideoSource

    try:
        if source.is_dir():
            seq = MOTSequence.from_folder(source)
            reader: Any = (ImageFolderSource(seq, seq.num_frames or 0) if seq.image_dir is not None
                           else ImageFilesSource(source))
        elif source.suffix.lower() in VIDEO_SUFFIXES and source.is_file():
            reader = VideoSource(source, None)
        else:
            raise UserError(f"--calibration-data {source}: not a video, an image folder or a sequence folder"
                            + (" (builtin holds crops for appearance models, no frames)"
                               if str(source) == BUILTIN_CALIBRATION else ""))
    except (VideoError, FileNotFoundError) as exc:
        raise UserError(f"--calibration-data: {exc}") from None
    step = max(1, (reader.num_frames or count) // count)
    try:
        return [image for frame, image in reader if image is not None and (frame - 1) % step == 0][:count]
    finally:
        reader.close()


def _run_detector(args: argparse.Namespace) -> int:
    from deepsort_edge.appearance.quantization import quantize_detector  # noqa: PLC0415

    for option in ("input_size", "mean", "std", "color_order"):
        if getattr(args, option) is not None:
            raise UserError(f"--{option.replace('_', '-')} is for appearance models; a detector's "
                            "preprocessing follows its layout")
    frames = _frames(args.calibration_data, args.calibration_count + args.verify_count)
    if len(frames) < 2:
        raise UserError(f"--calibration-data {args.calibration_data}: found {len(frames)} frame(s), need 2 or more")
    # Spread over the source: the earlier frames calibrate, the later ones verify.
    wanted = args.calibration_count + args.verify_count
    split = min(len(frames) - 1, max(1, round(len(frames) * args.calibration_count / wanted)))
    calibration, verification = frames[:split], frames[split:]
    options = {"layout": args.detector_layout} if args.detector_layout else {}
    return _report(quantize_detector, args.model, args.output, calibration, verification,
                   keep_float=args.keep_float, **options)
