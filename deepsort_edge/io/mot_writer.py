"""Writing tracker output frame by frame as a MOTChallenge results file, all or nothing.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.txt"
    >>> with MOTResultWriter(path) as writer:
    ...     writer.write(1, np.array([3, -1]), np.array([[10, 20, 40, 80], [0, 0, 5, 5]]))
    >>> print(path.read_text(), end="")
    1,3,10.00,20.00,30.00,60.00,1,-1,-1,-1
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TextIO

import numpy as np

from deepsort_edge.tracking.boxes import xyxy_to_tlwh

from .mot_rows import NUM_COLUMNS, format_rows

__all__ = ["MOTResultWriter"]


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
        table = np.full((n, NUM_COLUMNS), -1.0)
        table[:, 0] = frame
        table[:, 1] = ids
        table[:, 2:6] = xyxy_to_tlwh(np.asarray(xyxy, dtype=np.float64).reshape(n, 4))
        table[:, 6] = 1.0 if scores is None else np.asarray(scores, dtype=np.float64)
        self._fh.write(format_rows(table[keep]))
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
        table = np.full((n, NUM_COLUMNS), -1.0)
        table[:, 0] = frame
        table[:, 2:6] = xyxy_to_tlwh(boxes)
        table[:, 6] = 1.0 if scores is None else np.asarray(scores, dtype=np.float64)
        self._fh.write(format_rows(table))
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
