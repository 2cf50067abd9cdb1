"""Detectors for the detect -> embed -> track pipeline, torch-free.

- :class:`ONNXDetector` (:mod:`.onnx_detector`): YOLO (v5u/v8/11, NMS-free),
  YOLOX and DETR-family ONNX exports on the embedder's ONNX Runtime providers.
- :class:`HOGPeopleDetector` (:mod:`.hog`): OpenCV's HOG people detector, a
  weights-free weak baseline (OpenCV < 5).
- Building blocks: :mod:`.layouts` (raw output decoding), :mod:`.nms`
  (class-aware NMS), :mod:`.letterbox` (frame <-> model input).

Both detectors take a BGR uint8 frame and return ``sv.Detections``
(``__call__``) or ``(xyxy, scores, class_ids)`` arrays (``detect_arrays``).

Example:
    >>> from deepsort_edge.detection import ONNXDetector
    >>> detector = ONNXDetector("yolo11n.onnx", classes=["person"])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from deepsort_edge.optional import lazy_exports

__all__ = [
    "HOGPeopleDetector",
    "ONNXDetector",
    "fit_to_input",
    "guess_layout",
    "load_detector",
]

_LAZY = {
    "ONNXDetector": ".onnx_detector",
    "HOGPeopleDetector": ".hog",
    "fit_to_input": ".letterbox",
    "guess_layout": ".layouts",
}


def load_detector(spec: str, **kwargs: Any) -> Any:
    """``"hog"`` (or ``"hog:UPSCALE"``) -> :class:`HOGPeopleDetector`, a path -> :class:`ONNXDetector`.

    ``kwargs`` go to the detector.

    Example:
        >>> load_detector("yolo11n.onnx", classes=["person"])  # doctest: +SKIP
        >>> load_detector("hog:2")  # HOG on the frame enlarged twice  # doctest: +SKIP
    """
    if not isinstance(spec, str):
        spec = str(spec)
    name, _, upscale = spec.partition(":")
    if name.lower() == "hog":
        from .hog import HOGPeopleDetector  # noqa: PLC0415

        if upscale:
            try:
                kwargs["upscale"] = float(upscale)
            except ValueError:
                raise ValueError(f"hog:UPSCALE needs a number, got {spec!r}") from None
        return HOGPeopleDetector(**kwargs)
    from .onnx_detector import ONNXDetector  # noqa: PLC0415

    return ONNXDetector(spec, **kwargs)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
