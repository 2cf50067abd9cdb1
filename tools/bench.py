#!/usr/bin/env python
"""The benchmark suite's one runner: ``python tools/bench.py SECTION [options]``.

Each section is a module of ``tools/benchmarks/`` with ``main(argv) -> int``;
``python tools/bench.py SECTION --help`` lists its options. The suite imports
whichever ``deepsort_edge`` Python finds (the installed package; set
``PYTHONPATH`` to a checkout to time that one): nothing here puts the
repository on ``sys.path``.

User errors (an unknown section, a bad option, the shared data not found) are
one line on stderr, ``bench.py SECTION: error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from benchmarks.common import UsageError, one_thread

#: Section -> (module, runs on one thread, what it measures).
SECTIONS: dict[str, tuple[str, bool, str]] = {
    "speed": ("benchmarks.speed", True, "tracker-only update time against deep-sort-realtime (MOT17-04, synthetic)"),
    "quality": ("benchmarks.quality", False, "tracking quality: presets, ablation, default selection (TrackEval)"),
    "peers": ("benchmarks.peers", False, "every preset against boxmot and roboflow trackers (needs them installed)"),
    "identities": ("benchmarks.identities", False, "global ids over two cameras: no linking, registry, oracle"),
    "soak": ("benchmarks.soak", True, "a long scene: memory growth, time drift, ids never reused"),
    "threads": ("benchmarks.threads", True, "two trackers in two threads against one after the other"),
    "embedder": ("benchmarks.embedder", False, "appearance embedding crops/s against torch"),
    "pipeline": ("benchmarks.pipeline", False, "read | detect + embed | track: each stage alone and overlapped"),
    "soak-live": ("benchmarks.soak_live", False, "a live MJPEG source faster than the pipeline: memory stays flat"),
    "streams": ("benchmarks.streams", False, "many streams: separate trackers, MultiStreamTracker, Ray"),
    "gpu": ("benchmarks.gpu", False, "embedder providers on a GPU: equivalence, crops/s, streams in real time"),
    "startup": ("benchmarks.startup", False, "cold and warm start: import and first tracked frame, fresh processes"),
    "compile": ("benchmarks.compile_time", False, "cold JIT compile of the kernels against a git revision, by function"),
    "install": ("benchmarks.install", False, "installed size of each install route, fresh venvs"),
    "docs": ("benchmarks.docs", False, "re-render every generated block of README.md and docs/ from its JSON"),
}


def usage() -> str:
    width = max(map(len, SECTIONS))
    lines = [f"  {name:<{width}}  {what}" for name, (_, _, what) in SECTIONS.items()]
    return "usage: bench.py SECTION [options]   (bench.py SECTION --help)\n\nsections:\n" + "\n".join(lines)


@contextlib.contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """While a section runs, its argparse errors raise :class:`UsageError` instead of printing usage first.

    Sections build plain ``argparse`` parsers (each can run alone from Python);
    the runner makes their errors one line like its own.
    """
    def error(self: argparse.ArgumentParser, message: str) -> NoReturn:
        raise UsageError(message)

    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = error  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]


def fail(where: str, message: object) -> int:
    """Print ``<where>: error: <message>`` as one line on stderr; the exit status of a user error."""
    text = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"{where}: error: {text}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv:
        return fail("bench.py", "no section given (bench.py --help lists them)")
    name, rest = argv[0], argv[1:]
    if name not in SECTIONS:
        return fail("bench.py", f"unknown section {name!r} (choose from {', '.join(SECTIONS)})")
    module, single_thread, _ = SECTIONS[name]
    if single_thread:
        one_thread()  # before numpy and numba load their thread pools
    try:
        with one_line_usage_errors():
            return importlib.import_module(module).main(rest)
    except UsageError as exc:
        return fail(f"bench.py {name}", exc)


if __name__ == "__main__":
    sys.exit(main())
