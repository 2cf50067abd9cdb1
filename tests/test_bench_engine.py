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
        assert len(row["times_ms"][0]) == data["synthetic"]["frames"]
    status = {t["target"]: t["status"] for t in data["targets"]}
    # No shared data here: the MOT17-04 rows are skipped, not failed; 2850 objects did not run.
    assert all(status[name] == "SKIP" for name in status if name.startswith("MOT17-04"))
    assert status["synthetic 2850 objects, gallery: ms per update"] == "SKIP"
    assert "| target | value | threshold | result |" in out.stdout
