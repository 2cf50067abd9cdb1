"""Cold JIT compile of the kernels: this ``deepsort_edge`` against a git revision, side by side.

    python tools/bench.py compile --against db007d9 --rounds 5 --json docs/bench/compile.json --docs

The revision's package comes from ``git archive`` of the repository these tools
belong to. Each round starts a fresh process per side, in alternating order (a
machine that slows down mid-run then weighs on both sides alike), with
``DEEPSORT_EDGE_KERNELS=jit`` and an empty Numba cache, and tracks one frame
(``tools/measure_start.py``'s child, which records Numba's compile events).
Printed: the first tracked frame and Numba's compile self time (medians over
the rounds, with the range), the frame kernel's own compile split into Numba's
type inference (which includes compiling its callees) and native lowering (LLVM),
the size of its final LLVM module and the reference-count calls left in it; then
the functions whose compile self time differs most between the two sides.
Numbers are wall time on a shared machine: compare the ratio, over several
rounds, and keep the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .common import UsageError, machine_info, package_env
from .report import md_table, publish

REPO = Path(__file__).resolve().parents[2]
CURRENT = "imported deepsort_edge"
DOCS_BLOCK = "compile"


def export_revision(revision: str, into: Path) -> str:
    """The package at ``revision`` (``git archive``) under ``into``; returns the short commit."""
    try:
        found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "--verify", "--quiet",
                                f"{revision}^{{commit}}"], capture_output=True, text=True)
    except FileNotFoundError:
        raise UsageError("--against needs git, and git is not installed") from None
    if found.returncode:
        raise UsageError(f"--against {revision!r} is not a commit of {REPO}")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", found.stdout.strip(), "deepsort_edge"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return found.stdout.strip()


def cold_start(env: dict[str, str]) -> dict:
    """One fresh process with an empty Numba cache and the JIT kernels: its first frame, compile events recorded."""
    import measure_start  # tools/, beside bench.py

    with tempfile.TemporaryDirectory() as cache:
        return measure_start.run_child({**env, "NUMBA_CACHE_DIR": cache, "DEEPSORT_EDGE_KERNELS": "jit",
                                        "MEASURE_EVENTS": "1"}, "float32")


def _median(runs: list[dict], get) -> float:
    return statistics.median(get(r) for r in runs)


def _where(path: str) -> str:
    """An installed package or a source checkout (not the local path, which means nothing in the docs)."""
    return "an installed package" if "site-packages" in Path(path).parts else "a source checkout"


def render(data: dict, top: int = 12) -> str:
    """The two sides' medians, then the functions whose compile self time differs most."""
    sides = data["sides"]
    labels = list(sides)

    def spread(runs: list[dict], key: str) -> str:
        values = sorted(r[key] for r in runs)
        return f"{statistics.median(values):.2f} ({values[0]:.2f}-{values[-1]:.2f})"

    rows = []
    for label in labels:
        runs = sides[label]
        kernel = runs[0]["frame_kernel"]
        rows.append([label, str(len(runs)), spread(runs, "first_frame_s"), spread(runs, "compile_self_s"),
                     "/".join(map(str, sorted({r["compilations"] for r in runs}))),
                     f"{_median(runs, lambda r: r['frame_kernel']['type_inference_s']):.2f}",
                     f"{_median(runs, lambda r: r['frame_kernel']['native_lowering_s']):.2f}",
                     f"{kernel['ir_chars'] / 1000:.0f}k", f"{kernel['increfs']}/{kernel['decrefs']}"])
    ours, theirs = (_median(sides[label], lambda r: r["first_frame_s"]) for label in labels)
    m = data["machine"]
    load = "n/a" if m["load_average"] is None else f"{m['load_average']:.1f}"
    lines = [(f"`{data['command']}` on {m['cpu']} ({m['usable_cpus']} usable CPUs, load average {load} at the "
              f"start), numba {m['numba']}; {CURRENT}: {_where(m['deepsort_edge_path'])}"), "",
             md_table(["side", "runs", "first frame s", "compile self s", "compilations",
                       "frame kernel: type inference s", "native lowering s", "final LLVM IR",
                       "NRT incref/decref calls"], rows),
             "", f"First frame, {labels[0]} / {labels[1]}: {ours / theirs:.2f}x (medians).", ""]
    names = set().union(*(r["self_by_function"] for runs in sides.values() for r in runs))

    def self_time(label: str, name: str) -> float:
        return _median(sides[label], lambda r: r["self_by_function"].get(name, (0, 0.0))[1])

    def count(label: str, name: str) -> int:
        return sides[label][0]["self_by_function"].get(name, (0, 0.0))[0]

    moved = sorted(names, key=lambda n: -abs(self_time(labels[0], n) - self_time(labels[1], n)))[:top]
    lines += [md_table(["function (compile self time, median s)", *labels, "difference s", "compilations"],
                       [[name, f"{self_time(labels[0], name):.2f}", f"{self_time(labels[1], name):.2f}",
                         f"{self_time(labels[0], name) - self_time(labels[1], name):+.2f}",
                         f"{count(labels[0], name)} / {count(labels[1], name)}"] for name in moved]), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py compile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, metavar="REV", help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="cold starts per side (default 3)")
    parser.add_argument("--json", type=Path, help="also write every run to this JSON file")
    parser.add_argument("--docs", action="store_true", help="re-render docs/benchmarks.md's compile block")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        raise UsageError(f"--rounds must be >= 1, got {args.rounds}")
    with tempfile.TemporaryDirectory() as tmp:
        commit = export_revision(args.against, Path(tmp))
        envs = {CURRENT: package_env(), commit: {**os.environ, "PYTHONPATH": tmp}}
        sides: dict[str, list[dict]] = {label: [] for label in envs}
        for round_ in range(args.rounds):
            for label in list(envs)[:: 1 if round_ % 2 == 0 else -1]:
                sides[label].append(cold_start(envs[label]))
                print(f"round {round_ + 1}/{args.rounds}, {label}: first frame "
                      f"{sides[label][-1]['first_frame_s']:.2f} s", file=sys.stderr, flush=True)
    data = {"command": "python tools/bench.py compile " + " ".join(argv or sys.argv[2:]),
            "machine": machine_info(), "sides": sides}
    print(render(data))
    publish(data, args.json, args.docs, DOCS_BLOCK, render)
    return 0
