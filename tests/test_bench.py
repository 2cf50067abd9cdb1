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


@pytest.mark.parametrize(("args", "line"), [
    ([], "bench.py: error: no section given (bench.py --help lists them)"),
    (["soak", "--bogus"], "bench.py soak: error: unrecognized arguments: --bogus"),
    (["startup", "--runs", "x"], "bench.py startup: error: argument --runs: invalid int value: 'x'"),
])
def test_user_errors_are_one_line_with_status_2(tmp_path, args, line):
    out = run_bench(args, tmp_path, DEEPSORT_EDGE_DATA=str(tmp_path / "no-data"))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [line]


@pytest.mark.parametrize("section", ["identities", "quality", "peers", "soak-live --detector hog",
                                     "pipeline --detector hog"])
def test_missing_shared_data_is_one_line_naming_the_variable_and_the_path(tmp_path, section):
    missing = tmp_path / "no-data"
    out = run_bench(section.split(), tmp_path, DEEPSORT_EDGE_DATA=str(missing))
    section = section.split()[0]
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"bench.py {section}: error: shared data not found at {missing} (set DEEPSORT_EDGE_DATA to its folder)"]


def test_unknown_sets_are_a_usage_error_naming_them(tmp_path):
    datasets = tool_module("benchmarks.datasets")
    common = tool_module("benchmarks.common")
    assert datasets.wanted_sets("pets-acf,mot17") == ("pets-acf", "mot17")
    assert datasets.wanted_sets(None) == datasets.REPORT_SETS
    with pytest.raises(common.UsageError, match=r"unknown sets \['nope'\]"):
        datasets.wanted_sets("pets-acf,nope")


def test_the_gpu_block_names_the_command_that_measured_it_and_the_one_that_reproduces_it():
    gpu = tool_module("benchmarks.gpu")
    stored = json.loads((TOOLS.parent / "docs" / "bench" / "gpu.json").read_text(encoding="utf-8"))
    old = "python tools/bench_gpu.py --providers cpu --json docs/bench_gpu.json"
    assert gpu.reproducing(old) == "python tools/bench.py gpu --providers cpu --json docs/bench/gpu.json"
    for command, renamed in ((old, True), ("python tools/bench.py gpu --providers cpu", False)):
        report = {**stored, "machine": {**stored["machine"], "command": command}}
        text = gpu.render(report)
        assert f"`{command}` at commit {stored['machine']['commit']}" in text
        assert (f"`{gpu.reproducing(command)}` reproduces it" in text) is renamed
        # Only the first line names the run: the measured rows are the stored report's, as they were.
        assert text.split("\n", 1)[1] == gpu.render(stored).split("\n", 1)[1]


def test_install_section_spots_cuda_wheels_in_pip_output():
    cuda = tool_module("benchmarks.install").CUDA_LINE
    for line in ("Collecting nvidia-cublas-cu12==12.8.4.1 (from torch)", "  Downloading torch-2.9.0+cu128-cp311.whl",
                 "Successfully installed nvidia_cudnn_cu12-9.10"):
        assert cuda.search(line), line
    for line in ("Collecting onnxruntime>=1.20", "Successfully installed torch-2.13.0+cpu numba-0.68.1",
                 "Collecting cuda-python-free-package"):
        assert not cuda.search(line), line


def test_readme_install_sizes_meet_issue_22():
    """The committed run: ``[cpu]`` within 600 MB; README's test command and the export route fetch no CUDA wheel."""
    data = json.loads((TOOLS.parent / "docs" / "bench" / "install.json").read_text(encoding="utf-8"))
    routes = {r["route"]: r for r in data["routes"]}
    assert routes["cpu"]["installed_mb"] <= 600
    for name in ("cpu", "cpu,test", "export-cpu-torch"):
        assert routes[name]["installed"] and routes[name]["nvidia_wheels"] == [], name
        assert routes[name]["pip_log_cuda_lines"] == [], name


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



