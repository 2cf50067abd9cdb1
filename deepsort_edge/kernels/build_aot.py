"""Compile the kernels ahead of time into ``kernels/_frame_aot`` (run by ``hatch_build.py``).

The argument types of each export are recorded from the tracker's and
``validation``'s own calls (the kernels swapped for recorders), so the
compiled signatures are always the ones those calls pass. See
``aot.py`` for how the result is loaded.

Example:
    $ python -c "from deepsort_edge.kernels.build_aot import build; print(build('out'))"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .aot import FRAME_EXPORTS, MODULE, STAMP
from .frame import track_frame
from .rows import row_problems, unit_rows
from .stale import source_digest


def _recorded(module: object, names: tuple[str, ...], call: Callable[[], object]) -> dict[str, tuple]:
    """Numba types of the first call's arguments of each of ``module``'s globals ``names`` during ``call()``."""
    from numba import typeof

    calls: dict[str, tuple] = {}
    saved = {name: getattr(module, name) for name in names}

    def recorder(name: str) -> Callable[..., bool]:
        def record(*args: object) -> bool:
            calls.setdefault(name, tuple(typeof(arg) for arg in args))
            return True

        return record

    try:
        for name in names:
            setattr(module, name, recorder(name))
        call()
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
    return calls


def signatures() -> dict[str, tuple[Callable, tuple]]:
    """Export name -> (Python function, argument types), the types recorded from the tracker's own calls."""
    import numpy as np

    from ..tracking import tracker as tracker_module
    from ..tracking import validation

    boxes, scores, embeddings = np.array([[0.0, 0.0, 10.0, 20.0]]), np.array([0.9]), np.ones((1, 4), np.float32)
    out: dict[str, tuple[Callable, tuple]] = {}
    for dtype, name in FRAME_EXPORTS.items():
        tracker = tracker_module.DeepSORTTracker(gallery_dtype=dtype)
        types = _recorded(tracker_module, ("track_frame", "track_frame_float16"),
                          lambda: tracker.update_arrays(boxes, scores, embeddings))
        out[name] = (track_frame.py_func, next(iter(types.values())))
    arrays = validation.detection_arrays(boxes, scores, embeddings, embedding_dim=0)
    types = _recorded(validation, ("row_problems", "unit_rows"),
                      lambda: validation.check_rows(arrays, frame_shape=(100, 100, 3), on_invalid="drop"))
    out["row_problems"] = (row_problems.py_func, types["row_problems"])
    out["unit_rows"] = (unit_rows.py_func, types["unit_rows"])
    return out


def build(output_dir: str | Path, target_cpu: str = "") -> Path:
    """Compile the exported kernels into ``output_dir/_frame_aot<suffix>`` (and its stamp); returns the binary.

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
    for name, (function, argument_types) in signatures().items():
        cc.export(name, types.boolean(*argument_types))(function)
    cc.compile()
    (output_dir / STAMP).write_text(source_digest() + "\n")
    return output_dir / Path(cc.output_file).name  # output_file is the bare file name
