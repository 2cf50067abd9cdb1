"""``deepsort-edge track``: run the tracker on detections, with or without frames.

Inputs (the first argument):

- a MOTChallenge sequence folder (``img1/``, ``det/det.txt``, ``seqinfo.ini``):
  frames are read from ``img1/``, appearance comes from the embedder;
- a video file plus ``--detections det.txt`` (MOT format, frame numbers of the
  video, 1-based, boxes in the video's pixels);
- a detections file alone: motion-only tracking, no frames;
- a folder of several of the above (sequence folders, and videos with
  ``NAME.txt`` detections beside them): each is tracked on its own, in
  parallel with ``--workers N`` (processes) or ``--ray [ADDRESS]``, into
  ``OUT_DIR/<name>.txt`` byte-identical to a one-by-one run (see
  :mod:`deepsort_edge.cli.track_many`).

Outputs: a MOT results file (``-o``), optionally an annotated video
(``--video-out``) and a JSON summary (``--summary``) with frames, fps and the
time split into decode / embed / track.

Documented fault behaviour:

- A frame that cannot be decoded (a corrupt JPEG, a failed video read that is
  followed by readable frames) is tracked as a frame without detections: the
  tracks coast on their motion model; it is listed in the summary and warned
  about on stderr.
- A video that ends before the detections do stops the run at the last
  readable frame: results up to there are written, a warning names the
  frames that were not tracked, ``stopped_early`` is set in the summary and
  the exit status is still 0. Nothing ever waits on a stalled video: a read
  that fails three times in a row ends the video.
- The tracker compares scores as given with ``track_activation_threshold``,
  which is set for scores in [0, 1]. MOT15's public ACF detections are not
  (column 7 is an unnormalised score, about -0.5..139 on PETS09-S2L1): by
  default (``--score-norm auto``) such files are min-max normalised over the
  whole file; ``--score-scale S`` instead divides by ``S`` and clips.
- Every user error (a path that cannot be read or written, a malformed file,
  an out-of-range value) is one line on stderr and exit status 2. Frame
  numbers above ``MAX_FRAME`` are an error; detections beyond ``seqLength``
  and an unknown video frame rate are warned about.
- Without frames, only frames with detections and the frames after them in
  which lost tracks can still live are stepped; beyond those nothing can
  change, so a long gap costs nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepsort_edge.cli.track_one import _NOT_OPTIONS, PROG, InputError, format_summary, track_input
from deepsort_edge.cli.track_one import warn as _warn
from deepsort_edge.cli.errors import one_line
from deepsort_edge.io.mot import SCORE_MODES
from deepsort_edge.io.mot import MOTFormatError


# --------------------------------------------------------------------------- parser
def _optional(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _add_tracker_options(parser: argparse.ArgumentParser) -> None:
    from deepsort_edge.tracking import settings  # noqa: PLC0415

    group = parser.add_argument_group("tracker (one option per setting; README's settings table)")
    group.add_argument("--preset", choices=tuple(settings.PRESETS), default=None,
                       help="named settings: default (measured), paper (nwojke's deep_sort), "
                            "roboflow-2.0.1 (that release's values); other options override it")
    for f in settings.fields():
        if f.name in _NOT_OPTIONS:
            continue
        meta = f.metadata
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{meta['help']} (default: {f.default})"
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
    group.add_argument(
        "--frame-rate", type=float, default=None,
        help="frame rate (default: seqinfo.ini, else the video's, else 30)",
    )


def add_embedder_options(parser: argparse.ArgumentParser) -> None:
    """Appearance-model options, shared by ``track`` and ``demo``."""
    group = parser.add_argument_group("appearance embedder")
    group.add_argument("--model", type=Path, default=None,
                       help="ONNX re-identification model (default: the shipped model)")
    group.add_argument("--provider", action="append", default=None, metavar="NAME",
                       help="ONNX Runtime provider, e.g. cpu, cuda, CUDAExecutionProvider; "
                            "repeat for a preference list (default: auto)")
    group.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                       help="model input height and width (default: from the model)")
    group.add_argument("--mean", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                       help="normalisation mean, 0-1 scale (e.g. 0.485 0.456 0.406)")
    group.add_argument("--std", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                       help="normalisation std, 0-1 scale (e.g. 0.229 0.224 0.225)")
    group.add_argument("--color-order", choices=("rgb", "bgr"), default=None,
                       help="channel order the model expects (default: from the model)")
    group.add_argument("--batch-size", type=int, default=None, help="crops per ONNX call")
    group.add_argument("--no-appearance", action="store_true",
                       help="motion only: no embedder, the tracker matches on IoU")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``track`` subcommand."""
    parser = subparsers.add_parser(
        "track",
        help="track a MOTChallenge sequence, a video or a detections file",
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
            "outside [0, 1] (MOT15 ACF) are min-max normalised unless --score-norm none or "
            "--score-scale is given."
        ),
    )
    parser.add_argument("source", type=_source, help="sequence folder, video file or det.txt; with "
                        "--detector also a folder of images, a camera index (0) or a stream URL")
    parser.add_argument("-d", "--detections", type=Path, default=None,
                        help="MOT detections file (required with a video; default for a "
                             "sequence folder: det/det.txt)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="MOT results file (default: runs/track/<name>.txt); for a folder "
                             "of several inputs, the folder for <name>.txt files (default: runs/track)")
    parser.add_argument("--video-out", type=Path, default=None,
                        help="annotated video (.mp4 with mp4v, else .avi with MJPG)")
    parser.add_argument("--summary", type=Path, default=None, help="JSON summary file")
    parser.add_argument("--max-frames", type=int, default=None, help="track at most N frames")
    parser.add_argument("--min-score", type=float, default=0.0,
                        help="drop detections scoring below this, after normalisation (default: 0)")
    parser.add_argument("--score-norm", choices=SCORE_MODES, default="auto",
                        help="scores outside [0, 1]: auto = min-max normalise over the file "
                             "only if needed; rank = each score's quantile in the file (any "
                             "detector's scale; see docs/detectors.md); none = reject (default: auto)")
    parser.add_argument("--score-scale", type=float, default=None,
                        help="divide scores by this and clip to [0, 1] (e.g. 100 for ACF)")
    parser.add_argument("--interpolate", type=int, default=0, metavar="N",
                        help="offline: fill gaps of up to N frames in each track by linear "
                             "interpolation (default: 0, off)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="SOURCE a folder of several sequences/videos: track N at a time in "
                             "processes (default 1; with --ray: as many as the cluster runs)")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="SOURCE a folder of several inputs: run them as Ray tasks, on a local "
                             "Ray or the cluster at ADDRESS (needs the ray extra)")
    parser.add_argument("--global-ids", action="store_true",
                        help="one id per person across the inputs and re-entries (an identity "
                             "registry over all inputs, stepped together): -o is a folder that gets "
                             "each input's <name>.txt with global ids and links.csv")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stdout")
    _add_tracker_options(parser)
    add_embedder_options(parser)
    from deepsort_edge.cli.track_detect import add_detector_options  # noqa: PLC0415

    add_detector_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``deepsort-edge track``; returns the exit status."""
    try:
        return _run(args)
    except (InputError, FileNotFoundError, MOTFormatError) as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 2


def _source(text: str) -> Path | str:
    """SOURCE: a camera index or stream URL stays text (a Path would fold ``//``); else a path."""
    from deepsort_edge.io.video import is_live_source  # noqa: PLC0415

    return text if is_live_source(text) and not Path(text).exists() else Path(text)


def _write_summary(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.summary is not None:
        try:
            args.summary.parent.mkdir(parents=True, exist_ok=True)
            args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--summary {args.summary}: cannot write ({exc.strerror or exc})") from None


def _run(args: argparse.Namespace) -> int:
    from deepsort_edge.cli import track_many  # noqa: PLC0415

    if args.detector is not None or isinstance(args.source, str):
        from deepsort_edge.cli import track_detect  # noqa: PLC0415

        if args.detector is None:
            raise InputError(f"{args.source} is a camera or stream: give --detector MODEL.onnx (or hog)")
        summary = track_detect.track_with_detector(args)
        _write_summary(args, summary)
        if not args.quiet:
            print(track_detect.format_detect_summary(summary))
        return 0
    for option in ("save_detections", "classes", "detector_threshold", "detector_layout"):
        if getattr(args, option) is not None:
            raise InputError(f"--{option.replace('_', '-')} needs --detector")
    if args.show:
        raise InputError("--show needs --detector (it shows a detector run's frames)")

    inputs = track_many.find_inputs(args)
    if args.global_ids:  # every input at once, one registry (not in parallel)
        from deepsort_edge.cli.track_global import run_global  # noqa: PLC0415

        items = inputs or [track_many.Input(args.source.stem, args.source, args.detections)]
        summary = run_global(args, items)
        if not args.quiet:
            print(json.dumps(summary, indent=2))
        return 0
    if inputs is not None:  # a folder of several sequences or videos
        return track_many.run_many(args, inputs)
    if args.workers is not None or args.ray is not None:
        _warn("--workers and --ray apply to a folder of several inputs; tracking the one input here")
    summary = track_input(args)
    _write_summary(args, summary)
    if not args.quiet:
        print(format_summary(summary))
    return 0


