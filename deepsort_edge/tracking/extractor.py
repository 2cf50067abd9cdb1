"""The ``feature_extractor`` argument of the trackers: what it may be, and the extractor it names.

An ONNX path, a torch module or ``.pt``/``.pth`` file becomes a
:class:`~deepsort_edge.appearance.embedder.DeepSORTFeatureExtractor` (imported only
then); any object with ``extract_features(frame, detections)`` is used as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["FeatureExtractor", "load_extractor"]


class FeatureExtractor(Protocol):
    """Anything with ``extract_features(frame, boxes_or_detections) -> (N, D)``."""

    def extract_features(self, frame: np.ndarray, detections: Any) -> np.ndarray: ...


def load_extractor(feature_extractor: object, device: str | None) -> FeatureExtractor | None:
    """The extractor a ``feature_extractor`` argument names (None: none), as every tracker reads it.

    An ONNX path, a torch module or ``.pt``/``.pth`` file (exported to ONNX
    once, cached) becomes a ``DeepSORTFeatureExtractor`` on ``device``; an
    object with ``extract_features(frame, xyxy)`` is used as it is.

    Raises:
        TypeError: ``device`` is not a string, or ``feature_extractor`` is none of these.
    """
    if device is not None and not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {type(device).__name__}")
    if feature_extractor is None:
        return None
    from ..appearance.export.torch_module import is_torch_module  # imports no torch

    if isinstance(feature_extractor, (str, Path)) or is_torch_module(feature_extractor):
        from ..appearance.embedder import DeepSORTFeatureExtractor

        # An ONNX file, or a torch module / .pt / .pth file exported to ONNX once (cached).
        return DeepSORTFeatureExtractor(feature_extractor, device)
    if not callable(getattr(feature_extractor, "extract_features", None)):
        raise TypeError(
            "feature_extractor must be a DeepSORTFeatureExtractor, a path to an ONNX or torch model, "
            "a torch.nn.Module, "
            f"or have an extract_features(frame, detections) method; got {type(feature_extractor).__name__}"
        )
    return feature_extractor  # type: ignore[return-value]