def test_peer_ranks_count_the_peers_above_each_preset_and_skip_the_sets_it_did_not_run():
    peers = tool_module("benchmarks.peers")
    row = lambda hota: {"HOTA": hota, "IDF1": 0.0, "IDSW": 0}  # noqa: E731
    results = {"ours a": {"s1": row(50.0), "s2": row(40.0)}, "ours b": {"s1": row(45.0), "s2": None},
               "peer x": {"s1": row(48.0), "s2": row(41.0)}, "peer y": {"s1": row(46.0), "s2": None}}
    # s1: 48 and 46 -> a first, b third (the other preset is no peer); s2: one peer above a.
    assert peers.ranks(results, ("s1", "s2"), ["ours a", "ours b"]) == {"ours a": {"s1": 1, "s2": 2},
                                                                         "ours b": {"s1": 3}}


def test_peer_scores_pass_unit_scores_and_divide_any_other_scale_by_its_largest():
    peer_scores = tool_module("benchmarks.peers").peer_scores
    unit = np.array([0.2, 0.9, 1.0])
    np.testing.assert_array_equal(peer_scores(unit, 1.0), unit.astype(np.float32))
    np.testing.assert_allclose(peer_scores(np.array([30.0, 95.0]), 95.0), [30 / 95, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(peer_scores(np.array([-0.5, 0.5]), 1.0), np.float32([0.0, 0.5]))
    assert peer_scores(unit, 1.0).dtype == np.float32


def test_peer_worst_case_is_the_lowest_place_and_the_largest_deficit_to_the_best_peer():
    peers = tool_module("benchmarks.peers")
    row = lambda hota: {"HOTA": hota, "IDF1": 0.0, "IDSW": 0}  # noqa: E731
    results = {"ours": {"a": row(50.0), "b": row(40.0), "c": row(30.0), "d": None},
               "p": {"a": row(49.0), "b": row(42.5), "c": row(31.0), "d": row(99.0)},
               "q": {"a": row(10.0), "b": row(41.0), "c": None, "d": None}}
    # a: first (+1.0); b: third (-2.5); c: second (-1.0); d: not run by ours, so not counted.
    assert peers.worst_case(results, ("a", "b", "c", "d"), ["ours"], "ours") == (3, "b", -2.5, "b")
    with pytest.raises(ValueError, match="no result"):
        peers.worst_case(results, ("d",), ["ours"], "ours")


def test_peer_block_marks_cells_a_peer_cannot_run_and_says_why_and_where_frames_were_given():
    peers = tool_module("benchmarks.peers")
    row = lambda hota: {"HOTA": hota, "IDF1": 60.0, "IDSW": 3}  # noqa: E731
    data = {"command": "python tools/bench.py peers", "host": {"machine": "x", "cpus": 2, "python": "3.11"},
            "seconds": 1.0, "presets": ["default"], "sets": ["pets-acf", "mot17"], "ours": ["deepsort-edge default"],
            "frames": {"pets-acf": True, "mot17": False},
            "missing": {"boxmot StrongSORT": {"mot17": "boxmot StrongSORT needs embeddings; the set is motion only"}},
            "results": {"deepsort-edge default": {"pets-acf": row(50.0), "mot17": row(40.0)},
                        "boxmot StrongSORT": {"pets-acf": row(52.0), "mot17": None}}}
    text = peers.render(data)
    assert "| boxmot StrongSORT | 52.0 / 60.0 / 3 | n/a |" in text
    assert "n/a: boxmot StrongSORT on mot17: boxmot StrongSORT needs embeddings; the set is motion only." in text
    assert "On pets-acf the peers get the real frames" in text and "On mot17 the shared data has no frames" in text
    assert "| deepsort-edge default | 2 (-2.0) | - | 2 on pets-acf; -2.0 on pets-acf |" in text
    unfinished = {**data, "missing": {"boxmot StrongSORT": {"mot17": peers.UNFINISHED}}}
    text = peers.render(unfinished)
    assert "| boxmot StrongSORT | 52.0 / 60.0 / 3 | not run |" in text
    assert f"not run: boxmot StrongSORT on mot17: {peers.UNFINISHED}." in text


def test_peer_result_cache_round_trips_and_misses_on_another_stamp_tracker_or_set(tmp_path):
    inputs = tool_module("benchmarks.peer_inputs")
    cache = inputs.ResultCache(tmp_path, "boxmot=1;proto-a")
    assert cache.get("boxmot ByteTrack", "tud") == (False, None)
    cache.put("boxmot ByteTrack", "tud", {"HOTA": 41.5, "IDSW": 7})
    cache.put("boxmot StrongSORT", "mot17", None)  # "cannot run there" is a result too
    assert cache.get("boxmot ByteTrack", "tud") == (True, {"HOTA": 41.5, "IDSW": 7})
    assert cache.get("boxmot StrongSORT", "mot17") == (True, None)
    assert cache.get("boxmot ByteTrack", "mot17") == (False, None)
    assert inputs.ResultCache(tmp_path, "boxmot=2;proto-a").get("boxmot ByteTrack", "tud") == (False, None)
    assert not list(tmp_path.glob("*.tmp"))


def test_peer_frames_are_found_where_the_shared_layout_puts_them(tmp_path):
    inputs = tool_module("benchmarks.peer_inputs")
    folder = tmp_path / "MOT15" / "train" / "SEQ-1" / "img1"
    folder.mkdir(parents=True)
    (tmp_path / "MOT17" / "train" / "SEQ-2" / "img1").mkdir(parents=True)  # a folder without frames
    assert not inputs.has_frames(tmp_path, "SEQ-1")
    cv2 = pytest.importorskip("cv2")
    for i, value in enumerate((10, 200), 1):
        cv2.imwrite(str(folder / f"{i:06d}.jpg"), np.full((8, 12, 3), value, dtype=np.uint8))
    assert inputs.has_frames(tmp_path, "SEQ-1") and not inputs.has_frames(tmp_path, "SEQ-2")
    frames = inputs.frames_of(tmp_path, "SEQ-1")
    assert [f.shape for f in frames] == [(8, 12, 3)] * 2
    np.testing.assert_allclose([f.mean() for f in frames], [10, 200], atol=2)
    assert inputs.frames_of(tmp_path, "SEQ-2") is None and inputs.frames_of(tmp_path, "SEQ-1") is frames


def test_peers_refuses_fewer_than_one_job_in_one_line(tmp_path):
    out = run_bench(["peers", "--jobs", "0", "--out", str(tmp_path / "p.md")], tmp_path)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1] == (
        "bench.py peers: error: --jobs must be at least 1, got 0")


def test_peers_merge_puts_split_runs_back_together_and_refuses_different_sets(tmp_path):
    whole = json.loads((TOOLS.parent / "docs" / "bench" / "peers.json").read_text(encoding="utf-8"))
    labels = list(whole["results"])
    peers_first = labels[len(whole["ours"]):] + labels[:len(whole["ours"])]  # a split run's order
    halves = [{**whole, "seconds": 100.0, "ours": [], "results": {k: whole["results"][k] for k in peers_first[:4]}},
              {**whole, "seconds": 50.0, "ours": whole["ours"],
               "results": {k: whole["results"][k] for k in peers_first[4:]}}]
    for i, half in enumerate(halves):
        (tmp_path / f"{i}.json").write_text(json.dumps(half), encoding="utf-8")
    out = tmp_path / "merged.json"
    done = run_bench(["peers", "--merge", str(tmp_path / "0.json"), str(tmp_path / "1.json"), "--json", str(out),
                      "--out", str(tmp_path / "peers.md")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == {**whole, "seconds": 150.0}
    (tmp_path / "1.json").write_text(json.dumps({**halves[1], "sets": whole["sets"][:2]}), encoding="utf-8")
    refused = run_bench(["peers", "--merge", str(tmp_path / "0.json"), str(tmp_path / "1.json"),
                         "--out", str(tmp_path / "peers.md")], tmp_path)
    assert refused.returncode == 2 and refused.stderr.startswith("bench.py peers: error: --merge: the parts ran")

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


def _git_checkout() -> bool:
    try:
        return subprocess.run(["git", "-C", str(TOOLS.parent), "rev-parse", "HEAD"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not _git_checkout(), reason="the tools are not in a git checkout (compile --against reads git)")
@pytest.mark.parametrize(("args", "line"), [
    (["compile"], "bench.py compile: error: the following arguments are required: --against"),
    (["compile", "--against", "no-such-revision"],
     f"bench.py compile: error: --against 'no-such-revision' is not a commit of {TOOLS.parent}"),
    (["compile", "--against", "HEAD", "--rounds", "0"], "bench.py compile: error: --rounds must be >= 1, got 0"),
])
def test_compile_refuses_a_missing_or_unknown_revision_in_one_line(tmp_path, args, line):
    out = run_bench(args, tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [line]


def test_compile_report_ranks_functions_by_the_change_in_their_compile_time():
    def run(first_frame, functions):
        return {"first_frame_s": first_frame, "compile_self_s": first_frame - 0.5, "compilations": len(functions),
                "frame_kernel": {"type_inference_s": 1.0, "native_lowering_s": 2.0, "ir_chars": 5000,
                                 "increfs": 3, "decrefs": 4},
                "self_by_function": functions}

    new = [run(t, {"track_frame": (1, 3.0), "take": (3, 0.3), "same": (1, 1.0)}) for t in (6.0, 7.0, 5.0)]
    old = [run(t, {"track_frame": (1, 2.0), "_rows_of": (2, 0.5), "same": (1, 1.0)}) for t in (4.0, 4.5, 3.0)]
    machine = {"cpu": "cpu", "usable_cpus": 2, "load_average": None, "numba": "0", "deepsort_edge_path": "/x"}
    text = tool_module("benchmarks.compile_time").render(
        {"command": "c", "machine": machine, "sides": {"new": new, "old": old}})
    assert "| new | 3 | 6.00 (5.00-7.00) | 5.50 (4.50-6.50) | 3 | 1.00 | 2.00 | 5k | 3/4 |" in text
    assert "First frame, new / old: 1.50x (medians)." in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and line.count("|") == 6][1:]
    assert [row.split(" | ")[0][2:] for row in rows] == ["track_frame", "_rows_of", "take", "same"]
    assert rows[0] == "| track_frame | 3.00 | 2.00 | +1.00 | 1 / 1 |"
    assert rows[1] == "| _rows_of | 0.00 | 0.50 | -0.50 | 0 / 2 |"


@pytest.mark.slow
@pytest.mark.skipif(not _git_checkout(), reason="the tools are not in a git checkout (compile --against reads git)")
def test_compile_against_the_same_code_compiles_the_same_kernels(tmp_path):
    """The imported package against HEAD's: in a clean checkout, the same kernels (same compilations and the
    same reference-count calls in the frame kernel's final module)."""
    if subprocess.run(["git", "-C", str(TOOLS.parent), "diff", "--quiet", "HEAD", "--", "deepsort_edge"]).returncode:
        pytest.skip("deepsort_edge/ has uncommitted changes: HEAD's kernels differ from the imported ones")
    out = run_bench(["compile", "--against", "HEAD", "--rounds", "1", "--json", str(tmp_path / "c.json")], tmp_path)
    assert out.returncode == 0, out.stderr
    sides = list(json.loads((tmp_path / "c.json").read_text())["sides"].values())
    (ours,), (head,) = sides
    assert ours["compilations"] == head["compilations"] > 10
    assert ours["frame_kernel"]["increfs"] == head["frame_kernel"]["increfs"] > 0
    assert ours["frame_kernel"]["decrefs"] == head["frame_kernel"]["decrefs"]
    assert ours["self_by_function"].keys() == head["self_by_function"].keys()
    assert "| function (compile self time, median s)" in out.stdout
