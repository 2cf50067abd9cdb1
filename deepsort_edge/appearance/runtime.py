"""Which ONNX Runtime build is installed: one is needed for appearance features.

ONNX Runtime comes as several distributions (``onnxruntime``,
``onnxruntime-gpu``, ``onnxruntime-rocm``, ...) that all install the same
``onnxruntime`` module, so deepsort-edge does not depend on any of them
directly: each install route (the ``cpu``, ``cuda``, ``rocm`` and ``migraphx``
extras) adds exactly one. Motion-only tracking needs none; the embedder imports
the runtime through :func:`import_onnxruntime`, which says what to install
when it is missing and warns when two builds overwrite each other.

Example:
    >>> ort = import_onnxruntime()
    >>> "CPUExecutionProvider" in ort.get_available_providers()
    True
"""

from __future__ import annotations

import importlib
import warnings
from importlib import metadata
from types import ModuleType

__all__ = ["RUNTIME_EXTRAS", "import_onnxruntime", "installed_runtimes", "missing_runtime_message"]

#: Extra of deepsort-edge -> the ONNX Runtime distribution it installs (as in pyproject.toml).
RUNTIME_EXTRAS: dict[str, str] = {
    "cpu": "onnxruntime",
    "cuda": "onnxruntime-gpu",
    "rocm": "onnxruntime-rocm",
    "migraphx": "onnxruntime-migraphx",
}

# Builds without an extra here that also provide the `onnxruntime` module.
_OTHER_BUILDS = ("onnxruntime-openvino", "onnxruntime-directml", "onnxruntime-qnn", "onnxruntime-training")


def installed_runtimes() -> list[str]:
    """Names of the installed distributions that provide the ``onnxruntime`` module.

    Returns:
        Distribution names, sorted; more than one means they overwrite each
        other's files and whichever was installed last is what imports.
    """
    found = []
    for name in (*RUNTIME_EXTRAS.values(), *_OTHER_BUILDS):
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return sorted(found)


def missing_runtime_message() -> str:
    """What to install when no ONNX Runtime build is found (works from a clone and from an index)."""
    routes = ", ".join(f"{dist} (extra {extra!r})" for extra, dist in RUNTIME_EXTRAS.items())
    return (
        "appearance features need ONNX Runtime, and no build of it is installed. Install exactly "
        f"one: {routes}, e.g. `pip install onnxruntime`, or `pip install \".[cpu]\"` in a clone. "
        "Motion-only tracking (no feature extractor, no embeddings) needs none."
    )


def _broken_runtime_message(builds: list[str], detail: str) -> str:
    return (
        f"{', '.join(builds)} is installed but its `onnxruntime` module is incomplete ({detail}); "
        "uninstalling another build deletes the files they share. Reinstall it: "
        f"pip install --force-reinstall --no-deps {builds[0]}"
    )


def import_onnxruntime() -> ModuleType:
    """Import and return ``onnxruntime``; a clear error if missing, a warning if doubly installed.

    Returns:
        The ``onnxruntime`` module.

    Raises:
        ImportError: No ONNX Runtime build is installed (the message names the
            distributions and the extras that install them), or the installed
            one lost its files to another build's uninstall (it says to
            reinstall it).
    """
    builds = installed_runtimes()
    try:
        module = importlib.import_module("onnxruntime")
    except ImportError as exc:
        if builds:
            raise ImportError(_broken_runtime_message(builds, str(exc))) from exc
        raise ImportError(missing_runtime_message()) from exc
    if not hasattr(module, "InferenceSession"):
        # Uninstalling one of two builds deletes their shared files; what is left
        # of the folder imports as an empty namespace package.
        if not builds:
            raise ImportError(missing_runtime_message())
        raise ImportError(_broken_runtime_message(builds, f"{module!r} has no InferenceSession"))
    if len(builds) > 1:
        warnings.warn(
            f"several ONNX Runtime builds are installed ({', '.join(builds)}); they share the "
            "`onnxruntime` module and overwrite each other's files. Uninstall all of them, then "
            "install the one you need.",
            RuntimeWarning,
            stacklevel=2,
        )
    return module
