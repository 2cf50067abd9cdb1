"""The one loop: MOT detections (+ frames or embeddings) -> tracker -> per-frame results.

``deepsort-edge track``, ``deepsort-edge demo``, the benchmarks and the tests
all run detections through :func:`track_frames` (or :func:`track_mot`, its
results-only form), so the way a frame is fed to the tracker is written once.

Example:
    >>> from deepsort_edge import DeepSORTTracker
    >>> from deepsort_edge.io.mot import MOTData
    >>> det = MOTData.from_arrays([1, 2, 3], [-1, -1, -1], [[10, 10, 50, 110], [12, 10, 52, 110], [14, 10, 54, 110]])
    >>> track_mot(DeepSORTTracker(use_appearance=False), det, num_frames=3).ids.tolist()
    [1]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..tracking.boxes import tlwh_to_xyxy
from ..io.mot import MOTData

FrameCallback = Callable[[int, "np.ndarray | None", np.ndarray, np.ndarray, np.ndarray], None]


@dataclass
class TrackedCounts:
    """What a run handed the tracker and got back, and the embed / track / output time (seconds).

    Shared by :class:`TrackingStats` and ``detect_track.DetectTrackStats``.
    """

    detections: int = 0
    rows: int = 0  # result rows: rows that joined a confirmed track
    track_ids: set[int] = field(default_factory=set)
    embed_s: float = 0.0
    track_s: float = 0.0
    output_s: float = 0.0

    def count(self, detections: int, ids: np.ndarray) -> None:
        """Add one tracked frame: its number of detections and the ids the tracker gave them."""
        self.detections += detections
        confirmed = ids[ids >= 1]
        self.rows += int(confirmed.size)
        self.track_ids.update(int(i) for i in confirmed)


@dataclass
class TrackingStats(TrackedCounts):
    """What :func:`track_frames` did and how long its parts took (seconds)."""

    frames: int = 0
    decode_s: float = 0.0
    warmup_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready part of a run summary."""
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


def frames_to_step(frames_with_rows: Iterable[int], last: int, coast: int) -> Iterator[int]:
    """The frames of ``1..last`` a tracker must see when there are no images.

    Those with detections, and after each the ``coast`` frames in which its
    tracks may still be alive (they age there). A confirmed track is dropped
    after ``maximum_frames_without_update + 1`` frames without a match and a
    tentative one after one, so with ``coast = maximum_frames_without_update
    + 1`` no track is left after that: the frames skipped would change
    nothing (no track to age, nothing to output).

    Example:
        >>> list(frames_to_step([1, 2, 9], last=12, coast=2))
        [1, 2, 3, 4, 9, 10, 11]
    """
    stepped = 0  # the last frame yielded
    alive_until = 0  # tracks may live up to this frame
    for frame in sorted(frames_with_rows):
        if frame > last:
            break
        yield from range(stepped + 1, min(frame - 1, alive_until) + 1)
        yield frame
        stepped, alive_until = frame, frame + coast
    yield from range(stepped + 1, min(last, alive_until) + 1)


def track_frames(
    source: Iterable[tuple[int, np.ndarray | None]],
    detections: MOTData,
    tracker: Any,
    extractor: Any | None = None,
    on_frame: FrameCallback | None = None,
    progress: Any | None = None,
    embeddings: np.ndarray | None = None,
) -> TrackingStats:
    """Feed every frame's detections (and embeddings) to the tracker.

    Args:
        source: Yields ``(frame_number, image or None)`` in order. With an
            ``extractor``, a frame without an image is tracked as a frame
            without detections (the tracks coast).
        detections: All detections (MOT rows; column 7 is the score).
        tracker: A ``DeepSORTTracker``.
        extractor: A ``DeepSORTFeatureExtractor``, or None.
        on_frame: Called as ``on_frame(frame, image, xyxy, scores, ids)``
            after each update; ``xyxy`` are the tracker's output boxes.
        progress: A tqdm bar (``update(1)`` per frame) or None.
        embeddings: Precomputed embeddings, one row per detection row
            (instead of an ``extractor``).

    Returns:
        Counts and the decode / embed / track time split.
    """
    if extractor is not None and embeddings is not None:
        raise ValueError("give an extractor or precomputed embeddings, not both")
    stats = TrackingStats()
    index = detections.frame_index()
    table = detections.table
    empty = slice(0, 0)
    needs_image = extractor is not None
    iterator = iter(source)
    previous = 0
    while True:
        start = time.perf_counter()
        try:
            frame, image = next(iterator)
        except StopIteration:
            break
        stats.decode_s += time.perf_counter() - start
        rows = index.get(frame, empty)
        if needs_image and image is None:
            rows = empty  # undecodable frame: coast
        xyxy = tlwh_to_xyxy(table[rows, 2:6])
        scores = table[rows, 6].astype(np.float32)
        features = embeddings[rows] if embeddings is not None else None
        if needs_image and xyxy.shape[0]:
            start = time.perf_counter()
            features = extractor.extract_features(image, xyxy)
            stats.embed_s += time.perf_counter() - start
        start = time.perf_counter()
        ids, boxes = tracker.update_arrays(xyxy, scores, features, image, return_boxes=True)
        stats.track_s += time.perf_counter() - start
        stats.frames += frame - previous  # a sparse source skips frames where nothing can change
        stats.count(xyxy.shape[0], ids)
        if on_frame is not None:
            start = time.perf_counter()
            on_frame(frame, image, boxes, scores, ids)
            stats.output_s += time.perf_counter() - start
        if progress is not None:
            progress.update(frame - previous)
        previous = frame
    return stats


def track_mot(
    tracker: Any, detections: MOTData, num_frames: int, embeddings: np.ndarray | None = None
) -> MOTData:
    """Track frames ``1..num_frames`` of ``detections`` (no images) and return the MOT results."""
    parts: list[np.ndarray] = []

    def keep(frame: int, image: Any, xyxy: np.ndarray, scores: np.ndarray, ids: np.ndarray) -> None:
        tracked = ids >= 1
        if tracked.any():
            parts.append(MOTData.from_arrays(np.full(int(tracked.sum()), frame), ids[tracked], xyxy[tracked]).table)

    from ..io.video import FrameSource  # frames 1..num_frames, no images

    track_frames(FrameSource(num_frames), detections, tracker, on_frame=keep, embeddings=embeddings)
    return MOTData(np.concatenate(parts)) if parts else MOTData.empty()
