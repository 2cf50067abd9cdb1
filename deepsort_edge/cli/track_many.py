"""``deepsort-edge track DIR -o OUT_DIR [--workers N] [--ray [ADDRESS]]``: many inputs at once.

``DIR`` holds several inputs: MOTChallenge sequence folders (with
``det/det.txt``) and video files, each with its MOT detections in
``NAME.txt`` beside it. Every input goes through the same function as a
single ``deepsort-edge track INPUT -o OUT_DIR/<name>.txt`` run
(:func:`deepsort_edge.cli.track_one.track_input`), with the same options, so
each ``OUT_DIR/<name>.txt`` is byte-identical to a one-by-one run. Inputs
run one after the other by default, ``--workers N`` at a time in processes,
or as Ray tasks with ``--ray`` (a local Ray, or the cluster at ``ADDRESS``);
one progress bar counts the frames of all of them. An input that fails is
reported and the others still run (exit status 2 at the end).
"""

from __future__ import annotations

import argparse
import copy
import json
import queue as queue_module
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsort_edge.mot import MOTFormatError, MOTSequence
from deepsort_edge.optional import progress_bar

PROG = "deepsort-edge track"
_VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"}
_REPORT_EVERY_S = 0.2  # workers batch progress messages this often


@dataclass(frozen=True)
class Input:
    """One input of a folder: its name (the results file's stem), path and detections."""

    name: str
    source: Path
    detections: Path | None  # None: the sequence's own det/det.txt


def find_inputs(args: argparse.Namespace) -> list[Input] | None:
    """The inputs in ``args.source`` when it is a folder of several; None when it is one input.

    A folder that is itself a sequence (it has ``det/det.txt``, or
    ``--detections`` is given) is one input, as before.
    """
    root: Path = args.source
    if not root.is_dir() or args.detections is not None:
        return None
    try:
        if MOTSequence.from_folder(root).det_path is not None:
            return None
    except ValueError:  # a malformed seqinfo.ini: the single-input path reports it
        return None
    inputs = []
    for path in sorted(root.iterdir()):
        if path.is_dir():
            try:
                seq = MOTSequence.from_folder(path)
            except ValueError:  # its own run reports the malformed seqinfo.ini
                inputs.append(Input(path.name, path, None))
                continue
            if seq.det_path is not None:
                inputs.append(Input(seq.name, path, None))
        elif path.suffix.lower() in _VIDEO_SUFFIXES:
            inputs.append(Input(path.stem, path, path.with_suffix(".txt")))
    return inputs or None


def _item_args(args: argparse.Namespace, item: Input, out_dir: Path) -> argparse.Namespace:
    """The options of a single run of ``item``: what ``track ITEM -o OUT_DIR/NAME.txt`` would parse."""
    one = copy.copy(args)
    one.source = item.source
    one.detections = item.detections
    one.output = out_dir / f"{item.name}.txt"
    one.summary = None
    one.quiet = True
    one.workers = None
    one.ray = None
    vars(one).pop("run", None)  # the subcommand hook; not needed to track one input
    return one


# ----------------------------------------------------------------------------- progress
class _QueueBar:
    """A bar-like object in a worker: sends its frame counts to the parent through a queue."""

    def __init__(self, send: Callable[[tuple], None], total: int | None) -> None:
        self._send = send
        self._pending = 0
        self._last = time.monotonic()
        send(("total", total or 0))

    def update(self, n: int = 1) -> None:
        self._pending += n
        if time.monotonic() - self._last >= _REPORT_EVERY_S:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._send(("frames", self._pending))
            self._pending = 0
        self._last = time.monotonic()

    def close(self) -> None:
        self._flush()


class _QueueProgress:
    """Picklable progress factory for :func:`deepsort_edge.cli.track_one.track_input`."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def __call__(self, total: int | None, name: str) -> _QueueBar:
        return _QueueBar(self.queue.put, total)


class _BarProgress:
    """In-process progress factory: the parent's bar itself."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, total: int | None, name: str) -> _QueueBar:
        return _QueueBar(lambda message: _apply(self.bar, message), total)


def _apply(bar: Any, message: tuple) -> None:
    kind, n = message
    if kind == "total":
        bar.total = (bar.total or 0) + n
        bar.refresh()
    else:
        bar.update(n)


# ----------------------------------------------------------------------------- one input
def track_one(args: argparse.Namespace, progress: Any = None) -> dict[str, Any]:
    """Track one input of the folder; never raises for a bad input (the result says why)."""
    from deepsort_edge.cli.track_one import InputError, track_input  # noqa: PLC0415

    try:
        summary = track_input(args, progress)
    except (InputError, FileNotFoundError, MOTFormatError) as exc:
        return {"input": str(args.source), "error": str(exc)}
    except Exception as exc:  # noqa: BLE001  (one input's failure must not stop the others)
        return {"input": str(args.source), "error": f"{type(exc).__name__}: {exc}"}
    return summary


# ----------------------------------------------------------------------------- runners
def _run_local(jobs: list[argparse.Namespace], bar: Any) -> list[dict[str, Any]]:
    return [track_one(job, _BarProgress(bar)) for job in jobs]


