"""Do tracker instances in threads scale? (The kernels release the GIL.)

Runs N independent trackers on N seeded synthetic scenes, first one after the
other, then each in its own thread, checks that the outputs are identical and
prints the wall-clock speed-up. Python code between kernel calls still holds
the GIL, so the speed-up grows with the share of time spent in kernels: more
detections per frame, gallery mode.

    python tools/bench.py threads --json docs/bench/threads.json --docs   # and rewrite docs/benchmarks.md's block
    python tools/bench.py threads --objects 50 200 --threads 2
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
import time
from pathlib import Path

from deepsort_edge import DeepSORTTracker
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene

from .common import machine_info
from .report import md_table, publish

DOCS_BLOCK = "threads"


def run(frames, mode: str) -> list[list[int]]:
    tracker = DeepSORTTracker(appearance_mode=mode)
    return [tracker.update_arrays(f.xyxy, f.scores, f.embeddings).tolist() for f in frames]


def measure(objects: int, threads: int, frames: int, mode: str) -> tuple[float, float, bool]:
    scenes = [
        generate_scene(SceneConfig(num_objects=objects, seed=seed, miss_rate=0.05, embedding_dim=512), frames)
        for seed in range(threads)
    ]
    start = time.perf_counter()
    sequential = [run(scene, mode) for scene in scenes]
    one_after_other = time.perf_counter() - start

    results: list = [None] * threads

    def work(i: int) -> None:
        results[i] = run(scenes[i], mode)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    in_threads = time.perf_counter() - start
    return one_after_other, in_threads, results == sequential


def render(data: dict) -> str:
    """docs/benchmarks.md's threads block."""
    m = data["machine"]
    rows = [[r["mode"], str(r["objects"]), f"{r['sequential_s']:.2f}", f"{r['threads_s']:.2f}",
             f"{r['sequential_s'] / r['threads_s']:.2f}x", "yes" if r["identical"] else "NO"] for r in data["rows"]]
    return "\n".join([
        f"`{data['command']}` on {m['cpu']} ({m['usable_cpus']} usable CPUs, load average "
        f"{m['load_average']:.1f} at the start), Python {m['python']}, numba {m['numba']}; {data['threads']} "
        f"trackers, {data['frames']} frames each, wall-clock time:", "",
        md_table(["mode", "detections a frame", "one after the other s", "in threads s", "speed-up", "identical"],
                 rows, "lrrrrl"), "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py threads", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[20, 50, 200])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.md's threads block")
    args = parser.parse_args(argv)

    DeepSORTTracker().warmup()
    DeepSORTTracker(appearance_mode="ema").warmup()
    data = {"command": ("python tools/bench.py threads " + shlex.join(argv if argv is not None else sys.argv[2:])
                        ).strip(), "machine": machine_info(), "threads": args.threads, "frames": args.frames,
            "rows": []}
    for mode in ("gallery", "ema"):
        for objects in args.objects:
            seq, par, same = measure(objects, args.threads, args.frames, mode)
            data["rows"].append({"mode": mode, "objects": objects, "sequential_s": seq, "threads_s": par,
                                 "identical": same})
    print(render(data))
    publish(data, args.json, args.docs, DOCS_BLOCK, render)
    return 0 if all(r["identical"] for r in data["rows"]) else 1
