"""Wheel build hook: compile the frame kernel ahead of time (``deepsort_edge/kernels/aot.py``, ``build_aot.py``).

The compiled extension and its source stamp go into the wheel, which then is
a platform wheel (CPython version, OS, architecture). It is built from the
kernel sources being packaged, so it never forks them. When it cannot be
built (no C compiler, ``DEEPSORT_EDGE_AOT=0``) the wheel stays pure Python
and the kernels compile just in time on first use, as before.

Env: ``DEEPSORT_EDGE_AOT`` (``0`` skips, ``require`` fails the build instead of
falling back), ``DEEPSORT_EDGE_AOT_CPU`` (LLVM CPU name; default: the
architecture's generic CPU, so the wheel runs on any x86-64 or ARMv8-A).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_BUILD = """
import sys
sys.path.insert(0, sys.argv[1])
from deepsort_edge.kernels.build_aot import build
print(build(sys.argv[2], sys.argv[3]))
"""


class AheadOfTimeKernelHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        mode = os.environ.get("DEEPSORT_EDGE_AOT", "1")
        if self.target_name != "wheel" or version == "editable" or mode == "0":
            return
        self._out = Path(tempfile.mkdtemp(prefix="deepsort-edge-aot-"))
        # Numba caches the callees it compiles on the way: keep them out of the source tree.
        env = {**os.environ, "NUMBA_CACHE_DIR": str(self._out / "numba-cache")}
        cpu = os.environ.get("DEEPSORT_EDGE_AOT_CPU", "")
        self.app.display_info(f"deepsort-edge: compiling the kernels ahead of time (numba.pycc, about a minute; {version} wheel)")
        proc = subprocess.run(
            [sys.executable, "-c", _BUILD, self.root, str(self._out / "ext"), cpu],
            env=env, capture_output=True, text=True,
        )
        if proc.returncode:
            message = f"deepsort-edge: ahead-of-time kernel not built, the wheel will compile it just in time:\n{proc.stderr[-3000:]}"
            if mode == "require":
                raise RuntimeError(message)
            self.app.display_warning(message)
            return
        binary = Path(proc.stdout.strip().splitlines()[-1])
        for path in (binary, binary.parent / "_frame_aot.sha256"):
            build_data["force_include"][str(path)] = f"deepsort_edge/kernels/{path.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        out = getattr(self, "_out", None)
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
