"""Old module paths (before the package was split into subpackages) keep importing, as the new modules.

``import deepsort_edge.tracker`` or ``from deepsort_edge.distributed import
RayMultiStreamTracker`` still works: a finder on ``sys.meta_path`` (installed by
``deepsort_edge/__init__``) maps every old dotted name in :data:`MOVED` to its new
module, warns once with a :class:`DeprecationWarning` naming the new path, and
hands back the very same module object (``deepsort_edge.tracker is
deepsort_edge.tracking.tracker``), so there is never a second copy whose state
or monkeypatches would differ.

Example:
    >>> import deepsort_edge.tracking.tracker as new
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     import deepsort_edge.tracker as old
    >>> old is new
    True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import CodeType, ModuleType

#: Old dotted module name -> the module's dotted name now.
MOVED: dict[str, str] = {
    "deepsort_edge.tracker": "deepsort_edge.tracking.tracker",
    "deepsort_edge.tracks": "deepsort_edge.tracking.tracks",
    "deepsort_edge.settings": "deepsort_edge.tracking.settings",
    "deepsort_edge.state": "deepsort_edge.tracking.state",
    "deepsort_edge.validation": "deepsort_edge.tracking.validation",
    "deepsort_edge.boxes": "deepsort_edge.tracking.boxes",
    "deepsort_edge.camera_motion": "deepsort_edge.tracking.camera_motion",
    "deepsort_edge.interpolation": "deepsort_edge.tracking.interpolation",
    "deepsort_edge.aot": "deepsort_edge.kernels.aot",
    "deepsort_edge.compile_kernels": "deepsort_edge.kernels.build_aot",
    "deepsort_edge.embedder": "deepsort_edge.appearance.embedder",
    "deepsort_edge.preprocess": "deepsort_edge.appearance.preprocess",
    "deepsort_edge.providers": "deepsort_edge.appearance.providers",
    "deepsort_edge._runtime": "deepsort_edge.appearance.runtime",
    "deepsort_edge.model_metadata": "deepsort_edge.appearance.model_metadata",
    "deepsort_edge.quantization": "deepsort_edge.appearance.quantization",
    "deepsort_edge.export": "deepsort_edge.appearance.export",
    "deepsort_edge.export.calibration": "deepsort_edge.appearance.export.calibration",
    "deepsort_edge.export.checkpoints": "deepsort_edge.appearance.export.checkpoints",
    "deepsort_edge.export.exporter": "deepsort_edge.appearance.export.exporter",
    "deepsort_edge.export.hub": "deepsort_edge.appearance.export.hub",
    "deepsort_edge.export.osnet": "deepsort_edge.appearance.export.osnet",
    "deepsort_edge.export.quantize": "deepsort_edge.appearance.export.quantize",
    "deepsort_edge.export.torch_module": "deepsort_edge.appearance.export.torch_module",
    "deepsort_edge.mot": "deepsort_edge.io.mot",
    "deepsort_edge.video": "deepsort_edge.io.video",
    "deepsort_edge.evaluation": "deepsort_edge.io.evaluation",
    "deepsort_edge.multistream": "deepsort_edge.streams.multistream",
    "deepsort_edge.distributed": "deepsort_edge.streams.distributed",
    "deepsort_edge.identities": "deepsort_edge.streams.identities",
    "deepsort_edge.pipeline": "deepsort_edge.streams.pipeline",
    "deepsort_edge.detect_track": "deepsort_edge.streams.detect_track",
    "deepsort_edge.demo_scene": "deepsort_edge.demo.scene",
    "deepsort_edge.synthetic": "deepsort_edge.demo.synthetic",
}


def _is_machinery(filename: str) -> bool:
    """Frames of the import system, this module or the package's ``__getattr__``: not the importer."""
    return "importlib" in filename or filename in (__file__, sys.modules[__package__].__file__)


def _warn(old: str, new: str) -> None:
    # Point the warning at the line that imported the old name: count the frames
    # up to it the way `warnings` does (it never counts importlib._bootstrap's).
    frame, level = sys._getframe(1), 2
    while frame is not None and _is_machinery(frame.f_code.co_filename):
        if not ("importlib" in frame.f_code.co_filename and "_bootstrap" in frame.f_code.co_filename):
            level += 1
        frame = frame.f_back
    warnings.warn(f"{old} moved to {new}; import it from there", DeprecationWarning, stacklevel=level)


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the already importable new module (the same object)."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        _warn(self.old, self.new)
        module = importlib.import_module(self.new)
        self._spec = module.__spec__  # the import system overwrites it with the alias's spec
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec  # already executed under its new name; keep its own spec

    def get_code(self, fullname: str) -> CodeType | None:
        """The new module's code, for ``python -m`` with an old name (runpy runs it as ``__main__``)."""
        _warn(self.old, self.new)
        spec = importlib.util.find_spec(self.new)
        return spec.loader.get_code(self.new) if spec is not None and spec.loader is not None else None


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old names of :data:`MOVED` and loads them as the new modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(fullname, new))


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), ahead of the path finder.

    First, so that ``deepsort_edge.export.quantize`` is not found a second time
    as a file of the moved package's folder.
    """
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
