"""MOTChallenge files in and out: detections, ground truth, results, seqinfo.

Every MOTChallenge text file holds one box per line::

    frame, id, left, top, width, height, score_or_flag, x/class, y/visibility, z

Frames are 1-based; detection files use ``id = -1``; column 7 is the detection
score (detections, results) or the "consider" flag (ground truth); MOT17/MOT20
ground truth uses column 8 for the class and column 9 for the visibility.

Example:
    >>> import numpy as np
    >>> from deepsort_edge.io.mot import MOTData
    >>> data = MOTData.from_arrays(
    ...     frames=[1, 1, 2], ids=[1, 2, 1],
    ...     xyxy=np.array([[0, 0, 10, 20], [5, 5, 15, 25], [1, 0, 11, 20]]))
    >>> [len(rows) for _, rows in data.iter_frames()]
    [2, 1]
"""

from __future__ import annotations

import configparser
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from deepsort_edge.tracking.boxes import tlwh_to_xyxy, xyxy_to_tlwh

__all__ = [
    "MAX_FRAME",
    "SCORE_MODES",
    "MOTData",
    "MOTFormatError",
    "MOTResultWriter",
    "MOTSequence",
    "SequenceInfo",
    "check_text_file",
    "find_sequences",
    "normalise_scores",
    "read_mot",
    "read_seqinfo",
    "write_mot",
]

# Files are padded to this many columns so that class/visibility are always there.
_NUM_COLUMNS = 10
# Largest frame number accepted: 10 million frames is 3.8 days at 30 fps. A
# larger one is a broken file, and a tracker would have to step through every
# frame before it.
MAX_FRAME = 10_000_000
_SPLIT = re.compile(r"[,\s]+")


class MOTFormatError(ValueError):
    """A MOTChallenge text file that cannot be parsed (names the file and line)."""


