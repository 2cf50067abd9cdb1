"""deepsort-edge: faithful DeepSORT on Numba kernels and ONNX Runtime.

>>> from deepsort_edge import DeepSORTTracker
>>> tracker = DeepSORTTracker()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .embedder import DeepSORTFeatureExtractor
    from .multistream import MultiStreamTracker, StreamError
    from .settings import TrackerSettings
    from .tracker import DeepSORTTracker, FrameResult, PreparedFrame
    from .tracks import TrackView

__all__ = [
    "DeepSORTFeatureExtractor",
    "DeepSORTTracker",
    "FrameResult",
    "MultiStreamTracker",
    "PreparedFrame",
    "StreamError",
    "TrackView",
    "TrackerSettings",
    "__version__",
]

# Public name -> module. Loaded on first use so that `import deepsort_edge`
# (and the CLI's --help) does not pay for Numba, ONNX Runtime or OpenCV.
_LAZY = {
    "DeepSORTTracker": ".tracker",
    "FrameResult": ".tracker",
    "PreparedFrame": ".tracker",
    "TrackView": ".tracks",
    "DeepSORTFeatureExtractor": ".embedder",
    "MultiStreamTracker": ".multistream",
    "StreamError": ".multistream",
    "TrackerSettings": ".settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deepsort_edge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
