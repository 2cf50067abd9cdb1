"""Frame -> model input and model boxes -> frame boxes, for letterbox or plain resize.

A :class:`FrameTransform` records exactly what :func:`fit_to_input` did to a
frame (a scale per axis and a pad in pixels), so :meth:`FrameTransform.to_frame`
inverts it exactly: the scales are those of the resized image's integer size,
not the nominal ratio. Letterbox keeps the aspect ratio and pads with a grey
border (ultralytics and YOLOX exports expect it; YOLOX pads bottom-right only);
``"resize"`` stretches the frame to the input (the DETR family).

Example:
    >>> import numpy as np
    >>> image, t = fit_to_input(np.zeros((360, 480, 3), np.uint8), (640, 640))
    >>> image.shape, t.pad
    ((640, 640, 3), (0.0, 80.0))
    >>> t.to_frame(t.to_input(np.array([[10.0, 20.0, 110.0, 220.0]]))).round(4).tolist()
    [[10.0, 20.0, 110.0, 220.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RESIZE_MODES", "FrameTransform", "fit_to_input", "plan_transform"]

#: ``"letterbox"`` (keep aspect, pad centred), ``"letterbox-corner"`` (pad right and
#: bottom only, as YOLOX) or ``"resize"`` (stretch).
RESIZE_MODES = ("letterbox", "letterbox-corner", "resize")


@dataclass(frozen=True)
class FrameTransform:
    """How a frame of ``frame_size`` became a model input of ``input_size``.

    ``input = frame * scale + pad`` per axis, for x and y.

    Attributes:
        frame_size: ``(height, width)`` of the original frame.
        input_size: ``(height, width)`` of the model input.
        resized_size: ``(height, width)`` of the frame after resizing, before padding.
        scale: ``(sx, sy)``: resized width / frame width, resized height / frame height.
        pad: ``(left, top)`` border in input pixels.
    """

    frame_size: tuple[int, int]
    input_size: tuple[int, int]
    resized_size: tuple[int, int]
    scale: tuple[float, float]
    pad: tuple[float, float]

    def to_input(self, xyxy: np.ndarray) -> np.ndarray:
        """Frame-pixel ``(N, 4)`` xyxy boxes -> input pixels."""
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        factor = np.array([self.scale[0], self.scale[1]] * 2)
        offset = np.array([self.pad[0], self.pad[1]] * 2)
        return boxes * factor + offset

    def to_frame(self, xyxy: np.ndarray, clip: bool = True) -> np.ndarray:
        """Input-pixel ``(N, 4)`` xyxy boxes -> frame pixels, clipped to the frame unless ``clip=False``."""
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        factor = np.array([self.scale[0], self.scale[1]] * 2)
        offset = np.array([self.pad[0], self.pad[1]] * 2)
        out = (boxes - offset) / factor
        if clip:
            height, width = self.frame_size
            np.clip(out[:, 0::2], 0.0, width, out=out[:, 0::2])
            np.clip(out[:, 1::2], 0.0, height, out=out[:, 1::2])
        return out


def _size(value: tuple[int, int], name: str) -> tuple[int, int]:
    if len(value) != 2 or any(isinstance(v, bool) or int(v) != v or v < 1 for v in value):
        raise ValueError(f"{name} must be (height, width) of positive ints, got {value!r}")
    return int(value[0]), int(value[1])


def plan_transform(
    frame_size: tuple[int, int], input_size: tuple[int, int], mode: str = "letterbox"
) -> FrameTransform:
    """The transform :func:`fit_to_input` applies to a frame of ``frame_size`` (both ``(h, w)``).

    Example:
        >>> plan_transform((360, 480), (640, 640)).scale
        (1.3333333333333333, 1.3333333333333333)
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {mode!r}")
    (fh, fw), (ih, iw) = _size(frame_size, "frame_size"), _size(input_size, "input_size")
    if mode == "resize":
        return FrameTransform((fh, fw), (ih, iw), (ih, iw), (iw / fw, ih / fh), (0.0, 0.0))
    ratio = min(ih / fh, iw / fw)
    rh, rw = min(ih, max(1, round(fh * ratio))), min(iw, max(1, round(fw * ratio)))
    if mode == "letterbox-corner":
        pad = (0.0, 0.0)
    else:  # split the border; the odd pixel goes right and bottom (as ultralytics does)
        pad = (float((iw - rw) // 2), float((ih - rh) // 2))
    return FrameTransform((fh, fw), (ih, iw), (rh, rw), (rw / fw, rh / fh), pad)


def fit_to_input(
    image: np.ndarray, input_size: tuple[int, int], mode: str = "letterbox", fill: int = 114
) -> tuple[np.ndarray, FrameTransform]:
    """Resize (and pad) an ``(H, W, 3)`` uint8 image to ``input_size`` ``(h, w)``.

    Returns:
        ``(image of input_size, the transform)``; the image keeps the input's channel order.
    """
    import cv2  # noqa: PLC0415

    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an (H, W, 3) array, got shape {getattr(image, 'shape', None)}")
    transform = plan_transform(image.shape[:2], input_size, mode)
    rh, rw = transform.resized_size
    ih, iw = transform.input_size
    resized = image if (rh, rw) == image.shape[:2] else cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    if (rh, rw) == (ih, iw):
        return np.ascontiguousarray(resized), transform
    out = np.full((ih, iw, 3), fill, dtype=image.dtype)
    left, top = int(transform.pad[0]), int(transform.pad[1])
    out[top : top + rh, left : left + rw] = resized
    return out, transform
