"""A lean core: numba, numpy and OpenCV headless; supervision, tqdm and platformdirs only where used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepsort_edge import optional

from .conftest import PACKAGE_PARENT, REPO_ROOT, subprocess_env

PACKAGE = PACKAGE_PARENT / "deepsort_edge"


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def test_core_dependencies_are_numba_numpy_and_opencv_headless():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_requirement_name(r) for r in project["dependencies"]) == [
        "numba", "numpy", "opencv-python-headless"]
    # The test extra installs no torch (its default Linux wheel pulls the CUDA stack).
    assert "torch" not in {_requirement_name(r) for r in project["optional-dependencies"]["test"]}


# Without supervision, tqdm and platformdirs (imports of them fail, as if not installed):
# motion and appearance tracking on arrays, the CLI's bars, the cache folder; sv.Detections
# entry points say what to install.
_WITHOUT = r"""
import sys
for name in ("supervision", "tqdm", "platformdirs"):
    sys.modules[name] = None
import numpy as np
from deepsort_edge import DeepSORTTracker, MultiStreamTracker
from deepsort_edge.appearance.embedder import default_cache_dir
from deepsort_edge.optional import progress_bar
from deepsort_edge.io.video import TrackAnnotator
tracker = DeepSORTTracker(minimum_consecutive_frames=1)
ids = tracker.update_arrays(np.array([[10.0, 10.0, 50.0, 110.0]]), np.array([0.9]), np.ones((1, 8), np.float32))
assert ids.tolist() == [1], ids
for call in (lambda: tracker.update(object()), lambda: MultiStreamTracker().update({"a": object()})):
    try:
        call()
    except ImportError as exc:
        assert "supervision is not installed" in str(exc) and "update_arrays" in str(exc), exc
    else:
        raise AssertionError("no ImportError")
prepared = tracker.prepare(np.array([[12.0, 10.0, 52.0, 110.0]]))  # arrays need no supervision
assert tracker.commit(prepared).ids.tolist() == [1]
bar = progress_bar(total=3, unit="frame", disable=None)
bar.update(2); bar.total += 1; bar.refresh(); bar.close()
assert bar.n == 2
print(default_cache_dir())
out = TrackAnnotator()(np.zeros((60, 80, 3), np.uint8), np.array([[5.0, 5.0, 30.0, 50.0]]), np.array([4]))
assert out.any()
"""


def test_tracking_works_without_supervision_tqdm_and_platformdirs(tmp_path):
    env = subprocess_env(XDG_CACHE_HOME=str(tmp_path / "xdg"), DEEPSORT_EDGE_CACHE="")
    out = subprocess.run([sys.executable, "-c", _WITHOUT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    if sys.platform.startswith("linux"):
        assert out.stdout.strip() == str(tmp_path / "xdg" / "deepsort-edge")


def test_cache_folder_fallback_matches_platformdirs(monkeypatch, tmp_path):
    platformdirs = pytest.importorskip("platformdirs")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = platformdirs.user_cache_path("deepsort-edge", appauthor=False)
    assert optional.user_cache_dir("deepsort-edge") == expected
    monkeypatch.setitem(sys.modules, "platformdirs", None)
    assert optional.user_cache_dir("deepsort-edge") == expected


def _cv2_names() -> set[str]:
    """Every ``cv2.NAME`` the package's sources use."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        names.update(re.findall(r"\bcv2\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8")))
    return names


# OpenCV 5 dropped the HOG people detector; detection/hog.py checks for it and names the fix.
GUARDED = {"HOGDescriptor", "HOGDescriptor_getDefaultPeopleDetector"}


def test_every_opencv_name_we_use_exists_in_the_installed_opencv():
    cv2 = pytest.importorskip("cv2")
    names = _cv2_names()
    assert {"resize", "VideoCapture", "calcOpticalFlowPyrLK", "putText"} <= names  # the scan sees them
    assert 'hasattr(cv2, "HOGDescriptor")' in (PACKAGE / "detection" / "hog.py").read_text(encoding="utf-8")
    missing = sorted(n for n in names - GUARDED if not hasattr(cv2, n))
    assert not missing, f"OpenCV {cv2.__version__} lacks {missing}"


def test_no_module_imports_optional_packages_at_top_level():
    optional_modules = ("supervision", "tqdm", "platformdirs")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(rf"(import|from) ({'|'.join(optional_modules)})\b", line):
                offenders.append(f"{path.relative_to(PACKAGE)}: {line}")
    assert not offenders, offenders
    assert Path(optional.__file__).name == "optional.py"
