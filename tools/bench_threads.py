"""Do tracker instances in threads scale? (The kernels release the GIL.)

Runs N independent trackers on N seeded synthetic scenes, first one after the
other, then each in its own thread, checks that the outputs are identical and
prints the wall-clock speed-up. Python code between kernel calls still holds
the GIL, so the speed-up grows with the share of time spent in kernels: more
detections per frame, gallery mode.

    python tools/bench_threads.py --objects 50 200 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402

from deepsort_edge import DeepSORTTracker  # noqa: E402
from deepsort_edge.demo.synthetic import SceneConfig, generate_scene  # noqa: E402


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[20, 50, 200])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args(argv)

    DeepSORTTracker().warmup()
    DeepSORTTracker(appearance_mode="ema").warmup()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numba {numba.__version__}; {args.threads} trackers, {args.frames} frames each\n")
    print("| mode | dets/frame | one after the other s | in threads s | speed-up | identical |")
    print("|---|---:|---:|---:|---:|---|")
    identical_everywhere = True
    for mode in ("gallery", "ema"):
        for objects in args.objects:
            seq, par, same = measure(objects, args.threads, args.frames, mode)
            identical_everywhere &= same
            print(f"| {mode} | {objects} | {seq:.2f} | {par:.2f} | {seq / par:.2f}x | {'yes' if same else 'NO'} |")
    return 0 if identical_everywhere else 1


if __name__ == "__main__":
    raise SystemExit(main())
