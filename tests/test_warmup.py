"""``deepsort-edge warmup``: nothing to do over ahead-of-time kernels, else the JIT cache filled."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest

from deepsort_edge.kernels import aot

from .conftest import subprocess_env


def _warmup(*args: str, **env: str) -> subprocess.CompletedProcess:
    # Not from the repository root: `-m` puts the working directory first on sys.path, which would
    # run the checkout instead of the package under test.
    return subprocess.run([sys.executable, "-m", "deepsort_edge.cli", "warmup", *args], env=subprocess_env(**env),
                          cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=1200)


def test_warmup_reports_what_runs():
    out = _warmup("--gallery-dtype", "float32")
    assert out.returncode == 0, out.stderr
    if aot.compiled_module() is not None:
        assert "compiled ahead of time are installed: nothing to compile" in out.stdout
    else:
        assert "float32 galleries (jit) ready" in out.stdout


@pytest.mark.slow
def test_warmup_jit_fills_the_given_cache_and_a_second_process_loads_it(tmp_path):
    cache = tmp_path / "numba-cache"
    first = _warmup("--jit", "--cache-dir", str(cache), "--gallery-dtype", "float32")
    assert first.returncode == 0, first.stderr
    assert f"Numba cache: {cache}" in first.stdout
    index = list(cache.rglob("frame.track_frame-*.nbi"))
    assert index, sorted(p.name for p in cache.rglob("*"))
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.nb[ic]")}
    # A later process loads the cached kernels instead of compiling (nothing new written).
    probe = ("import numpy as np; from deepsort_edge import DeepSORTTracker; "
             "DeepSORTTracker().update_arrays(np.array([[0., 0., 10., 20.]]), np.array([0.9]))")
    again = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600,
                           cwd=tempfile.gettempdir(),  # the same package as the warmup (see _warmup)
                           env=subprocess_env(NUMBA_CACHE_DIR=str(cache), DEEPSORT_EDGE_KERNELS="jit"))
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.nb[ic]")} == before


def test_warmup_user_errors_are_one_line():
    out = _warmup("--gallery-dtype", "float64")
    assert out.returncode == 2
    assert "invalid choice: 'float64'" in out.stderr
