"""deepsort-edge: faithful DeepSORT on Numba kernels and ONNX Runtime.

>>> from deepsort_edge import DeepSORTTracker
>>> tracker = DeepSORTTracker()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .tracker import DeepSORTTracker
from .tracks import TrackView

if TYPE_CHECKING:
    from .embedder import DeepSORTFeatureExtractor

__all__ = ["DeepSORTFeatureExtractor", "DeepSORTTracker", "TrackView", "__version__"]


def __getattr__(name: str) -> Any:
    # onnxruntime and OpenCV load only when appearance is actually used.
    if name == "DeepSORTFeatureExtractor":
        from .embedder import DeepSORTFeatureExtractor

        return DeepSORTFeatureExtractor
    raise AttributeError(f"module 'deepsort_edge' has no attribute {name!r}")
