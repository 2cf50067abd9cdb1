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
- Scores go to the tracker as the file gives them (``--score-norm none``), so
  the CLI and Python give the same tracks for the same detections; the
  tracker's ``--score-calibration`` rule reads any scale (MOT15's public ACF
  detections score about -0.5..139 on PETS09-S2L1). ``--score-norm
  auto|minmax|rank`` or ``--score-scale S`` rescale the whole file first.
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
from typing import Any

from deepsort_edge.cli.errors import one_line
from deepsort_edge.cli.track_one import PROG, InputError, track_input
from deepsort_edge.cli.track_one import warn as _warn
from deepsort_edge.cli.track_options import add_parser
from deepsort_edge.io.mot import MOTFormatError

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Run ``deepsort-edge track``; returns the exit status."""
    try:
        return _run(args)
    except (InputError, FileNotFoundError, MOTFormatError) as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 2


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


def format_summary(summary: dict[str, Any]) -> str:
    """The human-readable end-of-run summary."""
    t, fps = summary["time_s"], summary["fps"]

    def rate(value: float | None) -> str:
        return f"{value:,.1f} fps" if value else "n/a"

    mode = {"images": "image folder", "video": "video", "detections": "detections only"}[summary["mode"]]
    appearance = f"appearance from {summary['model']} model" if summary["appearance"] else "motion only"
    lines = [
        f"Tracked {summary['sequence']} ({mode}, {appearance}): {summary['frames']} frames, "
        f"{summary['detections']} detections used of {summary['detections_in_file']} -> "
        f"{summary['tracks']} tracks, {summary['result_rows']} result rows",
        f"  scores:  {summary['score_note']}"
        + (f"; min score {summary['min_score']:g}" if summary["min_score"] else ""),
        f"  time:    decode {t['decode']:.2f} s, embed {t['embed']:.2f} s, track {t['track']:.2f} s "
        f"(+ {t['warmup']:.2f} s warm-up, {t['output']:.2f} s writing)",
        f"  speed:   tracker {rate(fps['track'])}, embed+track {rate(fps['embed_track'])}, "
        f"with decoding {rate(fps['decode_embed_track'])}",
        f"  results: {summary['outputs']['results']}",
    ]
    if summary["outputs"]["video"]:
        lines.append(f"  video:   {summary['outputs']['video']}")
    if summary["outputs"]["summary"]:
        lines.append(f"  summary: {summary['outputs']['summary']}")
    if summary["stopped_early"]:
        lines.append("  NOTE: the video ended early (see warning)")
    return "\n".join(lines)
