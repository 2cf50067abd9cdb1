"""Frames in and annotated video out: the I/O around the tracking loop.

Frame sources yield ``(frame_number, image or None)`` (1-based, BGR uint8
images as OpenCV reads them; None where a frame could not be decoded, or
where there are no images at all), which is what
:func:`deepsort_edge.streams.pipeline.track_frames` consumes.
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .mot import MOTSequence

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"}
_MAX_READ_RETRIES = 3


class VideoError(OSError):
    """A video cannot be opened for reading or writing."""


class FrameSource:
    """Frames for the tracker: ``(frame_number, image or None)``; None = no image."""

    kind = "detections"
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height)

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames
        self.unreadable: list[int] = []
        self.ended_at: int | None = None  # last frame read when the source ran out early
        self.length_source = ""  # where num_frames came from, for messages
        # The frames to yield when not all of 1..num_frames are needed (see frames_to_step).
        self.frames: Iterable[int] | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        frames = range(1, self.num_frames + 1) if self.frames is None else self.frames
        for frame in frames:
            yield frame, None

    def close(self) -> None:
        """Release the source."""

    def _read_image(self, frame: int, path: Path) -> np.ndarray | None:
        """``path`` as a BGR image; None (and ``frame`` listed as unreadable) when it cannot be decoded."""
        import cv2  # noqa: PLC0415

        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            self.unreadable.append(frame)
        elif self.size is None:
            self.size = (image.shape[1], image.shape[0])
        return image


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
        for frame in range(1, self.num_frames + 1):
            yield frame, self._read_image(frame, self.sequence.image_path(frame))


class _CaptureSource(FrameSource):
    """Frames read from an OpenCV ``VideoCapture`` (``self.capture``): a video file or a live source."""

    capture: Any

    def _read_next(self) -> tuple[np.ndarray | None, int]:
        """The capture's next frame and the failed reads before it; ``(None, n)`` once it has ended.

        One failed read may be a corrupt frame; ``_MAX_READ_RETRIES + 1`` in a
        row are the end (a stalled source never hangs the run).
        """
        failed = 0
        while failed <= _MAX_READ_RETRIES:
            ok, image = self.capture.read()
            if ok:
                if self.size is None:
                    self.size = (image.shape[1], image.shape[0])
                return image, failed
            failed += 1
        return None, failed

    def close(self) -> None:
        self.capture.release()


class VideoSource(_CaptureSource):
    """Frames of a video file read with OpenCV."""

    kind = "video"

    def __init__(self, path: Path, max_frames: int | None) -> None:
        import cv2  # noqa: PLC0415

        self.path = path
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise VideoError(f"cannot open video {path} (not a video, or a codec OpenCV lacks)")
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
            image, failed = self._read_next()
            if image is None:
                self.ended_at = frame
                return
            # Reads that failed before this one were corrupt frames: tracked without detections.
            for lost in range(frame + 1, frame + failed + 1):
                self.unreadable.append(lost)
                yield lost, None
            frame += failed
            if self.num_frames > 0 and frame >= self.num_frames:
                return
            frame += 1
            yield frame, image


#: URL schemes read as live streams (besides a camera index such as ``0``).
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def is_live_source(spec: str | Path) -> bool:
    """True for a camera index (``"0"``) or a stream URL (``rtsp://``, ``http://``, ...).

    Example:
        >>> is_live_source("0"), is_live_source("rtsp://cam/1"), is_live_source("clip.mp4")
        (True, True, False)
    """
    text = str(spec)
    return text.isdigit() or text.lower().startswith(STREAM_SCHEMES)


class ImageFilesSource(FrameSource):
    """The images of a plain folder, in name order, as frames ``1..N``."""

    kind = "images"

    def __init__(self, folder: Path, max_frames: int | None = None) -> None:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if max_frames is not None:
            files = files[:max_frames]
        super().__init__(len(files))
        self.files = files

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        for frame, path in enumerate(self.files, start=1):
            yield frame, self._read_image(frame, path)


class StreamSource(_CaptureSource):
    """A camera (by index) or a network stream (URL), read with OpenCV until it ends.

    Frames are numbered as they are read. A read that fails
    ``_MAX_READ_RETRIES + 1`` times in a row ends the stream.
    """

    kind = "live"

    def __init__(self, spec: str, max_frames: int | None = None) -> None:
        import cv2  # noqa: PLC0415

        self.spec = spec
        self.capture = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
        if not self.capture.isOpened():
            what = f"camera {spec}" if spec.isdigit() else f"stream {spec}"
            raise VideoError(f"cannot open {what} (no such device, unreachable, or a protocol OpenCV lacks)")
        super().__init__(max_frames or 0)
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        # Streams often report nonsense rates (FFmpeg's 90000 tick rate, 1000 for MJPEG).
        self.fps = fps if 0 < fps <= 240 else None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        frame = 0
        while self.num_frames <= 0 or frame < self.num_frames:
            image, _ = self._read_next()  # a live source skips reads that fail: nothing is lost in between
            if image is None:
                self.ended_at = frame
                return
            frame += 1
            yield frame, image


# --------------------------------------------------------------------------- video output
def open_video_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[Any, Path]:
    """Open a ``cv2.VideoWriter``: mp4v for ``.mp4``, MJPG for ``.avi`` (and as fall-back).

    opencv-python's wheels encode MPEG-4 Part 2 (``mp4v``) but not H.264
    (``avc1`` fails to open), so ``.mp4`` uses ``mp4v``; if that fails too,
    the video is written as MJPG ``.avi`` beside the requested path.

    Returns:
        ``(writer, path actually written)``.

    Raises:
        VideoError: No codec could be opened.
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
                warnings.warn(f"mp4v unavailable, writing {target} (MJPG)", RuntimeWarning, stacklevel=2)
            return writer, target
        writer.release()
    raise VideoError(f"cannot open a video writer for {path} (tried mp4v and MJPG)")


class TrackAnnotator:
    """Boxes, ``#id`` labels and traces of confirmed tracks, drawn with OpenCV (one colour per id).

    Example:
        >>> image = np.zeros((120, 160, 3), np.uint8)
        >>> out = TrackAnnotator()(image, np.array([[10., 10., 50., 100.]]), np.array([1]))
        >>> out.shape, bool(image.any()), bool(out.any())
        ((120, 160, 3), False, True)
    """

    def __init__(self, trace_length: int = 30) -> None:
        if trace_length < 1:
            raise ValueError(f"trace_length must be >= 1, got {trace_length}")
        self.trace_length = trace_length
        self._traces: dict[int, list[tuple[int, int]]] = {}

    @staticmethod
    def color(track_id: int) -> tuple[int, int, int]:
        """A stable, well-spread BGR colour for ``track_id`` (golden-ratio hues)."""
        import cv2  # noqa: PLC0415

        hue = int((track_id * 0.618033988749895 % 1.0) * 180)
        hsv = np.array([[[hue, 200, 255]]], dtype=np.uint8)
        b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
        return int(b), int(g), int(r)

    def __call__(self, image: np.ndarray, xyxy: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Annotate a copy of ``image`` with the boxes whose id is >= 1 (and their recent traces)."""
        import cv2  # noqa: PLC0415

        out = image.copy()
        keep = np.flatnonzero(np.asarray(ids) >= 1)
        seen = set()
        for n in keep:
            track_id = int(ids[n])
            x0, y0, x1, y1 = (int(round(float(v))) for v in xyxy[n])
            trace = self._traces.setdefault(track_id, [])
            trace.append(((x0 + x1) // 2, y1))  # bottom centre: where the object stands
            del trace[: -self.trace_length]
            seen.add(track_id)
        for track_id in [t for t in self._traces if t not in seen]:
            del self._traces[track_id]  # a trace restarts when its track comes back
        for track_id, trace in self._traces.items():
            if len(trace) > 1:
                cv2.polylines(out, [np.array(trace, np.int32)], False, self.color(track_id), 2, cv2.LINE_AA)
        for n in keep:
            track_id = int(ids[n])
            color = self.color(track_id)
            x0, y0, x1, y1 = (int(round(float(v))) for v in xyxy[n])
            cv2.rectangle(out, (x0, y0), (x1, y1), color, 2)
            label = f"#{track_id}"
            (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
            top = max(y0 - h - base - 4, 0)
            cv2.rectangle(out, (x0, top), (x0 + w + 6, top + h + base + 4), color, cv2.FILLED)
            cv2.putText(out, label, (x0 + 3, top + h + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        return out


_END = object()


class _Failure:
    """An exception handed from a producer thread to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class FrameBuffer:
    """A bounded hand-over between two threads.

    Args:
        capacity: most items held.
        drop_oldest: when full, ``put`` drops the oldest item (counted in
            ``dropped``) instead of waiting for room.

    Example:
        >>> buffer = FrameBuffer(2, drop_oldest=True)
        >>> for i in range(5):
        ...     _ = buffer.put(i)
        >>> buffer.finish()
        >>> [buffer.get(), buffer.get()], buffer.dropped
        ([3, 4], 3)
    """

    def __init__(self, capacity: int, drop_oldest: bool = False) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self.peak = 0  # most items held at once
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._finished = False  # the producer is done
        self._closed = False  # the consumer is gone

    def put(self, item: Any) -> bool:
        """Add an item, waiting for room (or dropping the oldest); False once the consumer closed."""
        with self._cond:
            while not self.drop_oldest and len(self._items) >= self.capacity and not self._closed:
                self._cond.wait(0.1)
            if self._closed:
                return False
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.peak = max(self.peak, len(self._items))
            self._cond.notify_all()
            return True

    def fail(self, error: BaseException) -> None:
        """The producer failed: ``get`` raises ``error`` after the items before it (it is never dropped)."""
        with self._cond:
            self._items.append(_Failure(error))
            self._finished = True
            self._cond.notify_all()

    def get(self) -> Any:
        """The next item, waiting for one; :data:`FrameBuffer.END` once finished and empty.

        Raises:
            The producer's exception (see :meth:`fail`), in order.
        """
        with self._cond:
            while not self._items and not self._finished and not self._closed:
                self._cond.wait(0.1)
            if not self._items:
                return _END
            item = self._items.popleft()
            self._cond.notify_all()
        if isinstance(item, _Failure):
            raise item.error
        return item

    def finish(self) -> None:
        """The producer has no more items."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def close(self) -> None:
        """The consumer stops: pending and later items are discarded, waiting producers return."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        return sum(not isinstance(item, _Failure) for item in self._items)

    END = _END


def feed_in_thread(items: Iterable[Any], buffer: FrameBuffer, name: str) -> threading.Thread:
    """Start a daemon thread putting ``items`` into ``buffer``, then finishing it.

    The thread stops early when the consumer closes the buffer; an exception
    while iterating ``items`` is handed to the consumer (:meth:`FrameBuffer.fail`).
    """

    def feed() -> None:
        try:
            for item in items:
                if not buffer.put(item):
                    return
        except BaseException as exc:  # noqa: BLE001  (raised again in the consumer)
            buffer.fail(exc)
        finally:
            buffer.finish()

    thread = threading.Thread(target=feed, name=name, daemon=True)
    thread.start()
    return thread


def prefetch(frames: Iterable[tuple[int, Any]], depth: int = 4) -> Iterator[tuple[int, Any]]:
    """Yield ``frames`` as they are, read ``depth`` ahead in a background thread.

    OpenCV releases the GIL while it decodes, so the next frames decode while
    the caller embeds and tracks this one. An exception in the reader is
    raised here, in order; when the caller stops early the reader stops too.

    Example:
        >>> list(prefetch(iter([(1, None), (2, None)])))
        [(1, None), (2, None)]
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    buffer = FrameBuffer(depth)
    reader = feed_in_thread(frames, buffer, "deepsort-edge-frame-reader")
    try:
        while (item := buffer.get()) is not FrameBuffer.END:
            yield item
    finally:
        buffer.close()
        reader.join()
