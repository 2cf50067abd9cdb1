"""Editing one kernel module recompiles the kernels that call it (numba alone would not).

Numba's cache compares a function with its own source file only: the cached
frame kernel would keep the old code of a kernel it calls from another
module. ``kernels/stale.py`` drops every cached kernel when any kernel source
changes; here a copy of the package is compiled, one constant in
``kernels/kalman.py`` is edited, and the next run must see it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import deepsort_edge
from deepsort_edge.kernels import stale

PROGRAM = r"""
import numpy as np
from deepsort_edge import DeepSORTTracker
tracker = DeepSORTTracker(minimum_consecutive_frames=1)
for step in range(3):
    ids, boxes = tracker.update_arrays(np.array([[10.0 + 4 * step, 10.0, 50.0 + 4 * step, 110.0]]), return_boxes=True)
print(repr(float(boxes[0, 0])))
"""


def _run(package_parent: Path, cache: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(package_parent), "NUMBA_CACHE_DIR": str(cache)}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=600,
                         cwd=package_parent)
    assert out.returncode == 0, out.stderr[-3000:]
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs compiled kernels")
def test_editing_a_called_kernel_module_recompiles_its_callers(tmp_path):
    parent = tmp_path / "site"
    shutil.copytree(Path(deepsort_edge.__file__).parent, parent / "deepsort_edge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    before = _run(parent, cache)
    assert _run(parent, cache) == before  # cached and unchanged
    kalman = parent / "deepsort_edge" / "kernels" / "kalman.py"
    source = kalman.read_text()
    assert "STD_WEIGHT_POSITION = 1.0 / 20.0" in source
    kalman.write_text(source.replace("STD_WEIGHT_POSITION = 1.0 / 20.0", "STD_WEIGHT_POSITION = 1.0 / 5.0"))
    edited = _run(parent, cache)
    assert edited != before, "the frame kernel ran the old Kalman code from its cache"
    assert edited == _run(parent, tmp_path / "fresh-cache")


def test_drop_stale_removes_only_this_packages_kernels(tmp_path, monkeypatch):
    class Cache:
        cache_path = str(tmp_path)

    class Dispatcher:
        _cache = Cache()

    ours = [tmp_path / "frame.track_frame-270.py311.nbi", tmp_path / "costs.iou_costs-9.py311.1.nbc"]
    other = tmp_path / "somebody.kernel-3.py311.nbi"
    for path in [*ours, other]:
        path.write_bytes(b"x")
    assert stale.drop_stale(Dispatcher())  # no stamp yet: sources unknown
    assert not any(p.exists() for p in ours) and other.exists()
    ours[0].write_bytes(b"x")
    assert not stale.drop_stale(Dispatcher())  # same sources: the cache stays
    assert ours[0].exists()
    monkeypatch.setattr(stale, "source_digest", lambda: "edited")
    assert stale.drop_stale(Dispatcher())
    assert not ours[0].exists() and other.exists()
