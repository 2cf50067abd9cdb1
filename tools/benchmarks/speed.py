"""Tracker speed: deepsort-edge against deep-sort-realtime, one thread, embeddings given.

Sections (``--sections``, default all):

- ``mot17``: MOT17-04, every mode against deep-sort-realtime (:mod:`.speed_mot17`);
- ``cache-cold``: the same updates with an embedder inference between them (:mod:`.cache_cold`);
- ``synthetic``: seeded scenes of 10 to 2850 objects (:mod:`.speed_synthetic`);
- ``long-run``: 10,050 frames of objects coming and going (:mod:`.speed_synthetic`).

Start-up (import, compile, first frame) is ``python tools/measure_start.py``.
Every thread pool runs one thread (the runner sets the variables before numpy
loads); times are ``time.thread_time`` CPU time of one update. The shared data
folder is ``$DEEPSORT_EDGE_DATA`` (default ``../shared/data`` beside the
repository); without it the MOT17-04 sections report SKIP.

    python tools/bench.py speed                               # everything, 10-30 minutes on 2 shared cores
    python tools/bench.py speed --quick                       # smoke run, about a minute
    python tools/bench.py speed --sections mot17 --repeats 5
    python tools/bench.py speed --json docs/bench/speed.json --docs   # and rewrite the docs' speed blocks
    python tools/bench.py speed --from-json docs/bench/speed.json --docs   # re-render only
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .cache_cold import section_cache_cold
from .common import THREAD_VARIABLES, machine_info
from .inputs import CompareSettings, mot17_04_frames
from .report import Report
from .speed_docs import write_docs
from .speed_mot17 import section_mot17
from .speed_synthetic import section_long_run, section_synthetic

SECTIONS = ("mot17", "cache-cold", "synthetic", "long-run")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.py speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="what to run (default all)")
    p.add_argument("--quick", action="store_true", help="smoke run: few frames, one repeat, small scenes")
    p.add_argument("--repeats", type=int, default=3, help="runs of each timing loop (default 3)")
    p.add_argument("--json", type=Path, help="write every number to this JSON file")
    p.add_argument("--docs", action="store_true", help="rewrite the speed blocks of README.md and docs/benchmarks.md")
    p.add_argument("--from-json", type=Path, help="run nothing: render --docs from this JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embedding-noise", type=float, default=0.5,
                   help="norm of the noise on identity embeddings (default 0.5: cosine ~0.8 within an object)")
    p.add_argument("--mot-frames", type=int, default=None, help="first frames of MOT17-04 only (default all 1050)")
    p.add_argument("--dsr-unbounded-frames", type=int, default=300,
                   help="frames of deep-sort-realtime's default unbounded gallery on MOT17-04 (0: skip)")
    p.add_argument("--cold-frames", type=int, default=300, help="MOT17-04 frames of the cache-cold loop")
    p.add_argument("--crops", type=int, default=2, help="person crops per inference in the cache-cold loop")
    p.add_argument("--synthetic-sizes", type=int, nargs="+", default=[10, 50, 190, 760, 2850])
    p.add_argument("--synthetic-frames", type=int, default=120, help="frames per scene (galleries fill at 100)")
    p.add_argument("--synthetic-skip", type=int, default=10, help="first frames left out of the medians")
    p.add_argument("--dsr-max-objects", type=int, default=190,
                   help="largest scene deep-sort-realtime runs (it takes seconds a frame at 1000)")
    p.add_argument("--long-frames", type=int, default=10_050)
    p.add_argument("--long-repeats", type=int, default=3)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars on stderr")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.long_repeats < 1:
        p.error("--repeats and --long-repeats must be >= 1")
    if args.from_json and not args.docs:
        p.error("--from-json only renders: add --docs")
    if args.quick:
        args.repeats, args.long_repeats = 1, 1
        args.mot_frames, args.cold_frames, args.dsr_unbounded_frames = 60, 30, 30
        args.synthetic_sizes = [s for s in args.synthetic_sizes if s <= 190] or [10]
        args.synthetic_frames, args.synthetic_skip = 15, 3
        args.long_frames = 700
    args.command = "python tools/bench.py speed " + shlex.join(argv if argv is not None else sys.argv[2:])
    return args


def header(report: Report, args: argparse.Namespace) -> None:
    info = machine_info()
    report.results.update(machine=info, command=args.command.strip(), quick=args.quick, sections=args.sections,
                          settings=CompareSettings().__dict__, embedding_noise=args.embedding_noise)
    report.emit("# deepsort-edge tracker speed" + (" (--quick smoke run: numbers are not meaningful)"
                                                    if args.quick else ""))
    report.emit()
    report.emit(f"- CPU: {info['cpu']} ({info['usable_cpus']} usable, load average {info['load_average']:.1f}); "
                f"Python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, deep-sort-realtime "
                f"{info['deep_sort_realtime']}, deepsort-edge {info['deepsort_edge']} ({info['deepsort_edge_path']})")
    threads = ", ".join(f"{k}=1" for k in THREAD_VARIABLES)
    report.emit(f"- CPU time (`time.thread_time`) per update, one thread ({threads}); both trackers: "
                f"{CompareSettings().describe()}; 512-d embeddings given, no embedder")
    report.emit()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        write_docs(json.loads(args.from_json.read_text(encoding="utf-8")))
        return 0
    report = Report()
    header(report, args)
    frames = None
    if {"mot17", "cache-cold"} & set(args.sections):
        frames = mot17_04_frames(embedding_noise=args.embedding_noise, seed=args.seed, max_frames=args.mot_frames)
    if "mot17" in args.sections:
        section_mot17(report, args, frames)
    if "cache-cold" in args.sections:
        section_cache_cold(report, args, frames)
    if "synthetic" in args.sections:
        section_synthetic(report, args)
    if "long-run" in args.sections:
        section_long_run(report, args)
    report.finish(args.json, digits=4)
    if args.docs:
        write_docs(report.results)
    return 0
