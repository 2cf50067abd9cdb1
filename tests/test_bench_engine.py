"""Smoke run of tools/bench_engine.py (issue 10's profile), so it cannot rot unnoticed.

Only that the script runs and reports what it promises; its timings are not
asserted (they go in issue notes, not unit tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import subprocess_env

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_engine_quick_reports_targets_and_skips_without_data(tmp_path):
    report = tmp_path / "engine.json"
    empty = tmp_path / "no-data"
    empty.mkdir()
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench_engine.py"), "--quick", "--no-progress",
         "--sections", "mot17", "cache-cold", "synthetic", "--json", str(report)],
        cwd=tmp_path, env=subprocess_env(DEEPSORT_EDGE_DATA=str(empty)), capture_output=True, text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(report.read_text())
    sizes = data["synthetic"]["sizes"]
    assert set(sizes) == {"190", "380"}
    for row in sizes.values():
        assert row["median_ms"] > 0 and row["detections_per_frame"] > 100
        assert row["gallery_mb"] > 0 and row["read_floor_ms"] > 0
        assert len(row["times_ms"][0]) == data["synthetic"]["frames"]
    status = {t["target"]: t["status"] for t in data["targets"]}
    # No shared data here: the MOT17-04 rows are skipped, not failed; 2850 objects did not run.
    assert all(status[name] == "SKIP" for name in status if name.startswith("MOT17-04"))
    assert status["synthetic 2850 objects, gallery: ms per update"] == "SKIP"
    assert "| target | value | threshold | result |" in out.stdout


_KERNEL_CLOCK = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import bench_engine as be
import deepsort_edge.tracking.tracker as tracker_module
from deepsort_edge import DeepSORTTracker

kernel = tracker_module.track_frame
tracker = DeepSORTTracker(minimum_consecutive_frames=1)
boxes = np.array([[10.0, 10.0, 50.0, 110.0]])
with be.KernelClock() as clock:
    for step in range(3):
        tracker.update_arrays(boxes + step, np.array([0.9]))
assert tracker_module.track_frame is kernel  # put back
tracker.update_arrays(boxes + 3, np.array([0.9]))
assert len(clock.times_ms) == 3 and all(t >= 0 for t in clock.times_ms), clock.times_ms
print("ok")
"""


def test_kernel_clock_times_each_kernel_call_and_puts_the_kernel_back():
    out = subprocess.run([sys.executable, "-c", _KERNEL_CLOCK, str(REPO / "tools")], env=subprocess_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
