#!/usr/bin/env python
"""The benchmark suite's one runner: ``python tools/bench.py SECTION [options]``.

Each section is a module of ``tools/benchmarks/`` with ``main(argv) -> int``;
``python tools/bench.py SECTION --help`` lists its options. The suite imports
whichever ``deepsort_edge`` Python finds (the installed package; set
``PYTHONPATH`` to a checkout to time that one): nothing here puts the
repository on ``sys.path``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from benchmarks.common import one_thread

#: Section -> (module, runs on one thread, what it measures).
SECTIONS: dict[str, tuple[str, bool, str]] = {
    "speed": ("benchmarks.speed", True, "tracker-only update time against deep-sort-realtime (MOT17-04, synthetic)"),
    "quality": ("benchmarks.quality", False, "tracking quality: presets, ablation, default selection (TrackEval)"),
    "identities": ("benchmarks.identities", False, "global ids over two cameras: no linking, registry, oracle"),
    "soak": ("benchmarks.soak", True, "a long scene: memory growth, time drift, ids never reused"),
    "threads": ("benchmarks.threads", True, "two trackers in two threads against one after the other"),
    "embedder": ("benchmarks.embedder", False, "appearance embedding crops/s against torch"),
    "pipeline": ("benchmarks.pipeline", False, "read | detect + embed | track: each stage alone and overlapped"),
    "soak-live": ("benchmarks.soak_live", False, "a live MJPEG source faster than the pipeline: memory stays flat"),
    "streams": ("benchmarks.streams", False, "many streams: separate trackers, MultiStreamTracker, Ray"),
    "gpu": ("benchmarks.gpu", False, "embedder providers on a GPU: equivalence, crops/s, streams in real time"),
    "startup": ("benchmarks.startup", False, "cold and warm start: import and first tracked frame, fresh processes"),
    "install": ("measure_install", False, "installed size of each install route, fresh venvs"),
    "docs": ("benchmarks.docs", False, "re-render every generated block of README.md and docs/ from its JSON"),
}


def usage() -> str:
    width = max(map(len, SECTIONS))
    lines = [f"  {name:<{width}}  {what}" for name, (_, _, what) in SECTIONS.items()]
    return "usage: bench.py SECTION [options]   (bench.py SECTION --help)\n\nsections:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SECTIONS:
        print(f"bench.py: error: unknown section {name!r} (choose from {', '.join(SECTIONS)})", file=sys.stderr)
        return 2
    module, single_thread, _ = SECTIONS[name]
    if single_thread:
        one_thread()  # before numpy and numba load their thread pools
    return importlib.import_module(module).main(rest)


if __name__ == "__main__":
    sys.exit(main())
