"""``deepsort-edge warmup``: make the first tracked frame fast, e.g. in a Docker image build.

A wheel built with a C compiler carries the kernels compiled ahead of time
(``deepsort_edge/kernels/aot.py``): nothing compiles at run time and this command only says
so. Otherwise (or with ``--jit``) it compiles the JIT kernels of every gallery
type into Numba's cache now, so later processes load them instead of
compiling: bake it into an image with ``NUMBA_CACHE_DIR`` set (docs/cli.md).

Example:
    $ deepsort-edge warmup
    $ NUMBA_CACHE_DIR=/opt/numba-cache deepsort-edge warmup --jit
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from deepsort_edge.cli.errors import UserError

PROG = "deepsort-edge warmup"
DTYPES = ("float32", "float16")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "warmup",
        help="compile the kernels now (or check the wheel's ahead-of-time ones)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("--jit", action="store_true",
                        help="compile and cache the JIT kernels even where ahead-of-time ones are installed")
    parser.add_argument("--gallery-dtype", choices=[*DTYPES, "all"], default="all",
                        help="which gallery storage to compile for (default: all)")
    parser.add_argument("--cache-dir", type=Path,
                        help="Numba's cache folder (sets NUMBA_CACHE_DIR; default: Numba's choice)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return parser


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message)


def run(args: argparse.Namespace) -> int:
    if args.cache_dir is not None:
        if "numba" in sys.modules:  # only when called in-process after numba loaded
            raise UserError("--cache-dir must be set before Numba is imported; set NUMBA_CACHE_DIR instead")
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(args.cache_dir.resolve())
    if args.jit:
        os.environ["DEEPSORT_EDGE_KERNELS"] = "jit"  # read when the tracker module loads, just below
    started = time.perf_counter()
    import numpy as np  # noqa: PLC0415

    from deepsort_edge import DeepSORTTracker  # noqa: PLC0415
    from deepsort_edge.tracking import validation  # noqa: PLC0415
    from deepsort_edge.kernels.aot import frame_kernel, kernel_kind  # noqa: PLC0415
    from deepsort_edge.kernels.frame import track_frame  # noqa: PLC0415

    dtypes = DTYPES if args.gallery_dtype == "all" else (args.gallery_dtype,)
    kinds = {dtype: kernel_kind(frame_kernel(dtype)) for dtype in dtypes}
    if all(kind == "ahead-of-time" for kind in kinds.values()) and kernel_kind(validation.row_problems) != "jit":
        _say(args, f"{PROG}: kernels compiled ahead of time are installed: nothing to compile "
                   f"(import took {time.perf_counter() - started:.1f} s; --jit caches the JIT ones too)")
        return 0
    for dtype in dtypes:
        if kinds[dtype] == "jit":
            DeepSORTTracker(gallery_dtype=dtype).warmup()
    # The row checks that run before the kernel when a feature extractor needs the clean rows.
    arrays = validation.detection_arrays(np.array([[0.0, 0.0, 10.0, 20.0]]), None, np.ones((1, 4), np.float32),
                                         embedding_dim=0)
    validation.check_rows(arrays, frame_shape=(32, 32, 3), on_invalid="drop")
    cache = getattr(getattr(track_frame, "_cache", None), "cache_path", None)
    compiled = ", ".join(f"{d} galleries ({kinds[d]})" for d in dtypes)
    _say(args, f"{PROG}: {compiled} ready in {time.perf_counter() - started:.1f} s; Numba cache: {cache}")
    return 0
