"""``deepsort-edge track DIR -o OUT_DIR [--workers N] [--ray [ADDRESS]]``: many inputs at once.

``DIR`` holds several inputs: MOTChallenge sequence folders (with
``det/det.txt``) and video files, each with its MOT detections in
``NAME.txt`` beside it. Every input goes through the same function as a
single ``deepsort-edge track INPUT -o OUT_DIR/<name>.txt`` run
(:func:`deepsort_edge.cli.track_one.track_input`), with the same options, so
each ``OUT_DIR/<name>.txt`` is byte-identical to a one-by-one run. Inputs
run one after the other by default, ``--workers N`` at a time in processes,
or as Ray tasks with ``--ray`` (a local Ray, or the cluster at ``ADDRESS``);
one progress bar counts the frames of all of them.

Every input ends as done, failed or skipped, with its reason, in the summary
(exit status 2 if any failed): an input that fails, or whose worker process
crashes or is killed, or whose Ray task is lost with its node after
``_RAY_TASK_RETRIES`` retries, fails alone and the others still run; a folder
that looks like a sequence but has no ``det/det.txt`` is skipped (a broken
one, a folder or a dangling link there, fails); a ``seqinfo.ini`` name that
would leave OUT_DIR fails. Results files are written under a temporary name
and renamed when complete, so OUT_DIR never holds a truncated one.
"""

from __future__ import annotations

import argparse
import copy
import json
import queue as queue_module
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsort_edge.io.mot import MOTFormatError, MOTSequence
from deepsort_edge.optional import progress_bar

from .progress import REPORT_EVERY_S, BarProgress, QueueBar, QueueProgress, apply_progress, drain_progress

PROG = "deepsort-edge track"
_VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"}


@dataclass(frozen=True)
class Input:
    """One entry of a folder: its name (the results file's stem), path and detections.

    ``skipped`` or ``error`` say why an entry is not run: skipped (a folder
    that looks like a sequence but has no ``det/det.txt``: reported, not a
    failure) or failed before starting (a broken ``det/det.txt``, a name
    that would leave OUT_DIR).
    """

    name: str
    source: Path
    detections: Path | None  # None: the sequence's own det/det.txt
    skipped: str | None = None
    error: str | None = None


# What makes a folder look like a MOTChallenge sequence, even without its detections.
_SEQUENCE_MARKS = ("seqinfo.ini", "det", "img1", "gt")


def find_inputs(args: argparse.Namespace) -> list[Input] | None:
    """The inputs in ``args.source`` when it is a folder of several; None when it is one input.

    A folder that is itself a sequence (it has ``det/det.txt``, or
    ``--detections`` is given) is one input, as before. Sub-folders that look
    like sequences but cannot run are listed too (with ``skipped`` or
    ``error``), so that the summary accounts for every one.
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
            inputs.extend(_sequence_input(path))
        elif path.suffix.lower() in _VIDEO_SUFFIXES:
            inputs.append(Input(path.stem, path, path.with_suffix(".txt")))
    if all(item.skipped for item in inputs):
        return None  # nothing to run: the single-input path says why
    return inputs


def _sequence_input(path: Path) -> list[Input]:
    """The sub-folder ``path`` as an input, a reported non-input, or nothing (not a sequence)."""
    try:
        seq = MOTSequence.from_folder(path)
    except ValueError:  # its own run reports the malformed seqinfo.ini
        return [Input(path.name, path, None)]
    if seq.det_path is not None:
        return [Input(seq.name, path, None)]
    det = path / "det" / "det.txt"
    if det.is_symlink() and not det.exists():
        return [Input(path.name, path, None, error=f"{det} is a dangling link")]
    if det.exists():
        return [Input(path.name, path, None, error=f"{det} is not a file")]
    if any((path / mark).exists() for mark in _SEQUENCE_MARKS):
        return [Input(path.name, path, None, skipped=f"no {det}")]
    return []  # an unrelated folder


def _name_error(name: str) -> str | None:
    """Why ``name`` cannot be a results file's stem inside OUT_DIR (None: it can)."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        return f"name {name!r} (from seqinfo.ini) is not a plain file name; its results would leave the output folder"
    return None


