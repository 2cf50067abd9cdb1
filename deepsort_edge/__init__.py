"""deepsort-edge: faithful DeepSORT on Numba kernels and ONNX Runtime.

>>> from deepsort_edge import DeepSORTTracker
>>> tracker = DeepSORTTracker()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _moved
from ._version import __version__
from .optional import lazy_exports

_moved.install()  # the module paths before the subpackages import as the new modules

if TYPE_CHECKING:
    from .appearance.embedder import DeepSORTFeatureExtractor
    from .streams.identities import IdentityRegistry
    from .streams.multistream import MultiStreamTracker, StreamError
    from .tracking.settings import TrackerSettings
    from .tracking.tracker import DeepSORTTracker, FrameResult, PreparedFrame
    from .tracking.tracks import TrackView

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
    "DeepSORTTracker": ".tracking.tracker",
    "FrameResult": ".tracking.tracker",
    "PreparedFrame": ".tracking.tracker",
    "TrackView": ".tracking.tracks",
    "DeepSORTFeatureExtractor": ".appearance.embedder",
    "IdentityRegistry": ".streams.identities",
    "MultiStreamTracker": ".streams.multistream",
    "StreamError": ".streams.multistream",
    "TrackerSettings": ".tracking.settings",
}


_lazy_attribute, __dir__ = lazy_exports(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    if f"{__name__}.{name}" in _moved.MOVED:  # an old submodule path, now an alias
        return importlib.import_module(f"{__name__}.{name}")
    return _lazy_attribute(name)
