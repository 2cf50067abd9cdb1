"""deepsort-edge: faithful DeepSORT on Numba kernels and ONNX Runtime.

>>> from deepsort_edge import DeepSORTTracker
>>> tracker = DeepSORTTracker()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .optional import lazy_exports

if TYPE_CHECKING:
    from .embedder import DeepSORTFeatureExtractor
    from .identities import IdentityRegistry
    from .multistream import MultiStreamTracker, StreamError
    from .settings import TrackerSettings
    from .tracker import DeepSORTTracker, FrameResult, PreparedFrame
    from .tracks import TrackView

__all__ = [
    "DeepSORTFeatureExtractor",
    "DeepSORTTracker",
    "FrameResult",
    "IdentityRegistry",
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
    "IdentityRegistry": ".identities",
    "MultiStreamTracker": ".multistream",
    "StreamError": ".multistream",
    "TrackerSettings": ".settings",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
