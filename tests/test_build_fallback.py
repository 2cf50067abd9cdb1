"""A wheel built where no C compiler works is pure Python and tracks on the JIT kernels.

``hatch_build.py`` compiles the kernels ahead of time when it can; without a
working compiler (here ``CC`` and ``CXX`` point to a program that always
fails, which numba.pycc's toolchain check runs first) it must warn and still
produce a pure wheel. The reference is the recording of ``test_recorded.py``:
the wheel's tracker, run in a fresh process from the installed wheel, must
replay recorded sequences with the recorded ids, boxes and final states.
Builds offline from this checkout (``--no-build-isolation``: hatchling comes
with the ``test`` extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from .conftest import REPO_ROOT, subprocess_env

_REPLAY = r"""
import importlib.util, json, sys
import deepsort_edge
import deepsort_edge.tracking.tracker as tracker_module
from deepsort_edge.kernels.aot import compiled_module, kernel_kind
from pathlib import Path
# The tests folder as the package `tests`, by path (test_recorded imports `.record`), without
# putting the repository on sys.path, which would shadow the installed wheel.
tests_dir = Path(sys.argv[1]).parent
package = importlib.util.spec_from_file_location("tests", tests_dir / "__init__.py",
                                                 submodule_search_locations=[str(tests_dir)])
sys.modules["tests"] = importlib.util.module_from_spec(package)
package.loader.exec_module(sys.modules["tests"])
spec = importlib.util.spec_from_file_location("tests.test_recorded", sys.argv[1])
recorded = importlib.util.module_from_spec(spec)
sys.modules["tests.test_recorded"] = recorded
spec.loader.exec_module(recorded)
for name in sys.argv[2:]:
    case = recorded.CASES[name]
    tracker = recorded._tracker(case)
    recorded._replay(tracker, case, range(case["offsets"].size - 1))
    recorded._check_final_state(tracker, case)
print(json.dumps({"package": deepsort_edge.__file__, "kernel": kernel_kind(tracker_module.track_frame),
                  "extension": compiled_module() is not None}))
"""


@pytest.mark.slow
def test_wheel_without_a_compiler_is_pure_and_tracks_as_recorded(tmp_path):
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("needs hatchling to build the wheel offline (the test extra installs it)")
    if not (REPO_ROOT / "hatch_build.py").is_file():
        pytest.skip("needs the source tree beside the tests")
    failing = shutil.which("false")
    assert failing, "no `false` program to stand in for a broken compiler"
    env = subprocess_env(CC=failing, CXX=failing, DEEPSORT_EDGE_AOT="1", PIP_NO_INDEX="1",
                         NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    # pip runs the build backend, whose hook imports the sources it packages: only the caller's path.
    env.pop("PYTHONPATH")
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                            str(REPO_ROOT), "-w", str(tmp_path / "dist")],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "ahead-of-time kernel not built" in build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("deepsort_edge-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if "_frame_aot" in n]

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                              "--target", str(site), str(wheel)], env=env, capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stderr
    replay = subprocess.run([sys.executable, "-c", _REPLAY, str(REPO_ROOT / "tests" / "test_recorded.py"),
                             "crowded_gallery", "default_ema", "motion_only"],
                            env={**env, "PYTHONPATH": str(site)}, cwd=tmp_path, capture_output=True, text=True,
                            timeout=1800)
    assert replay.returncode == 0, replay.stderr[-3000:]
    result = json.loads(replay.stdout.strip().splitlines()[-1])
    assert result["package"].startswith(str(site))
    assert result == {**result, "kernel": "jit", "extension": False}
