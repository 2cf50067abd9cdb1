"""The frame kernel compiled ahead of time: built into the wheel, loaded instead of the JIT.

A cold just-in-time start compiles ``frame.track_frame`` and everything it
calls (87 Numba compilations, 17-60 s on 2 cores, minutes on a Raspberry Pi).
The wheel build (``hatch_build.py``, through ``deepsort_edge.kernels.build_aot``)
compiles the same Python source with ``numba.pycc`` into the extension module
``kernels/_frame_aot``: one exported function per gallery storage type, with
the argument types the tracker really passes (recorded from its calls), and a
stamp holding the digest of the kernel sources it was built from
(``kernels.stale.source_digest``).

At run time :func:`frame_kernel` returns the compiled function when the
extension imports and its stamp matches today's sources, else the JIT
dispatcher: a source checkout, an edited kernel, a platform without a C
compiler at build time, ``NUMBA_DISABLE_JIT`` (coverage runs the Python), or
``DEEPSORT_EDGE_KERNELS=jit`` all get the JIT, which caches as before.

The row checks that run before the kernel when a feature extractor needs
the clean rows (``rows.row_problems``, ``rows.unit_rows``) are exported too,
so no first frame compiles anything. The compiled functions do not check
their arguments' types (pycc unboxes an array by item size only), so only the
tracker and ``validation``, which build every argument with fixed dtypes,
call them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

import numba
from numba.core.dispatcher import Dispatcher

from .frame import track_frame
from .rows import row_problems, unit_rows
from .stale import source_digest

MODULE = "_frame_aot"
STAMP = f"{MODULE}.sha256"
#: ``DEEPSORT_EDGE_KERNELS``: ``auto`` (compiled when current, else JIT) or ``jit``.
ENV = "DEEPSORT_EDGE_KERNELS"
#: The frame kernel's export per ``gallery_dtype`` (float16 entries are stored as uint16 bits).
FRAME_EXPORTS = {"float32": "track_frame_float32", "float16": "track_frame_float16"}

_HERE = Path(__file__).resolve().parent  # the extension lives beside the kernels it was built from


def compiled_module() -> object | None:
    """The imported ``_frame_aot`` extension when it exists and matches today's kernel sources, else None."""
    try:
        stamp = (_HERE / STAMP).read_text().strip()
    except OSError:
        return None
    if stamp != source_digest():
        return None  # built from other sources: the JIT runs today's
    try:
        return importlib.import_module(f"{__package__}.{MODULE}")
    except ImportError:  # another platform's or Python's binary
        return None


def compiled(name: str, jit: Callable) -> Callable:
    """The export ``name`` of the compiled extension when it may be used, else the JIT ``jit``."""
    choice = os.environ.get(ENV, "auto")
    if choice not in ("auto", "jit"):
        raise ValueError(f"{ENV} must be 'auto' or 'jit', got {choice!r}")
    if choice == "jit" or numba.config.DISABLE_JIT:
        return jit
    module = compiled_module()
    return jit if module is None else getattr(module, name)


def frame_kernel(gallery_dtype: str = "float32") -> Callable[..., bool]:
    """The frame kernel for galleries of ``gallery_dtype``: compiled ahead of time when possible.

    Example:
        >>> kernel = frame_kernel("float32")  # the pycc export or the JIT dispatcher
    """
    if gallery_dtype not in FRAME_EXPORTS:
        raise ValueError(f"gallery_dtype must be one of {sorted(FRAME_EXPORTS)}, got {gallery_dtype!r}")
    return compiled(FRAME_EXPORTS[gallery_dtype], track_frame)


def row_kernels() -> tuple[Callable[..., bool], Callable[..., bool]]:
    """``(row_problems, unit_rows)`` for ``validation.check_rows``: compiled ahead of time when possible."""
    return compiled("row_problems", row_problems), compiled("unit_rows", unit_rows)


def kernel_kind(kernel: Callable) -> str:
    """``"ahead-of-time"`` for a compiled export, ``"jit"`` for a Numba dispatcher."""
    return "jit" if isinstance(kernel, Dispatcher) else "ahead-of-time"
