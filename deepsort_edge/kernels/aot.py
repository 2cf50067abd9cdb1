"""The frame kernel compiled ahead of time: built into the wheel, loaded instead of the JIT.

A cold just-in-time start compiles ``frame.track_frame`` and everything it
calls (87 Numba compilations, 17-60 s on 2 cores, minutes on a Raspberry Pi).
The wheel build (``hatch_build.py``) compiles the same Python source with
``numba.pycc`` into the extension module ``_frame_aot``: one exported function
per gallery storage type, with the argument types the tracker really passes
(recorded from a call, see :func:`argument_types`), and a stamp holding the
digest of the kernel sources it was built from (``stale.source_digest``).

At run time :func:`frame_kernel` returns the compiled function when the
extension imports and its stamp matches today's sources, else the JIT
dispatcher: a source checkout, an edited kernel, a platform without a C
compiler at build time, ``NUMBA_DISABLE_JIT`` (coverage runs the Python), or
``DEEPSORT_EDGE_KERNELS=jit`` all get the JIT, which caches as before.

The compiled function does not check its arguments' types (pycc unboxes an
array by item size only), so only the tracker, which builds every argument
with fixed dtypes, calls it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

import numba

from .frame import track_frame
from .stale import source_digest

MODULE = "_frame_aot"
STAMP = f"{MODULE}.sha256"
#: Exported name per ``gallery_dtype`` (float16 entries are stored as uint16 bits).
EXPORTS = {"float32": "track_frame_float32", "float16": "track_frame_float16"}
#: ``DEEPSORT_EDGE_KERNELS``: ``auto`` (compiled when current, else JIT) or ``jit``.
ENV = "DEEPSORT_EDGE_KERNELS"

_HERE = Path(__file__).resolve().parent


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


def frame_kernel(gallery_dtype: str = "float32") -> Callable[..., bool]:
    """The frame kernel for galleries of ``gallery_dtype``: compiled ahead of time when possible.

    Example:
        >>> kernel = frame_kernel("float32")  # the pycc export or the JIT dispatcher
    """
    if gallery_dtype not in EXPORTS:
        raise ValueError(f"gallery_dtype must be one of {sorted(EXPORTS)}, got {gallery_dtype!r}")
    choice = os.environ.get(ENV, "auto")
    if choice not in ("auto", "jit"):
        raise ValueError(f"{ENV} must be 'auto' or 'jit', got {choice!r}")
    if choice == "jit" or numba.config.DISABLE_JIT:
        return track_frame
    module = compiled_module()
    return track_frame if module is None else getattr(module, EXPORTS[gallery_dtype])


def kernel_kind(kernel: Callable[..., bool]) -> str:
    """``"ahead-of-time"`` for the compiled export, ``"jit"`` for the dispatcher."""
    return "jit" if kernel is track_frame else "ahead-of-time"


def argument_types(gallery_dtype: str) -> tuple:
    """Numba types of the arguments the tracker passes to the frame kernel, recorded from a real call."""
    from numba import typeof

    from .. import tracker as tracker_module

    calls: list[tuple] = []

    def record(*args: object) -> bool:
        calls.append(args)
        return True

    saved = tracker_module.track_frame, tracker_module.track_frame_float16
    tracker_module.track_frame = tracker_module.track_frame_float16 = record
    try:
        import numpy as np

        tracker = tracker_module.DeepSORTTracker(gallery_dtype=gallery_dtype)
        tracker.update_arrays(np.array([[0.0, 0.0, 10.0, 20.0]]), np.array([0.9]), np.ones((1, 4), np.float32))
    finally:
        tracker_module.track_frame, tracker_module.track_frame_float16 = saved
    return tuple(typeof(arg) for arg in calls[0])


def build(output_dir: str | Path, target_cpu: str = "") -> Path:
    """Compile the frame kernel into ``output_dir/_frame_aot<suffix>`` (and its stamp); returns the binary.

    ``target_cpu`` is LLVM's CPU name; "" is the architecture's generic CPU
    (any x86-64, any ARMv8-A), which a wheel for others needs.
    """
    from numba.core import types
    from numba.pycc import CC

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cc = CC(MODULE)
    cc.output_dir = str(output_dir)
    cc.target_cpu = target_cpu
    for dtype, name in EXPORTS.items():
        cc.export(name, types.boolean(*argument_types(dtype)))(track_frame.py_func)
    cc.compile()
    (output_dir / STAMP).write_text(source_digest() + "\n")
    return Path(cc.output_file)
