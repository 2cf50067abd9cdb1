"""The options of ``deepsort-edge track``, in groups a newcomer reads top to bottom.

Groups, common options first: input, output, tracker (``--preset`` and the
settings most runs touch), detection scores, appearance, association,
motion model, detector, many inputs, speed. Every tracker setting of the
schema (:mod:`deepsort_edge.tracking.settings`) is one option; :data:`SETTING_GROUPS`
says in which group ``--help`` shows it (a setting it does not name is shown
under "other tracker settings"). Options left out are absent from the parsed
arguments (``argparse.SUPPRESS``), so the schema's defaults, or the preset's
values, apply.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepsort_edge.io.mot import SCORE_MODES

__all__ = ["NOT_OPTIONS", "SETTING_GROUPS", "add_embedder_options", "add_parser"]

# Settings that are not options of their own: use_appearance is --no-appearance,
# and frame_rate (--frame-rate, input group) defaults to the sequence's or video's own.
NOT_OPTIONS = ("use_appearance", "frame_rate")

# group title -> the settings shown in it, most used first. Titles are those of the groups below.
SETTING_GROUPS: dict[str, tuple[str, ...]] = {
    "tracker": (
        "lost_track_buffer", "max_age", "minimum_consecutive_frames", "class_aware", "output_box",
    ),
    "detection scores": (
        "score_calibration", "minimum_score", "track_activation_threshold", "new_track_margin", "typical_score",
        "low_score_matching",
        "on_invalid",
    ),
    "appearance": (
        "appearance_threshold", "appearance_weight", "appearance_mode", "nn_budget", "ema_momentum",
        "distance_metric", "confidence_embedding", "occluded_fraction", "appearance_adaptation",
        "adaptation_interval",
    ),
    "association": (
        "matching", "minimum_iou_threshold", "motion_cost", "gating", "appearance_gate_scale",
        "lost_track_rule", "recent_track_rule", "iou_recovery_frames",
    ),
    "motion model": ("confidence_noise", "aspect_noise", "aspect_velocity_noise", "coast_damping", "camera_motion"),
    "speed": ("gallery_dtype",),
}
_OTHER_SETTINGS = "other tracker settings"

USAGE = "%(prog)s [-h] SOURCE [-d DET.txt] [-o OUTPUT] [--preset NAME] [options]"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``track`` subcommand with its options in reading order."""
    parser = subparsers.add_parser(
        "track",
        help="track a MOTChallenge sequence, a video or a detections file",
        usage=USAGE,
        description=(
            "Track objects. SOURCE is a MOTChallenge sequence folder (img1/, det/det.txt, "
            "seqinfo.ini), a video file (with --detections), a MOT detections file "
            "(motion-only), or a folder of several sequence folders and videos (each video "
            "with its NAME.txt detections), tracked in parallel with --workers or --ray. With "
            "--detector no detections file is needed: SOURCE is a video, a folder of images, a "
            "sequence folder (its img1/), a camera index (0) or a stream URL (rtsp://, http://)."
        ),
        epilog=(
            "Faults: an undecodable frame is tracked as a frame without detections; a video "
            "that ends before the detections stops the run there (warning, exit 0). Scores "
            "go to the tracker as given (--score-norm none): its --score-calibration reads any "
            "scale. Options: docs/cli.md."
        ),
    )
    groups = {title: parser.add_argument_group(title) for title in (
        "input", "output", "tracker", "detection scores", "appearance", "association", "motion model",
        "detector (frames in, no det.txt needed)", "many inputs", "speed", _OTHER_SETTINGS,
    )}
    _add_input_options(groups["input"])
    _add_output_options(groups["output"])
    _add_score_options(groups["detection scores"])
    groups["tracker"].add_argument(
        "--preset", choices=_preset_names(), default=None,
        help="named settings: default (measured), paper (nwojke's deep_sort), roboflow-2.0.1 "
             "(that release's values); options given override it",
    )
    groups["appearance"].add_argument("--no-appearance", action="store_true",
                                      help="motion only: no embedder, the tracker matches on IoU")
    add_embedder_options(groups["appearance"], groups["speed"])
    _add_setting_options(groups)
    # Kept for compatibility (earlier releases): the same setting as --minimum-score, not in --help.
    groups["detection scores"].add_argument("--min-score", dest="minimum_score", type=_optional(float),
                                            default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_detector_options(groups["detector (frames in, no det.txt needed)"])
    _add_many_options(groups["many inputs"])
    return parser


def _preset_names() -> tuple[str, ...]:
    from deepsort_edge.tracking import settings  # noqa: PLC0415

    return tuple(settings.PRESETS)


def _source(text: str) -> Path | str:
    """SOURCE: a camera index or stream URL stays text (a Path would fold ``//``); else a path."""
    from deepsort_edge.io.video import is_live_source  # noqa: PLC0415

    return text if is_live_source(text) and not Path(text).exists() else Path(text)


def _optional(kind: type) -> Callable[[str], Any]:
    """An argparse type that also reads ``none`` (an optional setting's "off")."""

    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in "invalid float value"
    return parse


def _add_input_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("source", type=_source, metavar="SOURCE",
                       help="sequence folder, video file or det.txt; with --detector also a folder of "
                            "images, a camera index (0) or a stream URL")
    group.add_argument("-d", "--detections", type=Path, default=None, metavar="DET.txt",
                       help="MOT detections file (required with a video; default for a sequence "
                            "folder: det/det.txt)")
    group.add_argument("--frame-rate", type=float, default=None, metavar="FPS",
                       help="frame rate (default: seqinfo.ini, else the video's, else 30)")
    group.add_argument("--max-frames", type=int, default=None, metavar="N", help="track at most N frames")


def _add_output_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("-o", "--output", type=Path, default=None,
                       help="MOT results file (default: runs/track/<name>.txt, <name> the sequence "
                            "or the input's file name); for a folder of several inputs, the folder "
                            "for their <name>.txt files (default: runs/track)")
    group.add_argument("--video-out", type=Path, default=None, metavar="VIDEO",
                       help="annotated video (.mp4 with mp4v, else .avi with MJPG)")
    group.add_argument("--summary", type=Path, default=None, metavar="JSON", help="JSON summary file")
    group.add_argument("--interpolate", type=int, default=0, metavar="N",
                       help="offline: fill gaps of up to N frames in each track by linear "
                            "interpolation (default: 0, off)")
    group.add_argument("-q", "--quiet", action="store_true", help="no summary on stdout")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_score_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--score-norm", choices=SCORE_MODES, default="none",
                       help="rescale the file's scores before tracking: none = as given (the "
                            "tracker's --score-calibration reads them, as in Python); auto = min-max "
                            "over the file if outside [0, 1]; minmax; rank = each score's quantile in "
                            "the file (see docs/detectors.md) (default: none)")
    group.add_argument("--score-scale", type=float, default=None, metavar="S",
                       help="divide scores by S and clip to [0, 1] (e.g. 100 for ACF)")


