"""``deepsort-edge track``: run the tracker on detections, with or without frames.

Inputs (the first argument):

- a MOTChallenge sequence folder (``img1/``, ``det/det.txt``, ``seqinfo.ini``):
  frames are read from ``img1/``, appearance comes from the embedder;
- a video file plus ``--detections det.txt`` (MOT format, frame numbers of the
  video, 1-based, boxes in the video's pixels);
- a detections file alone: motion-only tracking, no frames.

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
- Detection scores must lie in [0, 1]. MOT15's public ACF detections do not
  (column 7 is an unnormalised score, about -0.5..139 on PETS09-S2L1): by
  default (``--score-norm auto``) such files are min-max normalised over the
  whole file; ``--score-scale S`` instead divides by ``S`` and clips.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.boxes import tlwh_to_xyxy
from deepsort_edge.mot import (
    MOTData,
    MOTFormatError,
    MOTResultWriter,
    MOTSequence,
    normalise_scores,
    read_mot,
    read_seqinfo,
)

PROG = "deepsort-edge track"

# DeepSORTTracker keyword -> (default, help); defaults are the tracker's own and
# are only shown in --help: options left unset are not passed, so the tracker's
# signature stays the single source of truth (tests/test_cli.py checks they agree).
TRACKER_OPTIONS: dict[str, tuple[Any, str]] = {
    "lost_track_buffer": (30, "frames a lost track is kept, at 30 fps (scaled by --frame-rate)"),
    "track_activation_threshold": (0.25, "minimum detection score to start a track"),
    "minimum_consecutive_frames": (3, "frames a track must be matched before it gets an id"),
    "minimum_iou_threshold": (0.3, "minimum IoU in the IoU stage (tentative and just-lost tracks)"),
    "appearance_threshold": (0.7, "maximum appearance (cosine) distance for a match"),
    "appearance_weight": (0.5, "weight of appearance vs motion in the combined cost"),
    "distance_metric": ("cosine", "appearance distance metric"),
    "nn_budget": (100, "embeddings kept per track in the gallery"),
    "appearance_mode": ("gallery", "per-track appearance: gallery of past embeddings or EMA"),
    "ema_momentum": (0.9, "momentum of the EMA appearance (appearance_mode=ema)"),
    "gating": ("full", "Kalman gating: full (4 dof) or position (2 dof)"),
    "matching": ("cascade", "association: DeepSORT's matching cascade or one global assignment"),
    "on_invalid": ("drop", "invalid detections (NaN, empty boxes): drop them or raise"),
}
_CHOICES = {
    "distance_metric": ("cosine", "euclidean"),
    "appearance_mode": ("gallery", "ema"),
    "gating": ("full", "position"),
    "matching": ("cascade", "global"),
    "on_invalid": ("drop", "raise"),
}
_VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"}
_MAX_READ_RETRIES = 3


class InputError(Exception):
    """A problem with the user's input: reported on stderr, exit status 2."""


