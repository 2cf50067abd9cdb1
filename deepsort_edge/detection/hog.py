"""OpenCV's HOG + linear SVM people detector: a weights-free, weak baseline.

Dalal and Triggs' detector as OpenCV ships it (``cv2.HOGDescriptor`` with its
built-in people SVM): no model file, no download, pedestrians only, upright
and at least 128 px tall in the searched image (``upscale`` enlarges the frame
first to find smaller ones). It misses many people and fires on clutter: use
it to try the pipeline, not to measure tracking. Scores are the SVM margins
squashed to ``(0, 1)`` by a logistic (margin 0 -> 0.5).

``HOGDescriptor`` is absent from OpenCV 5 (its ``objdetect`` module was
reorganised); with OpenCV 5 installed this raises an ``ImportError`` saying to
install ``opencv-python-headless<5``.

Example:
    >>> detector = HOGPeopleDetector(upscale=2.0)  # doctest: +SKIP
    >>> xyxy, scores, class_ids = detector.detect_arrays(frame)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .nms import nms

if TYPE_CHECKING:
    import supervision as sv

__all__ = ["HOG_UNAVAILABLE", "HOGPeopleDetector"]

HOG_UNAVAILABLE = (
    "the HOG detector needs cv2.HOGDescriptor, which OpenCV {version} lacks (removed in OpenCV 5): "
    'pip install "opencv-python-headless<5"'
)


class HOGPeopleDetector:
    """People in BGR frames with OpenCV's default HOG people detector.

    Args:
        upscale: the frame is enlarged by this factor before searching (the
            detector's window is 64 x 128 px: people shorter than
            ``128 / upscale`` px are missed).
        win_stride: window step in pixels ``(x, y)``.
        scale: step between pyramid levels (> 1).
        hit_threshold: SVM margin a window needs (0: OpenCV's default).
        score_threshold: detections scoring below this (after the logistic) are dropped.
        iou_threshold: NMS threshold on the grouped detections.

    Raises:
        ImportError: OpenCV lacks ``HOGDescriptor`` (OpenCV 5).
        ValueError: a bad argument.
    """

    class_names = {0: "person"}

    def __init__(
        self,
        upscale: float = 1.0,
        win_stride: tuple[int, int] = (8, 8),
        scale: float = 1.05,
        hit_threshold: float = 0.0,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.45,
    ) -> None:
        import cv2  # noqa: PLC0415

        if not hasattr(cv2, "HOGDescriptor"):
            raise ImportError(HOG_UNAVAILABLE.format(version=cv2.__version__))
        if not upscale > 0:
            raise ValueError(f"upscale must be > 0, got {upscale!r}")
        if not scale > 1:
            raise ValueError(f"scale must be > 1, got {scale!r}")
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold!r}")
        self.upscale = float(upscale)
        self.win_stride = (int(win_stride[0]), int(win_stride[1]))
        self.scale = float(scale)
        self.hit_threshold = float(hit_threshold)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __repr__(self) -> str:
        return f"HOGPeopleDetector(upscale={self.upscale}, score_threshold={self.score_threshold})"

    def detect_arrays(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(xyxy, scores, class_ids)`` of the people in a BGR uint8 frame, best first (class 0)."""
        import cv2  # noqa: PLC0415

        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be an (H, W, 3) uint8 BGR image, got {getattr(frame, 'shape', frame)!r}")
        image = frame
        if self.upscale != 1.0:
            image = cv2.resize(frame, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        rects, weights = self._hog.detectMultiScale(
            image, hitThreshold=self.hit_threshold, winStride=self.win_stride, scale=self.scale
        )
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / self.upscale
        margins = np.asarray(weights, dtype=np.float64).reshape(-1)
        scores = 1.0 / (1.0 + np.exp(-margins))
        xyxy = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        height, width = frame.shape[:2]
        np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
        keep = scores >= self.score_threshold
        xyxy, scores = xyxy[keep], scores[keep]
        order = nms(xyxy, scores, self.iou_threshold)
        return xyxy[order].astype(np.float32), scores[order].astype(np.float32), np.zeros(order.size, np.int64)

    def __call__(self, frame: np.ndarray) -> sv.Detections:
        """``sv.Detections`` of the people in a BGR frame (``class_id`` 0, ``class_name`` "person")."""
        import supervision as sv  # noqa: PLC0415

        xyxy, scores, class_ids = self.detect_arrays(frame)
        names = np.full(len(class_ids), "person", dtype=str)
        return sv.Detections(xyxy=xyxy, confidence=scores, class_id=class_ids, data={"class_name": names})

    detect = __call__
