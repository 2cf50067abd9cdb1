"""The speed numbers of README.md and docs/benchmarks.md, rendered from ``bench.py speed``'s JSON.

``docs/bench/speed.json`` is committed; ``tests/test_bench_docs.py`` keeps
every block here equal to its rendering of that file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .common import REPO
from .report import md_table, replace_block
from .speed_synthetic import gallery_growth


def times(x: float) -> str:
    """A ratio as ``12x``, or ``0.5x`` below 10."""
    return f"{x:.1f}x" if x < 10 else f"{x:.0f}x"


def machine_line(r: dict) -> str:
    m = r["machine"]
    return (f"`{r['command']}` on {m['cpu']} ({m['usable_cpus']} usable CPUs, load average "
            f"{m['load_average']:.1f} at the start), Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, "
            f"deep-sort-realtime {m['deep_sort_realtime']}, deepsort-edge {m['deepsort_edge']}; one thread, "
            f"CPU time per update.")


def render_mot17(r: dict) -> str:
    m = r["mot17_04"]
    loops = m["loops"]
    dsr = loops["dsr"]["median_ms"]
    rows = [[s["label"], f"{s['median_ms']:.3f}", f"{s['p95_ms']:.3f}", times(dsr / s['median_ms']),
             f"{s['coverage']:.3f}", str(s["id_switches"]), str(s["distinct_ids"])] for s in loops.values()]
    floor = m["matmul_floor"]
    rows.append([floor["label"], f"{floor['median_ms']:.3f}", f"{floor['p95_ms']:.3f}", "", "", "", ""])
    return "\n".join([
        machine_line(r), "",
        f"MOT17-04-FRCNN, {m['frames']} frames, {m['detections_per_frame']:.1f} detections a frame, 512-d "
        f"embeddings from the ground truth; median of {m['repeats']} repeats' medians:", "",
        md_table(["run", "median ms", "p95 ms", "deep-sort-realtime / this", "coverage", "ID sw", "ids"], rows), "",
    ])


def render_cache_cold(r: dict) -> str:
    c = r["cache_cold"]
    rows = []
    for mode in ("gallery", "ema"):
        warm, cold = c[f"{mode}_warm"]["median_ms"], c[f"{mode}_cold"]["median_ms"]
        k_warm, k_cold = c[f"{mode}_warm_kernel"]["median_ms"], c[f"{mode}_cold_kernel"]["median_ms"]
        rows.append([mode, f"{warm:.3f}", f"{cold:.3f}", f"{cold / warm:.1f}", f"{k_warm:.3f} / {k_cold:.3f}",
                     f"{warm - k_warm:.3f} / {cold - k_cold:.3f}"])
    return "\n".join([
        f"First {c['frames']} frames of MOT17-04, one ONNX Runtime inference between updates ({c['model']}, "
        f"{c['inference_ms']:.1f} ms CPU each); kernel: the one compiled call, glue: the rest of `update_arrays`:",
        "", md_table(["mode", "warm ms", "cold ms", "cold / warm", "kernel warm / cold ms", "glue warm / cold ms"],
                     rows), "",
    ])


def render_synthetic(r: dict) -> str:
    s = r["synthetic"]
    rows = []
    for size, row in s["sizes"].items():
        dsr = row.get("dsr")
        ratio = (lambda k: times(dsr["median_ms"] / row[k]["median_ms"])) if dsr else (lambda k: "")
        rows.append([size, f"{row['detections_per_frame']:.0f}", f"{row['gallery']['median_ms']:.3f}",
                     f"{row['ema']['median_ms']:.3f}", f"{dsr['median_ms']:.2f}" if dsr else "", ratio("gallery"),
                     ratio("ema"), f"{row['gallery_mb']:.0f}", f"{row['read_floor_ms']:.2f}"])
    sizes = {int(size): row for size, row in s["sizes"].items()}
    growth = gallery_growth(sizes)
    return "\n".join([
        f"Seeded walkers, {s['frames']} frames (medians from frame {s['skipped_frames'] + 1}), "
        f"median of {s['repeats']} repeats; read floor: the live galleries read once at "
        f"{s['streaming_gb_s']:.1f} GB/s (this core's one-thread streaming rate):", "",
        md_table(["objects", "detections a frame", "gallery ms", "ema ms", "deep-sort-realtime ms", "DSR / gallery",
                  "DSR / ema", "galleries MB", "read floor ms"], rows), "",
        *([f"Gallery mode at 2850 objects: {growth:.0f}x its time per update at 190.", ""] if growth else []),
    ])


def render_long_run(r: dict) -> str:
    lr = r["long_run"]
    rows = []
    for mode, m in lr["modes"].items():
        (a, b), (c, d) = m["start_window_frames"], m["end_window_frames"]
        rows.append([mode, str(m["distinct_ids"]), f"{a}-{b}: {m['start_median_ms']:.3f}",
                     f"{c}-{d}: {m['end_median_ms']:.3f}", f"{m['ratio']:.2f}"])
    return "\n".join([
        f"{lr['frames']} frames, {lr['objects']} objects coming and going; each window's median is the best of "
        f"{lr['repeats']} runs:", "",
        md_table(["mode", "ids", "frames: median ms (start)", "frames: median ms (end)", "end / start"], rows), "",
    ])


def render_readme(r: dict) -> str:
    m = r["mot17_04"]
    loops = m["loops"]
    dsr = loops["dsr"]["median_ms"]
    ema, gallery = loops["ema"]["median_ms"], loops["gallery"]["median_ms"]
    return (f"Speed: one compiled call per frame. Tracker-only on MOT17-04 ({m['detections_per_frame']:.0f} "
            f"detections a frame), one thread: {ema:.3f} ms per update in EMA mode, {times(dsr / ema)} faster than "
            f"deep-sort-realtime in the same run, and {gallery:.3f} ms ({times(dsr / gallery)}) with a 100-embedding "
            f"gallery (`python tools/bench.py speed`, {r['machine']['cpu']}).\n")


#: (file, block marker) -> (section of the JSON it needs, renderer).
BLOCKS: dict[tuple[str, str], tuple[str, Callable[[dict], str]]] = {
    ("docs/benchmarks.md", "speed-mot17"): ("mot17_04", render_mot17),
    ("docs/benchmarks.md", "speed-cache-cold"): ("cache_cold", render_cache_cold),
    ("docs/benchmarks.md", "speed-synthetic"): ("synthetic", render_synthetic),
    ("docs/benchmarks.md", "speed-long-run"): ("long_run", render_long_run),
    ("README.md", "speed-summary"): ("mot17_04", render_readme),
}


def write_docs(results: dict, root: Path = REPO) -> list[str]:
    """Rewrite every block whose section ``results`` holds; the ``file:marker`` of those written."""
    written = []
    for (file, marker), (section, render) in BLOCKS.items():
        if section in results and replace_block(root / file, marker, render(results)):
            written.append(f"{file}:{marker}")
    return written