def _drain(get: Callable[[], tuple], bar: Any) -> None:
    while True:
        try:
            message = get()
        except queue_module.Empty:
            return
        _apply(bar, message)


def _run_processes(jobs: list[argparse.Namespace], workers: int, bar: Any) -> list[dict[str, Any]]:
    import multiprocessing  # noqa: PLC0415

    # spawn: a fork of this process (tqdm's thread, Numba, ONNX Runtime pools) is not safe.
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        messages = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures: dict[Future, int] = {
                pool.submit(track_one, job, _QueueProgress(messages)): i for i, job in enumerate(jobs)
            }
            results: list[dict[str, Any] | None] = [None] * len(jobs)
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=_REPORT_EVERY_S, return_when=FIRST_COMPLETED)
                _drain(messages.get_nowait, bar)
                for future in done:
                    results[futures[future]] = future.result()
            _drain(messages.get_nowait, bar)
    return results  # type: ignore[return-value]


def _run_ray(jobs: list[argparse.Namespace], address: str, workers: int | None, bar: Any) -> list[dict[str, Any]]:
    try:
        import ray  # noqa: PLC0415
        from ray.util.queue import Queue  # noqa: PLC0415
    except ImportError as exc:
        from deepsort_edge.cli.track_one import InputError  # noqa: PLC0415

        raise InputError(f'--ray needs Ray: pip install ".[cpu,ray]" in a clone ({exc})') from None
    started = not ray.is_initialized()
    if started:
        # Workers' warnings (undecodable frames, ...) reach this stderr, as with processes.
        if address == "local":
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    try:
        messages = Queue()
        task = ray.remote(num_cpus=1)(track_one)
        limit = workers or len(jobs)
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        refs: dict[Any, int] = {}
        queued = list(enumerate(jobs))
        while queued or refs:
            while queued and len(refs) < limit:
                i, job = queued.pop(0)
                refs[task.remote(job, _QueueProgress(messages))] = i
            done, _ = ray.wait(list(refs), num_returns=1, timeout=_REPORT_EVERY_S)
            _drain(lambda: messages.get(block=False), bar)
            for ref in done:
                results[refs.pop(ref)] = ray.get(ref)
        _drain(lambda: messages.get(block=False), bar)
        messages.shutdown()
    finally:
        if started:
            ray.shutdown()
    return results  # type: ignore[return-value]


# ----------------------------------------------------------------------------- entry
def run_many(args: argparse.Namespace, inputs: list[Input]) -> int:
    """Track every input of the folder; returns the exit status."""
    from deepsort_edge.cli.track_one import InputError  # noqa: PLC0415

    if args.video_out is not None:
        raise InputError("--video-out takes one input; give a single sequence or video, not a folder")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    names = [item.name for item in inputs]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise InputError(f"several inputs in {args.source} are named {clashes}: their results would collide")
    out_dir: Path = args.output or Path("runs") / "track"
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"-o {out_dir}: a folder of inputs needs an output folder, not a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [_item_args(args, item, out_dir) for item in inputs]

    start = time.perf_counter()
    bar = progress_bar(total=0, unit="frame", desc=f"{len(jobs)} inputs", file=sys.stderr,
               disable=True if args.no_progress else None, leave=False)
    try:
        if args.ray is not None:
            how = f"Ray ({'local' if args.ray == 'local' else args.ray})"
            results = _run_ray(jobs, args.ray, args.workers, bar)
        elif (args.workers or 1) > 1 and len(jobs) > 1:
            how = f"{min(args.workers, len(jobs))} processes"
            results = _run_processes(jobs, min(args.workers, len(jobs)), bar)
        else:
            how = "one process"
            results = _run_local(jobs, bar)
    finally:
        bar.close()
    wall = time.perf_counter() - start
    failed = [(item, r) for item, r in zip(inputs, results) if "error" in r]
    for item, result in failed:
        print(f"{PROG}: error: {item.name}: {result['error']}", file=sys.stderr)
    if args.summary is not None:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        report = {"inputs": [dict(r, name=item.name) for item, r in zip(inputs, results)],
                  "wall_s": round(wall, 3), "runner": how}
        args.summary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if not args.quiet:
        print(format_many(inputs, results, out_dir, how, wall))
    return 2 if failed else 0


def format_many(
    inputs: Iterable[Input], results: Iterable[dict[str, Any]], out_dir: Path, how: str, wall: float
) -> str:
    """The end-of-run summary: one line per input, then the totals."""
    lines = []
    frames = 0
    count = 0
    for item, result in zip(inputs, results):
        count += 1
        if "error" in result:
            lines.append(f"  {item.name}: FAILED ({result['error']})")
            continue
        frames += result["frames"]
        lines.append(
            f"  {item.name}: {result['frames']} frames, {result['tracks']} tracks, "
            f"{result['result_rows']} rows ({result['mode']})"
        )
    rate = f", {frames / wall:,.1f} frames/s overall" if wall > 0 else ""
    head = f"Tracked {count} input{'s' if count != 1 else ''} with {how} in {wall:.1f} s: {frames} frames{rate} -> {out_dir}/<name>.txt"
    return "\n".join([head, *lines])