def _item_args(args: argparse.Namespace, item: Input, out_dir: Path) -> argparse.Namespace:
    """The options of a single run of ``item``: what ``track ITEM -o OUT_DIR/NAME.txt`` would parse.

    Every path is made absolute here, so that a job means the same on a
    Ray node whose working directory is elsewhere.
    """
    one = copy.copy(args)
    one.source = item.source
    one.detections = item.detections
    one.output = out_dir / f"{item.name}.txt"
    one.summary = None
    one.quiet = True
    one.workers = None
    one.ray = None
    vars(one).pop("run", None)  # the subcommand hook; not needed to track one input
    for key, value in vars(one).items():
        if isinstance(value, Path):
            setattr(one, key, value.absolute())
    return one


# ----------------------------------------------------------------------------- one input
def track_one(args: argparse.Namespace, progress: Any = None) -> dict[str, Any]:
    """Track one input of the folder; never raises for a bad input (the result says why)."""
    from deepsort_edge.cli.track_one import InputError, track_input  # noqa: PLC0415

    try:
        summary = track_input(args, progress)
    except (InputError, FileNotFoundError, MOTFormatError) as exc:
        return {"input": str(args.source), "status": "failed", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001  (one input's failure must not stop the others)
        return {"input": str(args.source), "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    return {**summary, "status": "done"}


def _lost(job: argparse.Namespace, why: str) -> dict[str, Any]:
    """The result of an input whose worker died: a failure naming the cause."""
    return {"input": str(job.source), "status": "failed", "error": f"its worker {why}; no results were written"}


# ----------------------------------------------------------------------------- runners
def _run_local(jobs: list[argparse.Namespace], bar: Any) -> list[dict[str, Any]]:
    return [track_one(job, BarProgress(bar)) for job in jobs]


def _child(job: argparse.Namespace, conn: Any) -> None:
    """A worker process: one input; progress, then ("result", summary) down its own pipe."""
    result = track_one(job, lambda total, name: QueueBar(conn.send, total))
    conn.send(("result", result))
    conn.close()


def _run_processes(jobs: list[argparse.Namespace], workers: int, bar: Any) -> list[dict[str, Any]]:
    """One process per input, ``workers`` at a time, each with its own pipe.

    A process that crashes or is killed fails only its own input: its pipe
    closes without a result, and the others go on (a shared pool would break
    for every input in flight).
    """
    import multiprocessing  # noqa: PLC0415
    from multiprocessing.connection import wait as wait_any  # noqa: PLC0415

    # spawn: a fork of this process (tqdm's thread, Numba, ONNX Runtime pools) is not safe.
    context = multiprocessing.get_context("spawn")
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    queued = list(enumerate(jobs))
    running: dict[Any, tuple[int, Any]] = {}  # parent's pipe end -> (job index, process)
    try:
        while queued or running:
            while queued and len(running) < workers:
                i, job = queued.pop(0)
                parent, child = context.Pipe(duplex=False)
                process = context.Process(target=_child, args=(job, child), daemon=True)
                process.start()
                child.close()
                running[parent] = (i, process)
            for conn in wait_any(list(running)):
                i, process = running[conn]
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):  # closed without a result: the process died
                    del running[conn]
                    process.join()
                    results[i] = _lost(jobs[i], _exit_reason(process.exitcode))
                    _remove_partial(jobs[i].output, process.pid)
                    continue
                if kind == "result":
                    results[i] = payload
                    del running[conn]
                    process.join()
                else:
                    apply_progress(bar, (kind, payload))
    finally:
        for _, process in running.values():  # interrupted: stop what still runs
            process.kill()
            process.join()
    return results  # type: ignore[return-value]


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        import signal  # noqa: PLC0415

        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code} before reporting"


def _remove_partial(output: Path, pid: int | str | None) -> None:
    """Delete the temporary results files a killed worker left (MOTResultWriter names them by pid; "*": any)."""
    for leftover in output.parent.glob(f".{output.name}.{pid}.*.tmp"):
        leftover.unlink(missing_ok=True)


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
        # A task lost with its node is retried elsewhere (results are written atomically, so a
        # retry never finds a half-written file); after the retries, only that input fails.
        task = ray.remote(num_cpus=1, max_retries=_RAY_TASK_RETRIES)(track_one)
        limit = workers or len(jobs)
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        refs: dict[Any, int] = {}
        queued = list(enumerate(jobs))
        while queued or refs:
            while queued and len(refs) < limit:
                i, job = queued.pop(0)
                refs[task.remote(job, QueueProgress(messages))] = i
            done, _ = ray.wait(list(refs), num_returns=1, timeout=REPORT_EVERY_S)
            try:
                drain_progress(lambda: messages.get(block=False), bar)
            except ray.exceptions.RayError:  # the queue's actor was lost with its node: no more progress
                messages = _NoQueue()
            for ref in done:
                i = refs.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    results[i] = _lost(jobs[i], f"failed on Ray ({type(exc).__name__}: {_first_line(exc)})")
        try:
            drain_progress(lambda: messages.get(block=False), bar)
            messages.shutdown()
        except (ray.exceptions.RayError, AttributeError):
            pass
    finally:
        if started:
            ray.shutdown()
    return results  # type: ignore[return-value]


_RAY_TASK_RETRIES = 3


class _NoQueue:
    """Stands in for a progress queue that is gone: empty, and puts are dropped."""

    def get(self, block: bool = False) -> tuple:
        raise queue_module.Empty

    def put(self, item: Any) -> None:
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


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
    inputs = [item if item.skipped or item.error else _checked_name(item) for item in inputs]
    runnable = [item for item in inputs if not (item.skipped or item.error)]
    jobs = [_item_args(args, item, out_dir) for item in runnable]

    start = time.perf_counter()
    bar = progress_bar(total=0, unit="frame", desc=f"{len(jobs)} inputs", file=sys.stderr,
               disable=True if args.no_progress else None, leave=False)
    try:
        if args.ray is not None:
            how = f"Ray ({'local' if args.ray == 'local' else args.ray})"
            ran = _run_ray(jobs, args.ray, args.workers, bar) if jobs else []
        elif (args.workers or 1) > 1 and len(jobs) > 1:
            how = f"{min(args.workers, len(jobs))} processes"
            ran = _run_processes(jobs, min(args.workers, len(jobs)), bar)
        else:
            how = "one process"
            ran = _run_local(jobs, bar)
    finally:
        bar.close()
    wall = time.perf_counter() - start
    for job in jobs:  # what workers lost mid-run left (a Ray task on a lost node cannot clean up)
        _remove_partial(job.output, "*")
    by_item = dict(zip(runnable, ran))
    results = [by_item[item] if item in by_item else _not_run(item) for item in inputs]
    failed = [(item, r) for item, r in zip(inputs, results) if r["status"] == "failed"]
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


def _checked_name(item: Input) -> Input:
    error = _name_error(item.name)
    return Input(item.name, item.source, item.detections, error=error) if error else item


def _not_run(item: Input) -> dict[str, Any]:
    if item.skipped:
        return {"input": str(item.source), "status": "skipped", "reason": item.skipped}
    return {"input": str(item.source), "status": "failed", "error": item.error}


def format_many(
    inputs: Iterable[Input], results: Iterable[dict[str, Any]], out_dir: Path, how: str, wall: float
) -> str:
    """The end-of-run summary: one line per input (done, failed or skipped, with why), then the totals."""
    lines = []
    frames = 0
    count = 0
    counts = {"done": 0, "failed": 0, "skipped": 0}
    for item, result in zip(inputs, results):
        counts[result["status"]] += 1
        if result["status"] == "skipped":
            lines.append(f"  {item.name}: skipped ({result['reason']})")
            continue
        count += 1
        if result["status"] == "failed":
            lines.append(f"  {item.name}: FAILED ({result['error']})")
            continue
        frames += result["frames"]
        lines.append(
            f"  {item.name}: {result['frames']} frames, {result['tracks']} tracks, "
            f"{result['result_rows']} rows ({result['mode']})"
        )
    rate = f", {frames / wall:,.1f} frames/s overall" if wall > 0 else ""
    head = f"Tracked {count} input{'s' if count != 1 else ''} with {how} in {wall:.1f} s: {frames} frames{rate} -> {out_dir}/<name>.txt"
    tally = ", ".join(f"{n} {status}" for status, n in counts.items())
    return "\n".join([head, f"  ({tally})", *lines])
