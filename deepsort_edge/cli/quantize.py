"""``deepsort-edge quantize``: static int8 (QDQ) of any ONNX re-identification model.

Calibrates on crops from a MOTChallenge sequence (first half) or a folder of
crop images, then checks the int8 model against the float32 one by cosine on
held-out crops (a sequence's second half) and prints both CPU speeds. The
int8 file carries the model's preprocessing in its metadata. Needs ``onnx``
(the export extra; torch is not needed).

Example:
    $ deepsort-edge quantize osnet.onnx -o osnet-int8.onnx --calibration-data MOT15/train/PETS09-S2L1 \\
          --input-size 256 128 --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 --color-order rgb
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from deepsort_edge.cli.errors import UserError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``quantize`` subcommand."""
    parser = subparsers.add_parser(
        "quantize",
        help="static int8 quantisation of an ONNX re-identification model, checked against float32",
        description="Quantise an ONNX appearance model to static int8 (QDQ) with ONNX Runtime.",
    )
    parser.add_argument("model", type=Path, help="float32 ONNX model")
    parser.add_argument("-o", "--output", required=True, type=Path, help="int8 ONNX file to write")
    parser.add_argument("--calibration-data", required=True, type=Path,
                        help="MOTChallenge sequence folder (img1/ + gt/gt.txt or det/det.txt) or a folder "
                             "of crop images; a sequence's first half calibrates, its second half verifies")
    parser.add_argument("--calibration-count", type=int, default=256, help="calibration crops (default: 256)")
    parser.add_argument("--verify-count", type=int, default=256, help="verification crops (default: 256)")
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
    from deepsort_edge.cli.export import _load_crops  # noqa: PLC0415

    if not args.model.is_file():
        raise UserError(f"model not found: {args.model}")
    for name in ("calibration_count", "verify_count"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.keep_float < 0:
        raise UserError(f"--keep-float must be >= 0, got {args.keep_float}")
    try:
        import onnx  # noqa: F401, PLC0415
    except ImportError:
        raise UserError('quantize needs onnx: pip install onnx (or ".[cpu,export]" in a clone)') from None
    from deepsort_edge.quantization import quantize_model  # noqa: PLC0415

    try:
        calibration, verification = _load_crops(args.calibration_data, args.calibration_count, args.verify_count)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    preprocessing = {key: value for key, value in (
        ("input_size", tuple(args.input_size) if args.input_size else None),
        ("mean", tuple(args.mean) if args.mean else None),
        ("std", tuple(args.std) if args.std else None),
        ("color_order", args.color_order),
    ) if value is not None}
    try:
        report = quantize_model(args.model, args.output, calibration, verification,
                                keep_float=args.keep_float, **preprocessing)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(report.summary())
    return 0
