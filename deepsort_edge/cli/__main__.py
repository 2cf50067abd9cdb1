"""``deepsort-edge`` command line: ``demo``, ``track``, ``eval``, ``export``, ``quantize``, ``warmup``.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``; modules are imported only when their subcommand runs,
so ``deepsort-edge --help`` stays fast and needs no optional extra.

Example:
    $ deepsort-edge demo
    $ deepsort-edge track MOT15/train/PETS09-S2L1 -o results/PETS09-S2L1.txt
    $ deepsort-edge eval MOT15/train/PETS09-S2L1 results/PETS09-S2L1.txt
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from deepsort_edge._version import __version__
from deepsort_edge.cli.errors import (
    EXIT_INTERNAL_ERROR,
    EXIT_USER_ERROR,
    ArgumentParser,
    UserError,
    describe_os_error,
    one_line,
)

# name -> (module, one-line help); the module is imported only when needed.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("deepsort_edge.cli.demo", "run the whole pipeline on a generated scene (no downloads)"),
    "track": ("deepsort_edge.cli.track", "track a MOTChallenge sequence, a video or a detections file"),
    "eval": ("deepsort_edge.cli.eval", "HOTA / MOTA / IDF1 of MOT result files (TrackEval)"),
    "export": ("deepsort_edge.cli.export", "export a re-identification model to ONNX (needs torch)"),
    "quantize": ("deepsort_edge.cli.quantize", "static int8 of any ONNX re-identification model (needs onnx)"),
    "warmup": ("deepsort_edge.cli.warmup", "compile the kernels now (or check the wheel's ahead-of-time ones)"),
}


def build_parser(
    argv: Sequence[str] | None = None,
) -> tuple[argparse.ArgumentParser, ModuleType | None]:
    """The top-level parser; only the chosen subcommand's module is imported.

    Args:
        argv: The arguments that will be parsed (used to find the chosen
            subcommand); None = ``sys.argv[1:]``.

    Returns:
        The parser and the chosen subcommand's module (None if none chosen).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = ArgumentParser(
        prog="deepsort-edge",
        description="DeepSORT multi-object tracking on Numba kernels and ONNX Runtime.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 = success).

    Exit status 2 is a user error (a bad option, path, permission or file
    format), reported on stderr in one line; 1 is an internal error (a bug).

    Example:
        >>> main(["eval", "--help"])  # doctest: +SKIP
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser, module = build_parser(argv)
    except ImportError as exc:  # a subcommand whose optional extra is missing
        chosen = next((a for a in argv if not a.startswith("-")), "")
        prog = f"deepsort-edge {chosen}" if chosen in SUBCOMMANDS else "deepsort-edge"
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        args, unknown = parser.parse_known_args(argv)
    except SystemExit as exc:  # argparse exits on --help/--version and on usage errors
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None or module is None:
        parser.print_help(sys.stderr)
        return 2
    prog = f"deepsort-edge {args.command}"
    if unknown:  # argparse would blame the top-level parser; the subcommand's options are meant
        print(f"{prog}: error: unrecognized arguments: {' '.join(unknown)}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        print("deepsort-edge: interrupted", file=sys.stderr)
        return 130
    # User errors never end in a traceback: one line naming the file or option.
    except UserError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # paths, permissions, full disks
        print(f"{prog}: error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:
        if os.environ.get("DEEPSORT_EDGE_DEBUG"):
            raise
        print(
            f"{prog}: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(a bug: please report it; DEEPSORT_EDGE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
