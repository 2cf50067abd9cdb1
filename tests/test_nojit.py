"""The kernels are plain Python too: the kernel and tracker tests pass with NUMBA_DISABLE_JIT=1.

This keeps the kernels debuggable with an ordinary debugger and lets coverage
tools see their lines (compiled code is invisible to them).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import subprocess_env

TESTS = Path(__file__).resolve().parent


@pytest.mark.slow
def test_kernel_and_tracker_tests_pass_without_jit(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *(str(TESTS / name) for name in ("test_kernels.py", "test_lap.py", "test_tracker.py",
                                          "test_registry_kernels.py")),
         # Explicit signatures reject wrong dtypes only when compiled.
         "-k", "not test_invalid_inputs_raise"],
        # Outside the repo, so the child imports the same deepsort_edge as this run.
        cwd=tmp_path, env=subprocess_env(NUMBA_DISABLE_JIT="1"), capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
