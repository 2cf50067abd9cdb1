"""An ONNX object detector on the embedder's runtime: frame in, ``sv.Detections`` out.

:class:`ONNXDetector` runs ultralytics YOLO (v5u/v8/11 and their NMS-free
exports), YOLOX and DETR-family (RT-DETR, D-FINE, RF-DETR) ONNX files on the
same providers and session options as the appearance embedder
(:mod:`deepsort_edge.appearance.providers`): letterbox or resize
(:mod:`~deepsort_edge.detection.letterbox`), one inference, decoding of the
raw output (:mod:`~deepsort_edge.detection.layouts`), a score threshold and a
class filter, class-aware NMS (:mod:`~deepsort_edge.detection.nms`) and boxes
mapped back to the frame exactly, clipped to it.

Example:
    >>> detector = ONNXDetector("yolo11n.onnx", classes=["person"])  # doctest: +SKIP
    >>> detections = detector(frame)  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepsort_edge.appearance.providers import ProviderSpec, create_session, make_session_options, resolve_providers

from .layouts import (
    DEFAULT_STRIDES,
    LAYOUTS,
    Decoded,
    decode_detr,
    decode_end2end,
    decode_yolov5,
    decode_yolov8,
    decode_yolox,
    guess_layout,
)
from .letterbox import RESIZE_MODES, FrameTransform, fit_to_input
from .nms import nms as suppress

if TYPE_CHECKING:
    import onnxruntime as ort
    import supervision as sv

__all__ = ["DetectorPreprocessing", "ONNXDetector", "read_class_names"]


@dataclass(frozen=True)
class DetectorPreprocessing:
    """How a frame becomes the model's input tensor ``[1, 3, H, W]`` float32.

    Attributes:
        resize: one of :data:`~deepsort_edge.detection.letterbox.RESIZE_MODES`.
        color_order: ``"RGB"`` or ``"BGR"``, the order the model expects.
        scale: pixels are multiplied by this (``1 / 255`` or ``1``) ...
        mean: ... then ``(x - mean) / std`` per channel, in ``color_order``
            (``None``: no normalisation).
        std: see ``mean``.
        fill: grey level of the letterbox border.
    """

    resize: str
    color_order: str
    scale: float
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    fill: int = 114


#: What each layout's usual export expects; every field can be overridden.
DEFAULT_PREPROCESSING = {
    "yolov5": DetectorPreprocessing("letterbox", "RGB", 1 / 255),
    "yolov8": DetectorPreprocessing("letterbox", "RGB", 1 / 255),
    "end2end": DetectorPreprocessing("letterbox", "RGB", 1 / 255),
    "yolox": DetectorPreprocessing("letterbox-corner", "BGR", 1.0),
    "detr": DetectorPreprocessing("resize", "RGB", 1 / 255),
}
# NMS-free designs: suppressing again would only drop true neighbours.
_NMS_FREE = ("end2end", "detr")


def read_class_names(metadata: Mapping[str, str]) -> dict[int, str] | None:
    """Class names from an ONNX file's metadata (ultralytics writes ``names`` as a dict literal).

    Example:
        >>> read_class_names({"names": "{0: 'person', 1: 'bicycle'}"})
        {0: 'person', 1: 'bicycle'}
    """
    raw = metadata.get("names")
    if raw is None:
        return None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, (list, tuple)):
        value = dict(enumerate(value))
    if not isinstance(value, dict):
        return None
    return {int(k): str(v) for k, v in value.items()}


def _metadata_size(metadata: Mapping[str, str]) -> tuple[int, int] | None:
    raw = metadata.get("imgsz")
    try:
        value = ast.literal_eval(raw) if raw is not None else None
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    return None


def _triple(value: Sequence[float] | None, name: str) -> tuple[float, float, float] | None:
    if value is None:
        return None
    triple = tuple(float(v) for v in value)
    if len(triple) != 3:
        raise ValueError(f"{name} must have 3 values, got {value!r}")
    return triple  # type: ignore[return-value]


class ONNXDetector:
    """Detect objects in BGR frames with an ONNX model.

    Args:
        model_path: the ONNX file: one image input ``[1, 3, H, W]``, outputs in
            one of :data:`~deepsort_edge.detection.layouts.LAYOUTS`.
        providers: as for the embedder (``"auto"``, ``"cpu"``, ``"cuda"``, a list).
        layout: the output layout; ``None``: told from the output shapes and
            metadata (:func:`~deepsort_edge.detection.layouts.guess_layout`).
        input_size: ``(height, width)``; default the input's static shape,
            else the metadata's ``imgsz``, else 640 x 640.
        score_threshold: candidates scoring below this are dropped.
        iou_threshold: NMS IoU threshold (class-aware).
        nms: ``None``: on, except for NMS-free layouts (``end2end``, ``detr``).
        classes: keep only these classes: ids, or names where the model's
            metadata (or ``class_names``) has names; ``None``: all classes.
        class_names: id -> name, overriding the metadata's ``names``.
        max_detections: most detections returned per frame.
        resize, color_order, scale, mean, std: preprocessing, overriding the
            layout's usual one (:data:`DEFAULT_PREPROCESSING`).
        activation: DETR logits: ``"sigmoid"`` (default) or ``"softmax"``.
        decoded: YOLOX only: the export decoded the grid itself.
        strides: YOLOX head strides.
        session_options, intra_op_num_threads, graph_optimization_level: as
            for the embedder (:func:`~deepsort_edge.appearance.providers.make_session_options`).

    Raises:
        FileNotFoundError: ``model_path`` does not exist.
        ValueError: an invalid model or argument, an unknown class name, or a
            layout that cannot be told (the message says to pass ``layout=``).

    Example:
        >>> detector = ONNXDetector("yolo11n.onnx", classes=["person"], score_threshold=0.4)  # doctest: +SKIP
        >>> xyxy, scores, class_ids = detector.detect_arrays(frame)  # doctest: +SKIP
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        providers: str | Sequence[ProviderSpec] | None = "auto",
        *,
        layout: str | None = None,
        input_size: tuple[int, int] | None = None,
        score_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        nms: bool | None = None,
        classes: Sequence[int | str] | None = None,
        class_names: Mapping[int, str] | Sequence[str] | None = None,
        max_detections: int = 300,
        resize: str | None = None,
        color_order: str | None = None,
        scale: float | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        activation: str = "sigmoid",
        decoded: bool = False,
        strides: Sequence[int] = DEFAULT_STRIDES,
        session_options: ort.SessionOptions | None = None,
        intra_op_num_threads: int | None = None,
        graph_optimization_level: str | None = None,
    ) -> None:
        if not isinstance(model_path, (str, os.PathLike)):
            raise TypeError(f"model_path must be the path of an ONNX file, got {type(model_path).__name__}")
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model_path: ONNX model not found: {path}")
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold!r}")
        if not 0.0 <= float(iou_threshold) <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold!r}")
        if isinstance(max_detections, bool) or not isinstance(max_detections, int) or max_detections < 1:
            raise ValueError(f"max_detections must be a positive int, got {max_detections!r}")
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if activation not in ("sigmoid", "softmax"):
            raise ValueError(f"activation must be 'sigmoid' or 'softmax', got {activation!r}")
        self.model_path = path
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = max_detections
        self.activation = activation
        self.decoded = bool(decoded)
        self.strides = tuple(int(s) for s in strides)
        options = make_session_options(session_options, intra_op_num_threads, graph_optimization_level)
        self._session = create_session(path, options, resolve_providers(providers))
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [i.shape for i in inputs]
            raise ValueError(f"model_path: expected one image input [1, 3, H, W], got inputs {shapes}")
        self._input_name = inputs[0].name
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self.input_size = self._input_size(input_size, inputs[0].shape)
        self.layout = layout or self._guess_layout()
        base = DEFAULT_PREPROCESSING[self.layout]
        if resize is not None and resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        order = (color_order or base.color_order).upper()
        if order not in ("RGB", "BGR"):
            raise ValueError(f"color_order must be 'RGB' or 'BGR', got {color_order!r}")
        self.preprocessing = DetectorPreprocessing(
            resize or base.resize, order, base.scale if scale is None else float(scale),
            _triple(mean, "mean"), _triple(std, "std"), base.fill,
        )
        if (self.preprocessing.mean is None) != (self.preprocessing.std is None):
            raise ValueError("mean and std go together: give both or neither")
        self.nms = self.layout not in _NMS_FREE if nms is None else bool(nms)
        if class_names is not None:
            names = dict(class_names) if isinstance(class_names, Mapping) else dict(enumerate(class_names))
            self.class_names: dict[int, str] | None = {int(k): str(v) for k, v in names.items()}
        else:
            self.class_names = read_class_names(self.metadata)
        self.classes = self._class_ids(classes)

    # -- construction helpers -----------------------------------------------------

    def _input_size(self, given: tuple[int, int] | None, shape: Sequence[Any]) -> tuple[int, int]:
        if given is not None:
            if len(given) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in given):
                raise ValueError(f"input_size must be (height, width) of positive ints, got {given!r}")
            return int(given[0]), int(given[1])
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            return int(shape[2]), int(shape[3])
        return _metadata_size(self.metadata) or (640, 640)

    def _guess_layout(self) -> str:
        shapes = [o.shape for o in self._session.get_outputs()]
        if not all(isinstance(d, int) for shape in shapes for d in shape):
            # Dynamic output shapes: run once on a blank input to see them.
            blank = np.zeros((1, 3, *self.input_size), dtype=np.float32)
            shapes = [o.shape for o in self._session.run(None, {self._input_name: blank})]
        return guess_layout(shapes, self.input_size, self.metadata, self.strides)

    def _class_ids(self, classes: Sequence[int | str] | None) -> np.ndarray | None:
        if classes is None:
            return None
        if isinstance(classes, (str, int)):
            classes = [classes]
        by_name = {name: index for index, name in (self.class_names or {}).items()}
        ids = []
        for item in classes:
            if isinstance(item, str) and item.strip().lstrip("-").isdigit():
                item = int(item)
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                ids.append(int(item))
            elif isinstance(item, str) and item in by_name:
                ids.append(by_name[item])
            elif isinstance(item, str):
                known = ", ".join(sorted(by_name)) if by_name else "none (the model has no names metadata)"
                raise ValueError(f"classes: unknown class name {item!r}; known names: {known}")
            else:
                raise TypeError(f"classes must be class ids or names, got {item!r}")
        return np.asarray(sorted(set(ids)), dtype=np.int64)

    # -- properties -----------------------------------------------------------------

    @property
    def session(self) -> ort.InferenceSession:
        """The underlying ``onnxruntime.InferenceSession``."""
        return self._session

    @property
    def providers(self) -> list[str]:
        """The providers the session actually runs on."""
        return list(self._session.get_providers())

    def __repr__(self) -> str:
        return (
            f"ONNXDetector({str(self.model_path)!r}, layout={self.layout!r}, input_size={self.input_size}, "
            f"providers={self.providers})"
        )

    # -- the three steps --------------------------------------------------------------

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, FrameTransform]:
        """A BGR ``(H, W, 3)`` uint8 frame -> ``([1, 3, h, w]`` float32 input, transform).

        Example:
            >>> blob, transform = detector.preprocess(frame)  # doctest: +SKIP
        """
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be an (H, W, 3) uint8 BGR image, got {getattr(frame, 'shape', type(frame).__name__)} "
                f"{getattr(frame, 'dtype', '')}".rstrip()
            )
        p = self.preprocessing
        image, transform = fit_to_input(frame, self.input_size, p.resize, p.fill)
        if p.color_order == "RGB":
            image = image[:, :, ::-1]
        blob = image.astype(np.float32) * np.float32(p.scale)
        if p.mean is not None and p.std is not None:
            blob = (blob - np.asarray(p.mean, np.float32)) / np.asarray(p.std, np.float32)
        return np.ascontiguousarray(blob.transpose(2, 0, 1)[None]), transform

    def decode(self, outputs: Sequence[np.ndarray]) -> Decoded:
        """Raw session outputs -> ``(xyxy in input pixels, scores, class_ids)``, all candidates."""
        if self.layout == "yolov5":
            return decode_yolov5(outputs[0])
        if self.layout == "yolov8":
            return decode_yolov8(outputs[0])
        if self.layout == "end2end":
            return decode_end2end(outputs[0])
        if self.layout == "yolox":
            return decode_yolox(outputs[0], self.input_size, self.decoded, self.strides)
        if len(outputs) < 2:
            raise ValueError(f"detr: expected two outputs (boxes, logits), got {len(outputs)}")
        boxes, logits = outputs[0], outputs[1]
        names = [o.name.lower() for o in self._session.get_outputs()]
        if np.shape(boxes)[-1] != 4 or (np.shape(logits)[-1] == 4 and "box" in names[1]):
            boxes, logits = logits, boxes
        return decode_detr(boxes, logits, self.input_size, self.activation)

    def detect_arrays(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect in one BGR frame.

        Returns:
            ``(xyxy, scores, class_ids)``: ``(K, 4)`` float32 frame-pixel boxes
            (clipped to the frame; boxes wholly outside it are dropped), ``(K,)`` float32 scores, ``(K,)`` int64
            classes, best score first.
        """
        blob, transform = self.preprocess(frame)
        outputs = self._session.run(None, {self._input_name: blob})
        xyxy, scores, class_ids = self.decode(outputs)
        keep = scores >= self.score_threshold
        if self.classes is not None:
            keep &= np.isin(class_ids, self.classes)
        xyxy, scores, class_ids = xyxy[keep], scores[keep], class_ids[keep]
        if self.nms:
            order = suppress(xyxy, scores, self.iou_threshold, class_ids, self.max_detections)
        else:
            order = np.argsort(-scores, kind="stable")[: self.max_detections]
        boxes = transform.to_frame(xyxy[order])
        inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # wholly off the frame: gone
        order = order[inside]
        return boxes[inside].astype(np.float32), scores[order].astype(np.float32), class_ids[order]

    def __call__(self, frame: np.ndarray) -> sv.Detections:
        """Detect in one BGR frame: ``sv.Detections`` with ``class_id`` and ``data["class_name"]``."""
        import supervision as sv  # noqa: PLC0415

        xyxy, scores, class_ids = self.detect_arrays(frame)
        names = self.class_names or {}
        labels = np.array([names.get(int(c), str(int(c))) for c in class_ids], dtype=str)
        return sv.Detections(xyxy=xyxy, confidence=scores, class_id=class_ids, data={"class_name": labels})

    detect = __call__