@dataclass(frozen=True)
class MOTData:
    """Rows of a MOTChallenge file, sorted by frame (stable within a frame).

    Attributes:
        table: ``(N, 10)`` float64; columns as in the file, missing ones padded
            with -1.
        num_columns: How many columns the file itself had (0 when built in code
            or when the file is empty).
    """

    table: np.ndarray
    num_columns: int = 0

    def __post_init__(self) -> None:
        table = np.asarray(self.table, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] != _NUM_COLUMNS:
            raise ValueError(
                f"table must have shape (N, {_NUM_COLUMNS}), got {table.shape}"
            )
        object.__setattr__(self, "table", table)

    @classmethod
    def from_arrays(
        cls,
        frames: Sequence[int] | np.ndarray,
        ids: Sequence[int] | np.ndarray,
        xyxy: np.ndarray,
        scores: Sequence[float] | np.ndarray | None = None,
        classes: Sequence[int] | np.ndarray | None = None,
        visibility: Sequence[float] | np.ndarray | None = None,
    ) -> MOTData:
        """Build from per-row arrays; boxes ``(N, 4)`` in xyxy pixels.

        ``scores`` defaults to 1 (a valid "consider" flag for ground truth),
        ``classes`` and ``visibility`` to -1.
        """
        frames = np.asarray(frames, dtype=np.float64).reshape(-1)
        n = frames.shape[0]
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        ids = np.asarray(ids, dtype=np.float64).reshape(-1)
        if xyxy.shape[0] != n or ids.shape[0] != n:
            raise ValueError(
                f"frames, ids and xyxy must have the same length, got {n}, "
                f"{ids.shape[0]} and {xyxy.shape[0]}"
            )
        table = np.full((n, _NUM_COLUMNS), -1.0)
        table[:, 0] = frames
        table[:, 1] = ids
        table[:, 2:6] = xyxy_to_tlwh(xyxy)
        table[:, 6] = 1.0 if scores is None else np.asarray(scores, dtype=np.float64)
        if classes is not None:
            table[:, 7] = np.asarray(classes, dtype=np.float64)
        if visibility is not None:
            table[:, 8] = np.asarray(visibility, dtype=np.float64)
        order = np.argsort(table[:, 0], kind="stable")
        return cls(table[order])

    @classmethod
    def empty(cls) -> MOTData:
        """No rows."""
        return cls(np.empty((0, _NUM_COLUMNS)))

    def __len__(self) -> int:
        return int(self.table.shape[0])

    @property
    def frames(self) -> np.ndarray:
        """``(N,)`` int64 1-based frame numbers."""
        return self.table[:, 0].astype(np.int64)

    @property
    def ids(self) -> np.ndarray:
        """``(N,)`` int64 identities (-1 in detection files)."""
        return self.table[:, 1].astype(np.int64)

    @property
    def tlwh(self) -> np.ndarray:
        """``(N, 4)`` float64 boxes as left, top, width, height."""
        return self.table[:, 2:6].copy()

    @property
    def xyxy(self) -> np.ndarray:
        """``(N, 4)`` float64 boxes as left, top, right, bottom."""
        return tlwh_to_xyxy(self.table[:, 2:6])

    @property
    def scores(self) -> np.ndarray:
        """``(N,)`` float64 column 7: detection score or ground-truth flag."""
        return self.table[:, 6].copy()

    @property
    def classes(self) -> np.ndarray:
        """``(N,)`` int64 column 8 (MOT17 ground-truth class; -1 if absent)."""
        return self.table[:, 7].astype(np.int64)

    @property
    def visibility(self) -> np.ndarray:
        """``(N,)`` float64 column 9 (MOT17 ground-truth visibility; -1 if absent)."""
        return self.table[:, 8].copy()

    @property
    def last_frame(self) -> int:
        """Largest frame number, 0 when empty."""
        return int(self.table[-1, 0]) if len(self) else 0

    def select(self, mask: np.ndarray) -> MOTData:
        """Rows where the boolean ``mask`` (N,) is true."""
        return MOTData(self.table[np.asarray(mask, dtype=bool)], self.num_columns)

    def with_scores(self, scores: np.ndarray) -> MOTData:
        """A copy with column 7 replaced by ``scores`` (N,)."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(self):
            raise ValueError(f"scores must have length {len(self)}, got {scores.shape[0]}")
        table = self.table.copy()
        table[:, 6] = scores
        return MOTData(table, self.num_columns)

    def frame_index(self) -> dict[int, slice]:
        """Map each frame number present to the slice of its rows."""
        frames = self.table[:, 0].astype(np.int64)
        if frames.size == 0:
            return {}
        starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
        ends = np.r_[starts[1:], frames.size]
        return {int(frames[s]): slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)}

    def iter_frames(self, num_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame, rows)`` for frames ``1..num_frames`` (default: last frame).

        Frames without rows yield an empty ``(0, 10)`` table, so a tracker fed
        from this sees every frame, as it must.
        """
        index = self.frame_index()
        last = self.last_frame if num_frames is None else int(num_frames)
        empty = self.table[:0]
        for frame in range(1, last + 1):
            rows = index.get(frame)
            yield frame, (self.table[rows] if rows is not None else empty)


def _parse_lines(lines: Iterator[str], source: str) -> tuple[np.ndarray, int]:
    rows: list[list[float]] = []
    width = 0
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [f for f in _SPLIT.split(text) if f]
        if len(fields) < 6:
            raise MOTFormatError(
                f"{source}, line {number}: expected at least 6 comma-separated columns "
                f"(frame,id,left,top,width,height,...), got {len(fields)}: {text!r}"
            )
        try:
            values = [float(f) for f in fields[:_NUM_COLUMNS]]
        except ValueError:
            raise MOTFormatError(f"{source}, line {number}: non-numeric value in {text!r}") from None
        if not all(np.isfinite(values)):
            raise MOTFormatError(f"{source}, line {number}: NaN or infinite value in {text!r}")
        if values[0] < 1 or values[0] != int(values[0]):
            raise MOTFormatError(
                f"{source}, line {number}: frame must be an integer >= 1, got {fields[0]!r}"
            )
        if values[0] > MAX_FRAME:
            raise MOTFormatError(
                f"{source}, line {number}: frame {fields[0]} is beyond the largest frame number "
                f"accepted ({MAX_FRAME:,})"
            )
        if values[1] != int(values[1]):
            raise MOTFormatError(f"{source}, line {number}: id must be an integer, got {fields[1]!r}")
        width = max(width, len(fields))
        rows.append(values + [-1.0] * (_NUM_COLUMNS - len(values)))
    if not rows:
        return np.empty((0, _NUM_COLUMNS)), 0
    table = np.asarray(rows, dtype=np.float64)
    # Some public files are not sorted by frame (e.g. MOT17 det.txt); keep line order within a frame.
    return table[np.argsort(table[:, 0], kind="stable")], min(width, _NUM_COLUMNS)