# --------------------------------------------------------------------------- parser
def _add_tracker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tracker (defaults are DeepSORTTracker's)")
    for name, (default, help_text) in TRACKER_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        kind = type(default)
        kwargs: dict[str, Any] = {"default": None, "help": f"{help_text} (default: {default})"}
        if name in _CHOICES:
            kwargs["choices"] = _CHOICES[name]
        metavar = None if name in _CHOICES else kind.__name__.upper()
        group.add_argument(flag, type=kind, metavar=metavar, **kwargs)
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
            "seqinfo.ini), a video file (with --detections) or a MOT detections file "
            "(motion-only)."
        ),
        epilog=(
            "Faults: an undecodable frame is tracked as a frame without detections; a video "
            "that ends before the detections stops the run there (warning, exit 0). Scores "
            "outside [0, 1] (MOT15 ACF) are min-max normalised unless --score-norm none or "
            "--score-scale is given."
        ),
    )
    parser.add_argument("source", type=Path, help="sequence folder, video file or det.txt")
    parser.add_argument("-d", "--detections", type=Path, default=None,
                        help="MOT detections file (required with a video; default for a "
                             "sequence folder: det/det.txt)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="MOT results file (default: runs/track/<name>.txt)")
    parser.add_argument("--video-out", type=Path, default=None,
                        help="annotated video (.mp4 with mp4v, else .avi with MJPG)")
    parser.add_argument("--summary", type=Path, default=None, help="JSON summary file")
    parser.add_argument("--max-frames", type=int, default=None, help="track at most N frames")
    parser.add_argument("--min-score", type=float, default=0.0,
                        help="drop detections scoring below this, after normalisation (default: 0)")
    parser.add_argument("--score-norm", choices=("auto", "minmax", "none"), default="auto",
                        help="scores outside [0, 1]: auto = min-max normalise over the file "
                             "only if needed; none = reject (default: auto)")
    parser.add_argument("--score-scale", type=float, default=None,
                        help="divide scores by this and clip to [0, 1] (e.g. 100 for ACF)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stdout")
    _add_tracker_options(parser)
    add_embedder_options(parser)
    return parser


# --------------------------------------------------------------------------- frame sources
class FrameSource:
    """Frames for the tracker: ``(frame_number, image or None)``; None = no image."""

    kind = "detections"
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height)

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames
        self.unreadable: list[int] = []
        self.ended_at: int | None = None  # last frame read when the source ran out early

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        for frame in range(1, self.num_frames + 1):
            yield frame, None

    def close(self) -> None:
        """Release the source."""


class ImageFolderSource(FrameSource):
    """``img1/000001.jpg``-style frames of a MOTChallenge sequence."""

    kind = "images"

    def __init__(self, sequence: MOTSequence, num_frames: int) -> None:
        super().__init__(num_frames)
        self.sequence = sequence
        if sequence.info is not None:
            self.fps = sequence.info.frame_rate
            if sequence.info.width and sequence.info.height:
                self.size = (sequence.info.width, sequence.info.height)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        import cv2  # noqa: PLC0415

        for frame in range(1, self.num_frames + 1):
            image = cv2.imread(str(self.sequence.image_path(frame)), cv2.IMREAD_COLOR)
            if image is None:
                self.unreadable.append(frame)
            elif self.size is None:
                self.size = (image.shape[1], image.shape[0])
            yield frame, image


class VideoSource(FrameSource):
    """Frames of a video file read with OpenCV."""

    kind = "video"

    def __init__(self, path: Path, max_frames: int | None) -> None:
        import cv2  # noqa: PLC0415

        self.path = path
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise InputError(f"cannot open video {path} (not a video, or a codec OpenCV lacks)")
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self.reported_frames = count if count > 0 else None
        limit = count if count > 0 else (max_frames or 0)
        if max_frames is not None:
            limit = min(limit, max_frames) if limit else max_frames
        super().__init__(limit)
        self.fps = fps if fps > 0 else None
        self.size = (width, height) if width and height else None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        frame = 0
        # Without a frame count, read until the video ends.
        while self.num_frames <= 0 or frame < self.num_frames:
            ok, image = self.capture.read()
            if not ok:
                # One failed read may be a corrupt frame; several in a row are the end.
                failed = 1
                while failed <= _MAX_READ_RETRIES and not ok:
                    ok, image = self.capture.read()
                    failed += 0 if ok else 1
                if not ok:
                    self.ended_at = frame
                    return
                for lost in range(frame + 1, frame + failed + 1):
                    self.unreadable.append(lost)
                    yield lost, None
                frame += failed
                if self.num_frames > 0 and frame >= self.num_frames:
                    return
            frame += 1
            if self.size is None:
                self.size = (image.shape[1], image.shape[0])
            yield frame, image

    def close(self) -> None:
        self.capture.release()