def add_embedder_options(group: argparse._ArgumentGroup, speed: argparse._ArgumentGroup | None = None) -> None:
    """The appearance model's options (``--model``, preprocessing); ``--provider``/``--batch-size`` go to ``speed``.

    Args:
        group: Where the model and its preprocessing go.
        speed: Where the runtime options go (default: ``group``).
    """
    speed = group if speed is None else speed
    group.add_argument("--model", type=Path, default=None,
                       help="ONNX re-identification model (default: the shipped model)")
    group.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                       help="model input height and width (default: from the model)")
    group.add_argument("--mean", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                       help="normalisation mean, 0-1 scale (e.g. 0.485 0.456 0.406)")
    group.add_argument("--std", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                       help="normalisation std, 0-1 scale (e.g. 0.229 0.224 0.225)")
    group.add_argument("--color-order", choices=("rgb", "bgr"), default=None,
                       help="channel order the model expects (default: from the model)")
    speed.add_argument("--provider", action="append", default=None, metavar="NAME",
                       help="ONNX Runtime provider, e.g. cpu, cuda, CUDAExecutionProvider; repeat for a "
                            "preference list (default: auto)")
    speed.add_argument("--batch-size", type=int, default=None, metavar="N", help="crops per ONNX call")


def _add_setting_options(groups: dict[str, argparse._ArgumentGroup]) -> None:
    """One option per schema setting, in the group and order of :data:`SETTING_GROUPS`."""
    from deepsort_edge.tracking import settings  # noqa: PLC0415

    by_name = {f.name: f for f in settings.fields() if f.name not in NOT_OPTIONS}
    placed = [(title, name) for title, names in SETTING_GROUPS.items() for name in names if name in by_name]
    listed = {name for _, name in placed}
    placed += [(_OTHER_SETTINGS, name) for name in by_name if name not in listed]
    for title, name in placed:
        meta = by_name[name].metadata
        flag = "--" + name.replace("_", "-")
        help_text = f"{meta['help']} (default: {by_name[name].default})"
        group = groups[title]
        if meta["kind"] == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        elif meta["kind"] == "choice":
            group.add_argument(flag, choices=meta["choices"], default=argparse.SUPPRESS, help=help_text)
        else:
            kind = int if meta["kind"] == "int" else float
            parse = _optional(kind) if meta.get("optional") else kind
            metavar = kind.__name__.upper() + ("|none" if meta.get("optional") else "")
            group.add_argument(flag, type=parse, default=argparse.SUPPRESS, metavar=metavar, help=help_text)


def add_detector_options(group: argparse._ArgumentGroup) -> None:
    """The ``--detector`` options (frames in, no detections file)."""
    from deepsort_edge.detection.layouts import LAYOUTS  # noqa: PLC0415  (plain numpy; no runtime)

    group.add_argument("--detector", default=None, metavar="MODEL.onnx|hog",
                       help="detect in every frame with this ONNX model (YOLOv5/v8/11, NMS-free, YOLOX, "
                            "RT-DETR/D-FINE/RF-DETR exports) or OpenCV's HOG people detector (hog: a "
                            "weak, weights-free baseline for people >= 128 px tall, hog:2 for >= 64 px at "
                            "4x the cost; needs OpenCV < 5)")
    group.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                       help="keep only these classes: names (from the model's metadata) or ids "
                            "(default: all)")
    group.add_argument("--detector-threshold", type=float, default=None, metavar="SCORE",
                       help="detector score threshold (default: 0.25 for ONNX models, 0.5 for hog)")
    group.add_argument("--detector-layout", choices=LAYOUTS, default=None,
                       help="the model's output layout (default: told from its outputs and metadata)")
    group.add_argument("--save-detections", type=Path, default=None, metavar="DET.txt",
                       help="also write every detection in MOT format (rerun tracking alone with "
                            "--detections)")
    group.add_argument("--show", action="store_true", help="show the tracked frames in a window")


def _add_many_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="SOURCE a folder of several sequences/videos: track N at a time in "
                            "processes (default 1; with --ray: as many as the cluster runs)")
    group.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="SOURCE a folder of several inputs: run them as Ray tasks, on a local "
                            "Ray or the cluster at ADDRESS (needs the ray extra)")
    group.add_argument("--global-ids", action="store_true",
                       help="one id per person across the inputs and re-entries (an identity "
                            "registry over all inputs, stepped together): -o is a folder that gets "
                            "each input's <name>.txt with global ids and links.csv")