def read_mot(path: str | Path) -> MOTData:
    """Read a MOTChallenge detection, ground-truth or result file.

    Commas or whitespace separate values; blank lines and ``#`` comments are
    skipped. Rows are returned sorted by frame.

    Args:
        path: The ``.txt`` file.

    Returns:
        The rows, padded to 10 columns with -1.

    Raises:
        FileNotFoundError: The file does not exist.
        MOTFormatError: A line has fewer than 6 columns, a non-numeric or
            non-finite value, a frame number that is not an integer in
            ``[1, MAX_FRAME]`` or an id that is not an integer.

    Example:
        >>> data = read_mot("MOT15/train/PETS09-S2L1/det/det.txt")  # doctest: +SKIP
        >>> data.xyxy.shape  # doctest: +SKIP
        (5578, 4)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MOT file not found: {path}")
    check_text_file(path, "a MOT text file (frame,id,left,top,width,height,score,...)")
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        table, width = _parse_lines(iter(fh), str(path))
    return MOTData(table, width)


# Leading bytes of files users hand over by mistake, to name what was given.
_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
    b"PK\x03\x04": "a zip archive (a torch .pt or numpy .npz?)",
    b"\x1aE\xdf\xa3": "a Matroska/WebM video",
    b"RIFF": "a RIFF file (an AVI video?)",
}
# Control characters no text file holds (tab, newlines and form feed are allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_SUFFIXES = {".onnx": "an ONNX model", ".pt": "a torch checkpoint", ".pth": "a torch checkpoint",
             ".mp4": "a video", ".avi": "a video", ".mov": "a video", ".npz": "a numpy archive"}


def check_text_file(path: Path, expected: str) -> None:
    """Raise :class:`MOTFormatError` in one line if ``path`` is not a UTF-8 text file.

    A binary file (an image, a model, a video) would otherwise be parsed
    line by line and its bytes quoted back to the terminal.

    Example:
        >>> check_text_file(Path("frame.jpg"), "a MOT text file")  # doctest: +SKIP
        MOTFormatError: frame.jpg is a JPEG image, not text; expected a MOT text file
    """
    with path.open("rb") as fh:
        head = fh.read(4096)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the 4096 bytes is still text.
        text = None if exc.start < len(head) - 3 else head[: exc.start].decode("utf-8")
    if text is not None and not _CONTROL.search(text):
        return
    what = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    what = what or _SUFFIXES.get(path.suffix.lower(), "binary data")
    raise MOTFormatError(f"{path} is {what}, not text; expected {expected}")


def _format_rows(table: np.ndarray) -> str:
    lines = []
    for row in table:
        lines.append(
            f"{int(row[0])},{int(row[1])},{row[2]:.2f},{row[3]:.2f},{row[4]:.2f},{row[5]:.2f},"
            f"{row[6]:.4g},{row[7]:.6g},{row[8]:.6g},{row[9]:.6g}\n"
        )
    return "".join(lines)


def write_mot(path: str | Path, data: MOTData) -> None:
    """Write rows as a 10-column MOTChallenge file (boxes with 2 decimals).

    Example:
        >>> write_mot("out/PETS09-S2L1.txt", results)  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with MOTResultWriter(path) as writer:
        writer.write_text(_format_rows(data.table))


