"""Crops of detections as a model's input: clip, resize, reorder channels, normalise.

Shared by the extractor (:mod:`deepsort_edge.appearance.embedder`, crops of a frame) and
the exporter (:mod:`deepsort_edge.appearance.export`, calibration and verification crops),
so that a model is calibrated and checked on exactly the input it later sees.
:func:`check_bgr_image` is also the tracker's check of the frames it is given.
Needs only numpy and OpenCV; OpenCV is imported where an image is resized, so
the tracker's frame check does not load it.

Example:
    >>> import numpy as np
    >>> frame = np.zeros((240, 320, 3), np.uint8)
    >>> preprocess_crops(frame, np.array([[10, 20, 60, 140]]), (128, 64)).shape
    (1, 3, 128, 64)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "as_xyxy",
    "check_bgr_image",
    "clip_boxes",
    "preprocess_crops",
    "preprocess_images",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def check_bgr_image(image: object, name: str = "frame") -> np.ndarray:
    """Return ``image`` if it is an ``(H, W, 3)`` uint8 array with ``H, W >= 1``.

    Raises:
        TypeError: if it is not a numpy array, or not uint8.
        ValueError: if its shape is not ``(H, W, 3)``.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array (H, W, 3) uint8 BGR, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8 (BGR image), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} must have shape (H, W, 3) with H, W >= 1, got {image.shape}")
    return image


def as_xyxy(detections: object) -> np.ndarray:
    """``(N, 4)`` float64 boxes from ``sv.Detections`` or an array-like of xyxy rows.

    Raises:
        TypeError: if ``detections`` cannot be read as numbers.
        ValueError: if the boxes are not ``(N, 4)`` or not finite.
    """
    xyxy = getattr(detections, "xyxy", detections)
    try:
        xyxy = np.asarray(xyxy, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "detections must be sv.Detections or an (N, 4) xyxy array, "
            f"got {type(detections).__name__}"
        ) from exc
    if xyxy.size == 0:
        return np.empty((0, 4), dtype=np.float64)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"detections must be (N, 4) xyxy boxes, got shape {xyxy.shape}")
    if not np.isfinite(xyxy).all():
        bad = np.flatnonzero(~np.isfinite(xyxy).all(axis=1))
        raise ValueError(f"detections must have finite boxes; rows {bad[:10].tolist()} are not")
    return xyxy


def clip_boxes(xyxy: np.ndarray, frame_height: int, frame_width: int) -> np.ndarray:
    """Integer crop windows for boxes, clipped to the frame and at least 1x1.

    The window covers every pixel the box touches (floor of left/top, ceil of
    right/bottom). A box that is empty or lies (partly) outside the frame is
    clamped into it, and a window thinner than one pixel grows to one pixel at
    the nearest position inside the frame: every detection thus gets a real,
    non-empty crop and a finite feature, the appearance of the frame pixels
    nearest to it. (Zeros would make its cosine distance undefined.)

    Args:
        xyxy: ``(N, 4)`` boxes ``x1, y1, x2, y2`` in pixels, finite.
        frame_height: frame height in pixels, ``>= 1``.
        frame_width: frame width in pixels, ``>= 1``.

    Returns:
        ``(N, 4)`` int64 windows ``x1, y1, x2, y2`` with
        ``0 <= x1 < x2 <= frame_width`` and ``0 <= y1 < y2 <= frame_height``.

    Example:
        >>> clip_boxes(np.array([[-5.0, 2.5, 3.2, 2.5]]), 4, 4).tolist()
        [[0, 2, 4, 3]]
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    out = np.empty(xyxy.shape, dtype=np.int64)
    for lo, hi, size in ((0, 2, frame_width), (1, 3, frame_height)):
        a = np.minimum(xyxy[:, lo], xyxy[:, hi])  # tolerate swapped corners
        b = np.maximum(xyxy[:, lo], xyxy[:, hi])
        start = np.clip(np.floor(a), 0, size - 1).astype(np.int64)
        stop = np.clip(np.ceil(b), 0, size).astype(np.int64)
        stop = np.maximum(stop, start + 1)
        out[:, lo], out[:, hi] = start, stop
    return out


def _normalise_batch(
    batch: np.ndarray, mean: Sequence[float], std: Sequence[float], color_order: str
) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 BGR -> ``(N, 3, H, W)`` float32 normalised, in channel order."""
    n, h, w, _ = batch.shape
    out = np.empty((n, 3, h, w), dtype=np.float32)
    source = (2, 1, 0) if color_order == "RGB" else (0, 1, 2)
    for c in range(3):
        # (x / 255 - mean) / std folded into one multiply-add per pixel.
        scale = np.float32(1.0 / (255.0 * std[c]))
        shift = np.float32(-mean[c] / std[c])
        np.multiply(batch[..., source[c]], scale, out=out[:, c], dtype=np.float32)
        out[:, c] += shift
    return out


def preprocess_crops(
    frame: np.ndarray,
    xyxy: np.ndarray,
    input_size: tuple[int, int],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    color_order: str = "RGB",
) -> np.ndarray:
    """Crop boxes from a BGR frame into a normalised NCHW batch.

    Each box is clipped with :func:`clip_boxes`, resized to ``input_size``
    with ``cv2.INTER_LINEAR`` (aspect ratio not kept, as ReID models expect),
    converted to ``color_order`` and normalised as ``(x / 255 - mean) / std``.

    Args:
        frame: ``(H, W, 3)`` uint8 BGR image.
        xyxy: ``(N, 4)`` finite boxes in pixels.
        input_size: model input ``(height, width)``.
        mean: per-channel mean of pixels scaled to ``[0, 1]``, in ``color_order``.
        std: per-channel standard deviation, in ``color_order``.
        color_order: ``"RGB"`` or ``"BGR"``.

    Returns:
        ``(N, 3, input_size[0], input_size[1])`` float32 array.
    """
    import cv2  # noqa: PLC0415  (see the module docstring)

    height, width = int(input_size[0]), int(input_size[1])
    windows = clip_boxes(xyxy, frame.shape[0], frame.shape[1])
    batch = np.empty((len(windows), height, width, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(windows):
        cv2.resize(
            frame[y1:y2, x1:x2], (width, height), dst=batch[i], interpolation=cv2.INTER_LINEAR
        )
    return _normalise_batch(batch, mean, std, color_order)


def preprocess_images(
    images: Sequence[np.ndarray],
    input_size: tuple[int, int],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    color_order: str = "RGB",
) -> np.ndarray:
    """Preprocess whole BGR images (already cropped) like :func:`preprocess_crops`.

    Args:
        images: uint8 BGR images ``(h, w, 3)``, any sizes.
        input_size: model input ``(height, width)``.
        mean: per-channel mean in ``color_order``.
        std: per-channel standard deviation in ``color_order``.
        color_order: ``"RGB"`` or ``"BGR"``.

    Returns:
        ``(N, 3, input_size[0], input_size[1])`` float32 array.
    """
    import cv2  # noqa: PLC0415  (see the module docstring)

    height, width = int(input_size[0]), int(input_size[1])
    batch = np.empty((len(images), height, width, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        check_bgr_image(image, f"images[{i}]")
        cv2.resize(image, (width, height), dst=batch[i], interpolation=cv2.INTER_LINEAR)
    return _normalise_batch(batch, mean, std, color_order)
