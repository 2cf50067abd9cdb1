"""Frames -> detector -> embedder -> tracker, the three overlapping through bounded buffers.

:func:`detect_and_track` runs three threads' worth of work: a reader thread
pulls frames from the source, a worker thread detects and embeds, and the
calling thread tracks and writes (``on_frame``). ONNX Runtime and OpenCV
release the GIL while they work, so on two cores the stages overlap and the
run goes about as fast as its slowest stage.

Every hand-over is a :class:`~deepsort_edge.io.video.FrameBuffer` of a few frames, so memory stays
flat however long a run is. From a file (``live=False``) the reader waits when
the buffer is full: no frame is lost. From a camera or stream (``live=True``)
it never waits (the camera would not either): when the pipeline falls behind,
the oldest waiting frame is dropped and counted, so the newest frame is
always the next one tracked. Ctrl-C stops the run cleanly: what was tracked
up to then has been handed to ``on_frame``, and ``interrupted`` is set.

Example:
    >>> import numpy as np
    >>> from deepsort_edge import DeepSORTTracker
    >>> class OneBox:
    ...     def detect_arrays(self, image):
    ...         return np.array([[10, 10, 50, 90]], np.float32), np.ones(1, np.float32), np.zeros(1, np.int64)
    >>> frames = [(i, np.zeros((120, 160, 3), np.uint8)) for i in range(1, 6)]
    >>> stats = detect_and_track(frames, OneBox(), DeepSORTTracker(use_appearance=False))
    >>> stats.frames_tracked, stats.dropped, sorted(stats.track_ids)
    (5, 0, [1])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..io.video import FrameBuffer, feed_in_thread
from .pipeline import TrackedCounts

__all__ = ["DetectTrackStats", "Detector", "detect_and_track"]

#: ``on_frame(frame, image, xyxy, scores, ids, detections)``: ``xyxy``/``ids`` are the
#: tracker's output; ``detections`` the detector's ``(xyxy, scores, class_ids)``.
DetectFrameCallback = Callable[[int, "np.ndarray | None", np.ndarray, np.ndarray, np.ndarray, tuple], None]


class Detector(Protocol):
    """What :func:`detect_and_track` needs of a detector (both of :mod:`deepsort_edge.detection` fit)."""

    def detect_arrays(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass
class DetectTrackStats(TrackedCounts):
    """What :func:`detect_and_track` did and how long each stage worked (seconds)."""

    frames_read: int = 0
    frames_tracked: int = 0
    dropped: int = 0
    read_s: float = 0.0
    detect_s: float = 0.0
    wall_s: float = 0.0
    peak_buffered: int = 0  # most frames waiting in both buffers together
    interrupted: bool = False
    unreadable: list[int] = field(default_factory=list)

    @property
    def fps(self) -> float | None:
        """Frames tracked per second of wall time."""
        return self.frames_tracked / self.wall_s if self.wall_s > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready part of a run summary."""
        return {
            "frames_read": self.frames_read,
            "frames": self.frames_tracked,
            "dropped_frames": self.dropped,
            "detections": self.detections,
            "result_rows": self.rows,
            "tracks": len(self.track_ids),
            "interrupted": self.interrupted,
            "time_s": {name: round(getattr(self, f"{name}_s"), 4)
                       for name in ("read", "detect", "embed", "track", "output", "wall")},
            "fps": round(self.fps, 2) if self.fps else None,
            "peak_buffered_frames": self.peak_buffered,
        }


def detect_and_track(
    source: Iterable[tuple[int, np.ndarray | None]],
    detector: Detector,
    tracker: Any,
    extractor: Any | None = None,
    on_frame: DetectFrameCallback | None = None,
    *,
    live: bool = False,
    buffer_size: int = 4,
    progress: Any | None = None,
) -> DetectTrackStats:
    """Detect, embed and track every frame of ``source``, the stages overlapping.

    Args:
        source: yields ``(frame_number, BGR image or None)``; None (an
            undecodable frame) is tracked without detections.
        detector: has ``detect_arrays(image) -> (xyxy, scores, class_ids)``.
        tracker: a ``DeepSORTTracker``.
        extractor: a ``DeepSORTFeatureExtractor`` (``extract_features(image, xyxy)``), or None.
        on_frame: called in the calling thread after each frame is tracked.
        live: the source will not wait (camera, stream): drop the oldest
            frame rather than wait when the pipeline falls behind.
        buffer_size: frames each of the two buffers holds.
        progress: a tqdm-like bar: ``update(1)`` per frame and, if it has
            one, ``set_postfix_str`` with the fps and dropped frames.

    Returns:
        Counts and per-stage times; ``interrupted`` after Ctrl-C.

    Raises:
        Whatever the source, detector or extractor raised (in this thread).
    """
    stats = DetectTrackStats()
    frames = FrameBuffer(buffer_size, drop_oldest=live)
    detected = FrameBuffer(buffer_size)

    def timed(items: Iterable[tuple[int, np.ndarray | None]]) -> Iterator[tuple[int, np.ndarray | None]]:
        iterator = iter(items)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            stats.read_s += time.perf_counter() - start
            stats.frames_read += 1
            if item[1] is None:
                stats.unreadable.append(item[0])
            yield item

    def work() -> Iterator[tuple[int, np.ndarray | None, tuple, np.ndarray | None]]:
        while (item := frames.get()) is not FrameBuffer.END:
            frame, image = item
            features = None
            if image is None:
                found = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
            else:
                start = time.perf_counter()
                found = detector.detect_arrays(image)
                stats.detect_s += time.perf_counter() - start
                if extractor is not None and len(found[0]):
                    start = time.perf_counter()
                    features = extractor.extract_features(image, found[0])
                    stats.embed_s += time.perf_counter() - start
            stats.peak_buffered = max(stats.peak_buffered, len(frames) + len(detected) + 1)
            yield frame, image, found, features

    started = time.perf_counter()
    threads = [feed_in_thread(timed(source), frames, "deepsort-edge-reader"),
               feed_in_thread(work(), detected, "deepsort-edge-detector")]
    try:
        while (item := detected.get()) is not FrameBuffer.END:
            frame, image, (xyxy, scores, class_ids), features = item
            start = time.perf_counter()
            ids, boxes = tracker.update_arrays(xyxy, scores, features, image, class_ids, return_boxes=True)
            stats.track_s += time.perf_counter() - start
            stats.frames_tracked += 1
            stats.count(len(xyxy), ids)
            if on_frame is not None:
                start = time.perf_counter()
                on_frame(frame, image, boxes, scores, ids, (xyxy, scores, class_ids))
                stats.output_s += time.perf_counter() - start
            stats.dropped = frames.dropped
            if progress is not None:
                progress.update(1)
                if hasattr(progress, "set_postfix_str") and stats.frames_tracked % 10 == 0:
                    elapsed = time.perf_counter() - started
                    progress.set_postfix_str(
                        f"{stats.frames_tracked / elapsed:.1f} fps, {stats.dropped} dropped", refresh=False
                    )
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        frames.close()
        detected.close()
        for thread in threads:
            # A stage busy in a long inference finishes it first; daemon threads never block exit.
            thread.join(timeout=10)
        stats.wall_s = time.perf_counter() - started
        stats.dropped = frames.dropped
    return stats
