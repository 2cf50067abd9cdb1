"""MOTChallenge files in and out: detections, ground truth, results.

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

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsort_edge.tracking.boxes import tlwh_to_xyxy, xyxy_to_tlwh

# Re-exported: the row layout, the writer and sequence folders have modules of their own.
from .mot_rows import MAX_FRAME, NUM_COLUMNS, MOTFormatError, format_rows
from .mot_writer import MOTResultWriter
from .sequences import MOTSequence, SequenceInfo, find_sequences, read_seqinfo

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

_SPLIT = re.compile(r"[,\s]+")


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
        if table.ndim != 2 or table.shape[1] != NUM_COLUMNS:
            raise ValueError(
                f"table must have shape (N, {NUM_COLUMNS}), got {table.shape}"
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
        table = np.full((n, NUM_COLUMNS), -1.0)
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
        return cls(np.empty((0, NUM_COLUMNS)))

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
            values = [float(f) for f in fields[:NUM_COLUMNS]]
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
        rows.append(values + [-1.0] * (NUM_COLUMNS - len(values)))
    if not rows:
        return np.empty((0, NUM_COLUMNS)), 0
    table = np.asarray(rows, dtype=np.float64)
    # Some public files are not sorted by frame (e.g. MOT17 det.txt); keep line order within a frame.
    return table[np.argsort(table[:, 0], kind="stable")], min(width, NUM_COLUMNS)


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


def write_mot(path: str | Path, data: MOTData) -> None:
    """Write rows as a 10-column MOTChallenge file (boxes with 2 decimals).

    Example:
        >>> write_mot("out/PETS09-S2L1.txt", results)  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with MOTResultWriter(path) as writer:
        writer.write_text(format_rows(data.table))


SCORE_MODES = ("none", "auto", "minmax", "rank")


def normalise_scores(
    scores: np.ndarray, mode: str = "auto", scale: float | None = None
) -> tuple[np.ndarray, str]:
    """Rescale a whole file's detection scores offline, before the tracker sees them.

    Not needed for tracking: the tracker's own rule (``score_calibration``,
    :mod:`deepsort_edge.tracking.score_calibration`) reads any scale, live, and
    ``deepsort-edge track`` hands it the file's scores as given (``"none"``),
    so the CLI and Python give the same tracks. These transforms are for a
    user who wants a file's scores in [0, 1] first (MOT15's public ACF
    detections, for example, score about -0.5 to 139 on PETS09-S2L1).

    Args:
        scores: ``(N,)`` raw scores.
        mode: ``"none"``: keep every score as given; ``"auto"``: keep scores
            already in [0, 1], else min-max normalise over the whole file; ``"minmax"``: always
            ``(s - min) / (max - min)`` over the whole file; ``"rank"``: the
            fraction of the file's scores at or below each score (a
            calibration that no score scale or spread changes: a threshold
            then names a quantile of that detector's scores).
        scale: If given, ``clip(scores / scale, 0, 1)`` is used instead of
            ``mode`` (e.g. ``scale=100`` for ACF scores).

    Returns:
        ``(normalised, note)``: float32 scores (in [0, 1] unless ``"none"``)
        and a one-line note saying what was done (for the CLI summary).

    Raises:
        ValueError: Bad ``mode`` or ``scale``.

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
    if mode == "none" or (mode == "auto" and lo >= 0.0 and hi <= 1.0):
        return scores.astype(np.float32), "scores used as given"
    if hi == lo:
        return np.ones_like(scores, dtype=np.float32), f"all scores equal ({lo:g}); set to 1"
    return (
        ((scores - lo) / (hi - lo)).astype(np.float32),
        f"scores min-max normalised from [{lo:g}, {hi:g}] to [0, 1]",
    )
