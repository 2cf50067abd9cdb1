"""Optional dependencies: each is imported only where it is used, with a fallback or a clear error.

The core (``update_arrays`` on an edge device) needs numba, numpy and OpenCV
headless only. ``supervision`` is needed only by the calls that take
``sv.Detections`` (whoever passes one has it installed); ``tqdm`` only draws
the command line's progress bars (without it there is none); ``platformdirs``
only names the user cache folder (without it the same folders are spelled out
here). Our own heavy modules load on first use too: :func:`lazy_exports` is
the one lazy-export table behind ``deepsort_edge`` and ``deepsort_edge.detection``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["import_supervision", "is_detections", "lazy_exports", "progress_bar", "user_cache_dir"]


def lazy_exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names load on first use.

    ``table`` maps each public name to the module that defines it, relative to
    ``package`` (``{"DeepSORTTracker": ".tracker"}``). A name is imported the
    first time it is asked for and then kept in the package's namespace.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"ONNXDetector": ".onnx_detector"})  # doctest: +SKIP
    """
    namespace = sys.modules[package].__dict__  # the package is in sys.modules while its __init__ runs

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(importlib.import_module(table[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*namespace, *table])

    return __getattr__, __dir__


def import_supervision(caller: str) -> ModuleType:
    """The ``supervision`` module, or an ImportError saying that ``caller`` needs it and what else works.

    Example:
        >>> sv = import_supervision("DeepSORTTracker.update")
    """
    try:
        import supervision
    except ImportError as exc:
        raise ImportError(
            f"{caller} takes supervision.Detections, and supervision is not installed: "
            "`pip install supervision`, or pass plain arrays to update_arrays(xyxy, scores, embeddings)"
        ) from exc
    return supervision


def is_detections(value: object) -> bool:
    """True when ``value`` is a ``supervision.Detections`` (never, when supervision is not installed).

    Example:
        >>> is_detections([[0.0, 0.0, 10.0, 20.0]])
        False
    """
    try:
        import supervision
    except ImportError:
        return False
    return isinstance(value, supervision.Detections)


class _NoBar:
    """What the command line uses of a tqdm bar, drawing nothing (tqdm is not installed)."""

    def __init__(self, total: float | None = None, **_: Any) -> None:
        self.total = total
        self.n = 0

    def update(self, n: float = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        pass

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(**kwargs: Any) -> Any:
    """A ``tqdm`` progress bar with these arguments, or one that draws nothing when tqdm is absent.

    Example:
        >>> bar = progress_bar(total=3, disable=True)
        >>> bar.update(1); bar.close()
    """
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar(**kwargs)
    return tqdm(**kwargs)


def user_cache_dir(app: str) -> Path:
    """The platform's user cache folder for ``app`` (as platformdirs names it, with or without it).

    ``$XDG_CACHE_HOME/app`` or ``~/.cache/app`` on Linux,
    ``~/Library/Caches/app`` on macOS, ``%LOCALAPPDATA%\\app\\Cache`` on Windows.
    """
    try:
        import platformdirs
    except ImportError:
        pass
    else:
        return platformdirs.user_cache_path(app, appauthor=False)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / app / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / app
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / app
