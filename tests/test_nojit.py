"""The kernels are plain Python too: the kernel and tracker tests pass with NUMBA_DISABLE_JIT=1.

This keeps the kernels debuggable with an ordinary debugger and lets coverage
tools see their lines (compiled code is invisible to them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_kernel_and_tracker_tests_pass_without_jit():
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_kernels.py", "tests/test_lap.py", "tests/test_tracker.py",
         # Explicit signatures reject wrong dtypes only when compiled.
         "-k", "not test_invalid_inputs_raise"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