# --------------------------------------------------------------------------- video output
def open_video_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[Any, Path]:
    """Open a ``cv2.VideoWriter``: mp4v for ``.mp4``, MJPG for ``.avi`` (and as fall-back).

    opencv-python's wheels encode MPEG-4 Part 2 (``mp4v``) but not H.264
    (``avc1`` fails to open), so ``.mp4`` uses ``mp4v``; if that fails too,
    the video is written as MJPG ``.avi`` beside the requested path.

    Returns:
        ``(writer, path actually written)``.

    Raises:
        InputError: No codec could be opened.
    """
    import cv2  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    fps = float(fps) if fps and fps > 0 else 30.0
    attempts = [("mp4v", path)] if path.suffix.lower() != ".avi" else []
    attempts.append(("MJPG", path if path.suffix.lower() == ".avi" else path.with_suffix(".avi")))
    for fourcc, target in attempts:
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if writer.isOpened():
            if target != path:
                print(f"{PROG}: warning: mp4v unavailable, writing {target} (MJPG)", file=sys.stderr)
            return writer, target
        writer.release()
    raise InputError(f"cannot open a video writer for {path} (tried mp4v and MJPG)")


class TrackAnnotator:
    """Boxes, ``#id`` labels and traces of confirmed tracks (supervision annotators)."""

    def __init__(self, trace_length: int = 30) -> None:
        import supervision as sv  # noqa: PLC0415

        self._sv = sv
        lookup = sv.ColorLookup.TRACK
        self.boxes = sv.BoxAnnotator(color_lookup=lookup, thickness=2)
        self.labels = sv.LabelAnnotator(color_lookup=lookup, text_scale=0.4, text_padding=3)
        self.traces = sv.TraceAnnotator(color_lookup=lookup, trace_length=trace_length, smooth=True,
                                        position=sv.Position.BOTTOM_CENTER)

    def __call__(self, image: np.ndarray, xyxy: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Annotate a copy of ``image`` with the boxes whose id is >= 1."""
        keep = ids >= 1
        detections = self._sv.Detections(
            xyxy=np.asarray(xyxy[keep], dtype=np.float32).reshape(-1, 4),
            tracker_id=np.asarray(ids[keep], dtype=int),
        )
        out = image.copy()
        out = self.traces.annotate(out, detections)
        out = self.boxes.annotate(out, detections)
        return self.labels.annotate(out, detections, labels=[f"#{i}" for i in detections.tracker_id])


# --------------------------------------------------------------------------- the loop
@dataclass
class TrackingStats:
    """What a tracking run did and how long its parts took (seconds)."""

    frames: int = 0
    detections: int = 0
    rows: int = 0
    track_ids: set[int] = field(default_factory=set)
    decode_s: float = 0.0
    embed_s: float = 0.0
    track_s: float = 0.0
    warmup_s: float = 0.0
    output_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready part of the summary."""
        busy = self.decode_s + self.embed_s + self.track_s

        def fps(seconds: float) -> float | None:
            return round(self.frames / seconds, 2) if seconds > 0 else None

        return {
            "frames": self.frames,
            "detections": self.detections,
            "result_rows": self.rows,
            "tracks": len(self.track_ids),
            "time_s": {
                "decode": round(self.decode_s, 4),
                "embed": round(self.embed_s, 4),
                "track": round(self.track_s, 4),
                "output": round(self.output_s, 4),
                "warmup": round(self.warmup_s, 4),
            },
            "fps": {
                "track": fps(self.track_s),
                "embed_track": fps(self.embed_s + self.track_s),
                "decode_embed_track": fps(busy),
            },
        }


FrameCallback = Callable[[int, "np.ndarray | None", np.ndarray, np.ndarray, np.ndarray], None]


def track_frames(
    source: FrameSource | Iterator[tuple[int, np.ndarray | None]],
    detections: MOTData,
    tracker: Any,
    extractor: Any | None = None,
    on_frame: FrameCallback | None = None,
    progress: Any | None = None,
) -> TrackingStats:
    """Feed every frame's detections (and embeddings) to the tracker.

    Args:
        source: Yields ``(frame_number, image or None)`` in order; frames
            without an image get no embeddings (they are tracked motion-only
            when the tracker runs without appearance, or as an empty frame
            when it needs embeddings; see the module docstring).
        detections: All detections; scores already in [0, 1].
        tracker: A ``DeepSORTTracker``.
        extractor: A ``DeepSORTFeatureExtractor``, or None for motion only.
        on_frame: Called as ``on_frame(frame, image, xyxy, scores, ids)``
            after each update.
        progress: A tqdm bar (``update(1)`` per frame) or None.

    Returns:
        Counts and the decode / embed / track time split.
    """
    stats = TrackingStats()
    index = detections.frame_index()
    table = detections.table
    no_rows = table[:0]
    needs_image = extractor is not None
    iterator = iter(source)
    while True:
        start = time.perf_counter()
        try:
            frame, image = next(iterator)
        except StopIteration:
            break
        stats.decode_s += time.perf_counter() - start
        rows = index.get(frame)
        rows = table[rows] if rows is not None else no_rows
        if needs_image and image is None:
            rows = no_rows  # undecodable frame: coast, as documented
        xyxy = tlwh_to_xyxy(rows[:, 2:6])
        scores = rows[:, 6].astype(np.float32)
        embeddings = None
        if needs_image and len(rows):
            start = time.perf_counter()
            embeddings = extractor.extract_features(image, xyxy)
            stats.embed_s += time.perf_counter() - start
        start = time.perf_counter()
        ids = tracker.update_arrays(xyxy, scores, embeddings)
        stats.track_s += time.perf_counter() - start
        stats.frames += 1
        stats.detections += len(rows)
        confirmed = ids[ids >= 1]
        stats.rows += int(confirmed.size)
        stats.track_ids.update(int(i) for i in confirmed)
        if on_frame is not None:
            start = time.perf_counter()
            on_frame(frame, image, xyxy, scores, ids)
            stats.output_s += time.perf_counter() - start
        if progress is not None:
            progress.update(1)
    return stats


# --------------------------------------------------------------------------- building blocks
def tracker_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The tracker options given on the command line (unset ones are left out)."""
    return {name: getattr(args, name) for name in TRACKER_OPTIONS if getattr(args, name, None) is not None}


def build_extractor(args: argparse.Namespace) -> Any:
    """A ``DeepSORTFeatureExtractor`` from ``--model`` (ONNX) or the shipped default."""
    from deepsort_edge.embedder import DeepSORTFeatureExtractor  # noqa: PLC0415

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
    if not path.is_file():
        raise InputError(f"detections file not found: {path}")
    try:
        raw = read_mot(path)
        scores, note = normalise_scores(raw.scores, score_norm, score_scale)
    except (MOTFormatError, ValueError) as exc:
        raise InputError(f"bad detections file {path}: {exc}") from None
    if not 0.0 <= min_score <= 1.0:
        raise InputError(f"--min-score must be in [0, 1], got {min_score}")
    data = raw.with_scores(scores)
    if min_score > 0:
        data = data.select(data.table[:, 6] >= min_score)
    # Boxes that are not boxes would only be dropped by the tracker; say so once here.
    return data, len(raw), note


@dataclass
class _Plan:
    name: str
    source: FrameSource
    det_path: Path
    frame_rate: float | None
    warnings: list[str]


def _plan(args: argparse.Namespace, warnings: list[str]) -> _Plan:
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
        if num_frames is None:
            num_frames = read_mot(det_path).last_frame if det_path.is_file() else 0
        if args.max_frames is not None:
            num_frames = min(num_frames, args.max_frames)
        if use_images or (args.video_out is not None and seq.image_dir is not None):
            source: FrameSource = ImageFolderSource(seq, num_frames)
        else:
            source = FrameSource(num_frames)
        rate = seq.info.frame_rate if seq.info is not None else None
        return _Plan(seq.name, source, det_path, rate, warnings)
    if not src.exists():
        raise InputError(f"input not found: {src}")
    if src.suffix.lower() in _VIDEO_SUFFIXES:
        if args.detections is None:
            raise InputError(f"a video needs --detections (a MOT det.txt for {src.name})")
        source = VideoSource(src, args.max_frames)
        return _Plan(src.stem, source, args.detections, source.fps, warnings)
    # A detections file alone: motion-only; use a neighbouring seqinfo.ini if any.
    if args.detections is not None:
        raise InputError(f"{src} is a detections file; do not also pass --detections")
    rate, length, name = None, None, src.stem
    for ini in (src.parent / "seqinfo.ini", src.parent.parent / "seqinfo.ini"):
        if ini.is_file():
            info = read_seqinfo(ini)
            rate, length, name = info.frame_rate, info.length, info.name
            break
    if name == "det":  # det/det.txt or <sequence>/det.txt: name it after the sequence
        name = src.parent.parent.name if src.parent.name == "det" else src.parent.name
    source = FrameSource(length or 0)
    source.kind = "detections"
    if getattr(args, "model", None) is not None and not args.no_appearance:
        warnings.append(f"--model {args.model} is not used: a detections file alone has no frames to embed")
    return _Plan(name, source, src, rate, warnings)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``deepsort-edge track``; returns the exit status."""
    try:
        return _run(args)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, MOTFormatError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    warnings: list[str] = []
    plan = _plan(args, warnings)
    source = plan.source
    detections, det_in_file, score_note = prepare_detections(
        plan.det_path, args.min_score, args.score_norm, args.score_scale
    )
    if source.kind == "detections" and source.num_frames == 0:
        source.num_frames = detections.last_frame
    if source.kind == "detections" and args.max_frames is not None:
        source.num_frames = min(source.num_frames, args.max_frames)
    if args.video_out is not None and source.kind == "detections":
        raise InputError("--video-out needs frames: give a sequence folder with img1/ or a video")
    frame_rate = args.frame_rate or plan.frame_rate or 30.0
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
    start = time.perf_counter()
    tracker.warmup()
    warmup_s = time.perf_counter() - start

    output = args.output or Path("runs") / "track" / f"{plan.name}.txt"
    writer = MOTResultWriter(output)
    video = None
    annotator = None
    video_path = None

    def on_frame(frame: int, image: np.ndarray | None, xyxy: np.ndarray,
                 scores: np.ndarray, ids: np.ndarray) -> None:
        nonlocal video, video_path
        writer.write(frame, ids, xyxy, scores)
        if annotator is not None and image is not None:
            if video is None:
                video, video_path = open_video_writer(
                    args.video_out, source.fps or frame_rate, (image.shape[1], image.shape[0])
                )
            video.write(annotator(image, xyxy, ids))

    if args.video_out is not None:
        annotator = TrackAnnotator()
    from tqdm import tqdm  # noqa: PLC0415

    bar = tqdm(
        total=source.num_frames or None, unit="frame", desc=plan.name, file=sys.stderr,
        disable=True if args.no_progress else None, leave=False,
    )
    try:
        stats = track_frames(source, detections, tracker, extractor, on_frame, bar)
    finally:
        bar.close()
        writer.close()
        source.close()
        if video is not None:
            video.release()
    stats.warmup_s = warmup_s

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
        _warn(message)

    summary = {
        "input": str(args.source),
        "mode": source.kind,
        "sequence": plan.name,
        "detections_file": str(plan.det_path),
        "detections_in_file": det_in_file,
        "score_note": score_note,
        "min_score": args.min_score,
        "appearance": appearance,
        "model": (str(args.model) if args.model else "default") if appearance else None,
        "frame_rate": frame_rate,
        **stats.as_dict(),
        "unreadable_frames": source.unreadable,
        "stopped_early": stopped_early,
        "warnings": warnings,
        "tracker": {"frame_rate": frame_rate, "use_appearance": appearance, **tracker_kwargs(args)},
        "outputs": {
            "results": str(output),
            "video": str(video_path) if video_path else None,
            "summary": str(args.summary) if args.summary else None,
        },
    }
    if args.summary is not None:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
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