class MOTResultWriter:
    """Write tracker output frame by frame, in the MOTChallenge results format.

    Rows are ``frame,id,left,top,width,height,score,-1,-1,-1``. Only rows with
    ``id >= 1`` are written (``-1`` marks a detection without a confirmed track).
    They go to a temporary file beside ``path`` (``.NAME.PID.XXXXXXXX.tmp``),
    renamed to ``path`` by :meth:`close`; :meth:`discard` (or leaving a
    ``with`` block by an exception) deletes it instead, so ``path`` is either
    complete or untouched. A symlink's target is the file replaced; an
    existing path that is no regular file (a device, a pipe) is written
    directly.

    Example:
        >>> with MOTResultWriter("results.txt") as writer:  # doctest: +SKIP
        ...     writer.write(1, ids, xyxy, scores)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The file a symlink names is the one replaced; a device or pipe (/dev/stdout) is written as it is.
        target = Path(os.path.realpath(self.path))
        self._tmp: Path | None = None
        if target.exists() and not target.is_file():
            self._fh: TextIO | None = target.open("w", encoding="utf-8")
        else:
            self._tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            self._fh = self._tmp.open("x", encoding="utf-8")
        self._target = target
        self.rows_written = 0

    def write(
        self,
        frame: int,
        ids: np.ndarray,
        xyxy: np.ndarray,
        scores: np.ndarray | None = None,
    ) -> None:
        """Append the rows of one frame.

        Args:
            frame: 1-based frame number.
            ids: ``(N,)`` track ids; rows with id < 1 are skipped.
            xyxy: ``(N, 4)`` boxes.
            scores: ``(N,)`` detection scores, or None to write 1.
        """
        if self._fh is None:
            raise ValueError(f"writer for {self.path} is closed")
        ids = np.asarray(ids).reshape(-1)
        keep = ids >= 1
        if not keep.any():
            return
        n = ids.shape[0]
        table = np.full((n, _NUM_COLUMNS), -1.0)
        table[:, 0] = frame
        table[:, 1] = ids
        table[:, 2:6] = xyxy_to_tlwh(np.asarray(xyxy, dtype=np.float64).reshape(n, 4))
        table[:, 6] = 1.0 if scores is None else np.asarray(scores, dtype=np.float64)
        self._fh.write(_format_rows(table[keep]))
        self.rows_written += int(keep.sum())

    def write_text(self, text: str) -> None:
        """Append already formatted rows."""
        if self._fh is None:
            raise ValueError(f"writer for {self.path} is closed")
        self._fh.write(text)

    def write_detections(self, frame: int, xyxy: np.ndarray, scores: np.ndarray | None = None) -> None:
        """Append one frame's detections as MOT detection rows (id -1, as in ``det/det.txt``)."""
        if self._fh is None:
            raise ValueError(f"writer for {self.path} is closed")
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        n = boxes.shape[0]
        if n == 0:
            return
        table = np.full((n, _NUM_COLUMNS), -1.0)
        table[:, 0] = frame
        table[:, 2:6] = xyxy_to_tlwh(boxes)
        table[:, 6] = 1.0 if scores is None else np.asarray(scores, dtype=np.float64)
        self._fh.write(_format_rows(table))
        self.rows_written += n

    def close(self) -> None:
        """Flush, close and rename the file to ``path`` (idempotent)."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
                if self._tmp is not None:
                    os.replace(self._tmp, self._target)
            except BaseException:
                if self._tmp is not None:
                    self._tmp.unlink(missing_ok=True)
                raise

    def discard(self) -> None:
        """Close and delete the unfinished file; ``path`` is left as it was (idempotent)."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            finally:
                if self._tmp is not None:
                    self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> MOTResultWriter:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


@dataclass(frozen=True)
class SequenceInfo:
    """The ``[Sequence]`` section of a ``seqinfo.ini``."""

    name: str
    frame_rate: float
    length: int
    width: int | None = None
    height: int | None = None
    im_dir: str = "img1"
    im_ext: str = ".jpg"


