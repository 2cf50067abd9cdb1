"""Where a cold start goes: import + first tracked frame, in fresh processes.

Each run is a new Python process (so nothing is imported or compiled yet)
with an empty ``NUMBA_CACHE_DIR`` unless it says "warm":

- ``ahead-of-time``: the kernel compiled into the package (``deepsort_edge/kernels/aot.py``;
  skipped when the package has no current ``_frame_aot`` extension);
- ``jit, empty cache``: ``DEEPSORT_EDGE_KERNELS=jit``, with Numba's compile
  events recorded (how many compilations, the slowest, self time);
- ``jit, warm cache``: the same again on the cache the previous run wrote.

Per-update speed of the two: ``python tools/bench.py speed`` under
``DEEPSORT_EDGE_KERNELS=jit`` and without it.

    python tools/measure_start.py [--runs 3] [--jit-runs 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import package_env

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
record = os.environ.get("MEASURE_EVENTS") == "1"
if record:
    from numba.core import event
    installed = event.install_recorder("numba:compile")  # kept: collecting it would uninstall the listener
    recorder = installed.__enter__()
import numpy as np
from deepsort_edge import DeepSORTTracker
try:  # this layout; an older revision (bench.py compile --against) may lack it
    import deepsort_edge.tracking.tracker as tracker_module
    from deepsort_edge.kernels.aot import kernel_kind
except ImportError:
    tracker_module = kernel_kind = None
t1 = time.perf_counter()
tracker = DeepSORTTracker(gallery_dtype=sys.argv[1])
ids = tracker.update_arrays(np.array([[10.0, 10.0, 50.0, 110.0]]), np.array([0.9]), np.ones((1, 8), np.float32))
t2 = time.perf_counter()
out = {"kernel": kernel_kind(tracker_module.track_frame) if kernel_kind else "jit", "import_s": t1 - t0,
       "first_frame_s": t2 - t1, "ids": ids.tolist()}
if record:
    starts, spans, inner = {}, [], []
    frame_kernel = None  # stays None where the frame kernel came from a cache or ahead of time
    for ts, ev in recorder.buffer:
        key = id(ev.data["dispatcher"]), str(ev.data["args"])
        if ev.is_start:
            starts[key] = ts
            inner.append(0.0)
        else:
            total = ts - starts.pop(key)
            nested = inner.pop()
            if inner:
                inner[-1] += total
            d = ev.data["dispatcher"]
            spans.append((f"{d.py_func.__module__}.{d.py_func.__qualname__}", total, total - nested,
                          d.py_func.__qualname__))
            if d.py_func.__name__ == "track_frame":
                frame_kernel = d
    out["compilations"] = len(spans)
    out["slowest_self_s"] = sorted(([n, round(s, 3)] for n, _, s, _ in spans), key=lambda x: -x[1])[:8]
    out["compile_self_s"] = sum(s for _, _, s, _ in spans)
    by_function = {}  # by name without its module: revisions that moved a kernel still pair up
    for _, _, own, name in spans:
        count, seconds = by_function.get(name, (0, 0.0))
        by_function[name] = (count + 1, seconds + own)
    out["self_by_function"] = by_function
    # The frame kernel's own compile by Numba pass (type inference includes compiling its callees)
    # and its final LLVM module: size and the reference-count calls left after optimisation.
    if frame_kernel is not None:
        cres = next(iter(frame_kernel.overloads.values()))
        passes = {name.split("_", 1)[1]: t.init + t.run + t.finalize
                  for pipeline in cres.metadata["pipeline_times"].values() for name, t in pipeline.items()}
        ir = cres.library.get_llvm_str()
        out["frame_kernel"] = {"type_inference_s": passes.get("nopython_type_inference", 0.0),
                               "native_lowering_s": passes.get("native_lowering", 0.0), "ir_chars": len(ir),
                               "increfs": ir.count("NRT_incref"), "decrefs": ir.count("NRT_decref")}
print(json.dumps(out))
"""

def run_child(env: dict[str, str], gallery_dtype: str) -> dict:
    start = time.perf_counter()
    # Not in the caller's folder: ``python -c`` puts it first on sys.path, and from a checkout's root the
    # child would import the checkout instead of the package ``env`` names.
    with tempfile.TemporaryDirectory() as elsewhere:
        proc = subprocess.run([sys.executable, "-c", _CHILD, gallery_dtype], env=env, capture_output=True, text=True,
                              cwd=elsewhere)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"measure_start: child failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="ahead-of-time cold starts (default 3)")
    parser.add_argument("--jit-runs", type=int, default=1, help="JIT cold starts, each then warm (default 1)")
    parser.add_argument("--gallery-dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    import deepsort_edge.kernels.aot as aot

    base = package_env()  # the children import this deepsort_edge (aot.py moved a level down in kernels/)
    rows: list[dict] = []
    kinds = [("jit", "DEEPSORT_EDGE_KERNELS", "jit")]
    if aot.compiled_module() is not None:
        kinds.insert(0, ("ahead-of-time", "DEEPSORT_EDGE_KERNELS", "auto"))
    else:
        print("no current _frame_aot extension in this package: ahead-of-time runs skipped", file=sys.stderr)
    for label, var, value in kinds:
        for run in range(args.runs if label != "jit" else args.jit_runs):
            with tempfile.TemporaryDirectory() as cache:
                env = {**base, var: value, "NUMBA_CACHE_DIR": cache, "MEASURE_EVENTS": "1" if label == "jit" else "0"}
                cold = run_child(env, args.gallery_dtype)
                rows.append({"kind": f"{label}, empty cache", "run": run, **cold})
                if label == "jit":
                    env["MEASURE_EVENTS"] = "0"
                    rows.append({"kind": "jit, warm cache", "run": run, **run_child(env, args.gallery_dtype)})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "slowest_self_s"}), file=sys.stderr)
    print("| start | runs | import s | first frame s | wall s (process) | Numba compilations |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in dict.fromkeys(r["kind"] for r in rows):
        sel = [r for r in rows if r["kind"] == kind]

        def span(key: str) -> str:
            values = sorted(r[key] for r in sel)
            return f"{values[0]:.2f}" if len(values) == 1 else f"{values[0]:.2f}-{values[-1]:.2f}"

        comps = {r.get("compilations") for r in sel} - {None}
        print(f"| {kind} | {len(sel)} | {span('import_s')} | {span('first_frame_s')} | {span('wall_s')} | "
              f"{'/'.join(map(str, sorted(comps))) or 0} |")
    slow = [r for r in rows if r.get("slowest_self_s")]
    if slow:
        print(f"\nJIT, slowest compilations (self time, s, first run): {slow[0]['slowest_self_s']}")
        print(f"JIT, compile self time in all: {slow[0]['compile_self_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
