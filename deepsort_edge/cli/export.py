"""``deepsort-edge export``: export OSNet or a timm backbone to an ONNX appearance model.

``osnet_x1_0``, ``osnet_x0_75``, ``osnet_x0_5`` and ``osnet_x0_25`` export a
torchreid / boxmot OSNet checkpoint (``--checkpoint`` required;
:mod:`deepsort_edge.appearance.export.osnet`); any other name is a timm model.

Example:
    deepsort-edge export osnet_x0_25 --checkpoint osnet_x0_25_msmt17.pth -o osnet.onnx
    deepsort-edge export tf_efficientnet_lite0 -o lite0.onnx \\
        --checkpoint lite0.pth --input-size 128 64 --int8 --calibration-data builtin

User errors (a missing file, a checkpoint of another model, an unknown model
name, the extra not installed) exit with status 2 and one line on stderr.
Needs the export extra (``pip install ".[cpu,export]"`` in a clone); torch, timm
and onnx are imported only when the subcommand runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from deepsort_edge.cli.errors import UserError, check_output_path

__all__ = ["BUILTIN_CALIBRATION", "add_parser", "check_crop_counts", "load_crops", "run"]

BUILTIN_CALIBRATION = "builtin"
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_OSNET_PREFIX = "osnet"  # names routed to deepsort_edge.appearance.export.osnet; the rest go to timm


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``export`` subcommand on an ``add_subparsers()`` object."""
    parser = subparsers.add_parser(
        "export",
        help="export a re-identification model to ONNX (needs torch)",
        description=(
            "Export an OSNet checkpoint (torchreid / boxmot) or a timm model without its "
            "classifier (pooled features) to ONNX with a dynamic batch axis, write its "
            "preprocessing into the file's metadata, optionally convert to float16 or static "
            "int8, and check ONNX Runtime against torch."
        ),
    )
    parser.add_argument(
        "model",
        help="osnet_x1_0, osnet_x0_75, osnet_x0_5, osnet_x0_25 (needs --checkpoint) "
        "or a timm model name, e.g. tf_efficientnet_lite0",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="ONNX file to write")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="local weights (.pth/.pt/.bin/.safetensors); required for osnet_*",
    )
    parser.add_argument(
        "--no-pretrained",
        action="store_true",
        help="timm only: do not download pretrained weights (random init unless --checkpoint)",
    )
    parser.add_argument(
        "--input-size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="crop size fed to the model (default: 256 128 for osnet_*, what the ReID "
        "checkpoints were trained on; else 128 64, the original DeepSORT size)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="float16 weights and compute")
    precision.add_argument(
        "--int8",
        action="store_true",
        help="static int8 (QDQ) quantisation; needs --calibration-data",
    )
    parser.add_argument(
        "--calibration-data",
        type=Path,
        help="MOTChallenge sequence folder (img1/ + gt/gt.txt or det/det.txt), a folder of crop "
        "images, or 'builtin' (figures of the demo scene plus textures: no data needed; what the "
        "shipped model uses); a sequence's first half calibrates, its second half verifies",
    )
    parser.add_argument(
        "--calibration-count", type=int, default=256, help="crops for calibration (default: 256)"
    )
    parser.add_argument(
        "--verify-count", type=int, default=256, help="crops for verification (default: 256)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the torch comparison")
    parser.add_argument(
        "--mean",
        nargs=3,
        type=float,
        metavar=("R", "G", "B"),
        help="override mean (default: the timm model's; ImageNet's for osnet_*)",
    )
    parser.add_argument("--std", nargs=3, type=float, metavar=("R", "G", "B"), help="override std")
    parser.add_argument(
        "--int8-keep-float",
        type=int,
        default=3,
        metavar="N",
        help="int8 only: leading convolutions left in float32 (default: 3)",
    )
    parser.add_argument("--report", type=Path, help="also write the export report as JSON here")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return parser


def _image_folder_crops(folder: Path, count: int) -> list[Any]:
    import cv2

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    crops = [img for img in (cv2.imread(str(p)) for p in files[:count]) if img is not None]
    if not crops:
        raise FileNotFoundError(f"--calibration-data: no readable images in {folder}")
    return crops


def check_crop_counts(args: argparse.Namespace) -> None:
    """``--calibration-count`` and ``--verify-count`` (export's and quantize's) are at least 1.

    Raises:
        UserError: one of them is below 1 (one line, exit status 2).
    """
    for name in ("calibration_count", "verify_count"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")


def load_crops(source: Path, calibrate: int, verify: int) -> tuple[list[Any], list[Any]]:
    """Disjoint calibration and verification crops from a sequence, an image folder or ``builtin``."""
    from deepsort_edge.appearance.export import load_mot_crops, scene_crops

    if str(source) == BUILTIN_CALIBRATION:  # the keyword wins; ./builtin names a folder of that name
        return scene_crops(calibrate, seed=0), scene_crops(verify, seed=1)
    if (source / "img1").is_dir():
        frames = sorted(int(p.stem) for p in (source / "img1").glob("*.jpg") if p.stem.isdigit())
        if not frames:
            raise FileNotFoundError(f"--calibration-data: no frames in {source / 'img1'}")
        middle = frames[len(frames) // 2]
        calibration, _ = load_mot_crops(source, calibrate, frames=(frames[0], middle - 1), seed=0)
        verification, _ = load_mot_crops(source, verify, frames=(middle, frames[-1]), seed=1)
        return calibration, verification
    if source.is_dir():
        crops = _image_folder_crops(source, calibrate + verify)
        if len(crops) < 2:
            return crops, crops
        return crops[0::2][:calibrate], crops[1::2][:verify]
    raise FileNotFoundError(f"--calibration-data: {source} is not a MOT sequence or image folder")


def run(args: argparse.Namespace) -> int:
    """Run ``deepsort-edge export``; returns the process exit status.

    Raises:
        UserError: for every problem with the input (one line, exit status 2).
    """
    from deepsort_edge.appearance.export import export_osnet, export_timm, require_export_extra

    try:
        require_export_extra()
    except ImportError as exc:
        raise UserError(str(exc)) from exc
    osnet = args.model.startswith(_OSNET_PREFIX)
    if osnet and args.checkpoint is None:
        raise UserError(
            f"{args.model} needs --checkpoint PATH: a torchreid or boxmot OSNet weights file "
            "(nothing is downloaded)"
        )
    if args.checkpoint is not None and not args.checkpoint.expanduser().is_file():
        raise UserError(f"--checkpoint {args.checkpoint}: file not found")
    check_output_path(args.output, "-o")
    check_crop_counts(args)
    precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    if precision == "int8" and args.calibration_data is None:
        raise UserError("--int8 needs --calibration-data")
    try:
        calibration = verification = None
        if args.calibration_data is not None:
            calibration, verification = load_crops(
                args.calibration_data, args.calibration_count, args.verify_count
            )
        options: dict[str, Any] = {
            "opset": args.opset,
            "precision": precision,
            "calibration_crops": calibration if precision == "int8" else None,
            "verify": not args.no_verify,
            "verify_crops": verification,
            "mean": args.mean,
            "std": args.std,
            "int8_keep_float": args.int8_keep_float,
            "progress": not args.quiet,
        }
        if args.input_size is not None:  # else each exporter's own default
            options["input_size"] = tuple(args.input_size)
        if osnet:
            report = export_osnet(args.model, args.output, args.checkpoint, **options)
        else:
            pretrained = False if args.no_pretrained else None
            report = export_timm(
                args.model, args.output, args.checkpoint, pretrained=pretrained, **options
            )
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise UserError(str(exc)) from exc
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if args.quiet:
        print(report.output)
    return 0