def read_seqinfo(path: str | Path) -> SequenceInfo:
    """Read a MOTChallenge ``seqinfo.ini``.

    Raises:
        FileNotFoundError: The file does not exist.
        MOTFormatError: The file is not an ini file, lacks a ``[Sequence]``
            section, ``frameRate`` or ``seqLength``, or a value is not a
            number or out of range (``frameRate`` must be positive,
            ``seqLength`` in ``[0, MAX_FRAME]``, sizes positive).

    Example:
        >>> info = read_seqinfo("MOT15/train/PETS09-S2L1/seqinfo.ini")  # doctest: +SKIP
        >>> info.frame_rate, info.length  # doctest: +SKIP
        (7.0, 795)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"seqinfo.ini not found: {path}")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise MOTFormatError(f"{path}: not a valid ini file ({reason})") from None
    if "Sequence" not in parser:
        raise MOTFormatError(f"{path}: expected a [Sequence] section")
    section = parser["Sequence"]
    try:
        width = section.get("imWidth")
        height = section.get("imHeight")
        info = SequenceInfo(
            name=section.get("name", path.parent.name),
            frame_rate=float(section["frameRate"]),
            length=int(section["seqLength"]),
            width=int(width) if width else None,
            height=int(height) if height else None,
            im_dir=section.get("imDir", "img1"),
            im_ext=section.get("imExt", ".jpg"),
        )
    except KeyError as exc:
        raise MOTFormatError(f"{path}: missing key {exc.args[0]!r} in [Sequence]") from None
    except ValueError as exc:
        raise MOTFormatError(f"{path}: bad value in [Sequence] ({exc})") from None
    if not (np.isfinite(info.frame_rate) and info.frame_rate > 0):
        raise MOTFormatError(f"{path}: frameRate must be a positive number, got {section['frameRate']!r}")
    if not 0 <= info.length <= MAX_FRAME:
        raise MOTFormatError(f"{path}: seqLength must be in [0, {MAX_FRAME:,}], got {info.length}")
    for key, value in (("imWidth", info.width), ("imHeight", info.height)):
        if value is not None and value <= 0:
            raise MOTFormatError(f"{path}: {key} must be positive, got {value}")
    return info


@dataclass(frozen=True)
class MOTSequence:
    """A MOTChallenge sequence folder: ``seqinfo.ini``, ``img1/``, ``det/``, ``gt/``.

    Any of the parts may be missing; check the ``*_path`` attributes
    (None when absent) before use.
    """

    root: Path
    info: SequenceInfo | None
    det_path: Path | None
    gt_path: Path | None
    image_dir: Path | None

    @property
    def name(self) -> str:
        """Sequence name from seqinfo.ini, else the folder name."""
        return self.info.name if self.info is not None else self.root.name

    @classmethod
    def from_folder(cls, root: str | Path) -> MOTSequence:
        """Inspect a sequence folder.

        Raises:
            FileNotFoundError: ``root`` is not a folder.
            MOTFormatError: Its ``seqinfo.ini`` is malformed.
        """
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"sequence folder not found: {root}")
        ini = root / "seqinfo.ini"
        info = read_seqinfo(ini) if ini.is_file() else None
        det = root / "det" / "det.txt"
        gt = root / "gt" / "gt.txt"
        image_dir = root / (info.im_dir if info is not None else "img1")
        return cls(
            root=root,
            info=info,
            det_path=det if det.is_file() else None,
            gt_path=gt if gt.is_file() else None,
            image_dir=image_dir if image_dir.is_dir() else None,
        )

    def image_path(self, frame: int) -> Path:
        """Path of the 1-based ``frame`` image (``img1/000001.jpg`` style)."""
        if self.image_dir is None:
            raise ValueError(f"sequence {self.root} has no image folder")
        ext = self.info.im_ext if self.info is not None else ".jpg"
        return self.image_dir / f"{frame:06d}{ext}"

    @property
    def num_frames(self) -> int | None:
        """``seqLength`` from seqinfo.ini, else the number of images, else None."""
        if self.info is not None:
            return self.info.length
        if self.image_dir is not None:
            return sum(1 for _ in self.image_dir.glob("*.jpg")) or None
        return None


def find_sequences(root: str | Path, require: str = "gt") -> list[MOTSequence]:
    """Sequences in ``root``: ``root`` itself if it is one, else its sub-folders.

    Args:
        root: A sequence folder, or a folder of sequence folders.
        require: ``"gt"``, ``"det"`` or ``"images"``: keep only sequences that
            have that part.

    Returns:
        Sequences sorted by name (may be empty).
    """
    attr = {"gt": "gt_path", "det": "det_path", "images": "image_dir"}
    if require not in attr:
        raise ValueError(f"require must be one of {sorted(attr)}, got {require!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"folder not found: {root}")
    own = MOTSequence.from_folder(root)
    if getattr(own, attr[require]) is not None:
        return [own]
    found = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        seq = MOTSequence.from_folder(sub)
        if getattr(seq, attr[require]) is not None:
            found.append(seq)
    return found


SCORE_MODES = ("auto", "minmax", "rank", "none")


def normalise_scores(
    scores: np.ndarray, mode: str = "auto", scale: float | None = None
) -> tuple[np.ndarray, str]:
    """Map detection scores to [0, 1], the scale ``track_activation_threshold`` is set on.

    The tracker takes any finite score and compares it as given, but MOT15's
    public ACF detections carry unnormalised scores (about -0.5 to 139 on
    PETS09-S2L1), on which the default threshold would mean nothing.

    Args:
        scores: ``(N,)`` raw scores.
        mode: ``"auto"``: keep scores already in [0, 1], else min-max
            normalise over the whole file; ``"minmax"``: always
            ``(s - min) / (max - min)`` over the whole file; ``"rank"``: the
            fraction of the file's scores at or below each score (a
            calibration that no score scale or spread changes: a threshold
            then names a quantile of that detector's scores); ``"none"``: keep
            as is and fail if any score is outside [0, 1].
        scale: If given, ``clip(scores / scale, 0, 1)`` is used instead of
            ``mode`` (e.g. ``scale=100`` for ACF scores).

    Returns:
        ``(normalised, note)``: float32 scores in [0, 1] and a one-line note
        saying what was done (for the CLI summary).

    Raises:
        ValueError: Bad ``mode`` or ``scale``, or ``mode="none"`` with scores
            outside [0, 1].

    Example:
        >>> normalise_scores(np.array([0.0, 50.0, 100.0]))[0]
        array([0. , 0.5, 1. ], dtype=float32)
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scale is not None:
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"score scale must be a positive number, got {scale}")
        return (
            np.clip(scores / scale, 0.0, 1.0).astype(np.float32),
            f"scores divided by {scale:g} and clipped to [0, 1]",
        )
    if mode not in SCORE_MODES:
        raise ValueError(f"score mode must be one of {SCORE_MODES}, got {mode!r}")
    if scores.size == 0:
        return scores.astype(np.float32), "no detections"
    if mode == "rank":
        if not np.isfinite(scores).all():
            raise ValueError("detection scores must be finite for rank normalisation")
        ranked = np.searchsorted(np.sort(scores), scores, side="right") / scores.size
        return ranked.astype(np.float32), "scores mapped to their rank (fraction of the file's scores at or below)"
    lo, hi = float(scores.min()), float(scores.max())
    in_range = lo >= 0.0 and hi <= 1.0
    if mode == "none" or (mode == "auto" and in_range):
        if not in_range:
            raise ValueError(
                f"detection scores must lie in [0, 1], got range [{lo:g}, {hi:g}]; "
                "use min-max normalisation or a score scale"
            )
        return scores.astype(np.float32), "scores used as given"
    if hi == lo:
        return np.ones_like(scores, dtype=np.float32), f"all scores equal ({lo:g}); set to 1"
    return (
        ((scores - lo) / (hi - lo)).astype(np.float32),
        f"scores min-max normalised from [{lo:g}, {hi:g}] to [0, 1]",
    )
