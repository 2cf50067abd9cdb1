"""``deepsort-edge track SOURCE -o OUT_DIR --global-ids``: one id per person across inputs and re-entries.

Every input of SOURCE (a folder of sequence folders and videos, as for
``track DIR``, or a single sequence folder or video) is one camera. They are
stepped together, frame ``k`` of every input at time ``k / frame rate``
seconds, through one tracker per input, one appearance embedder and one
:class:`~deepsort_edge.streams.identities.IdentityRegistry` (default settings; the
inputs' views are taken not to overlap). Outputs in OUT_DIR:

- ``<name>.txt``: the input's MOT results with *global* ids in the id column
  (rows whose global id is still undecided, the first frames of a track, are
  left out);
- ``links.csv``: ``stream,track_id,global_id,first_frame,last_frame,frames``,
  one line per local track and the global id it carried (a track whose id was
  revised has one line per id).

Appearance is required (a detections file alone has no frames to embed).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.tracking.boxes import tlwh_to_xyxy
from deepsort_edge.cli.track_one import (
    InputError,
    build_extractor,
    given_minimum_score,
    plan_input,
    prepare_detections,
    tracker_kwargs,
)
from deepsort_edge.io.mot import MOTResultWriter
from deepsort_edge.io.video import prefetch

LINKS_FILE = "links.csv"


def run_global(args: argparse.Namespace, inputs: list[Any]) -> dict[str, Any]:
    """Track ``inputs`` (``track_many.Input``) together with global ids; returns a JSON-ready summary.

    Raises:
        InputError: a problem with an input or an output.
    """
    from deepsort_edge import DeepSORTTracker  # noqa: PLC0415  (numba: import only when tracking)
    from deepsort_edge.streams.identities import IdentityRegistry  # noqa: PLC0415

    if args.no_appearance:
        raise InputError("--global-ids needs appearance: drop --no-appearance")
    out_dir: Path = args.output or Path("runs") / "track"
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"-o/--output {out_dir}: with --global-ids it is a folder, and this is a file")
    streams = []
    for item in inputs:
        one = argparse.Namespace(**{**vars(args), "source": item.source, "detections": item.detections})
        plan = plan_input(one, [])
        if plan.source.kind == "detections":
            raise InputError(f"{item.source}: --global-ids needs frames (a sequence folder with img1/ or a video)")
        detections, _, _ = prepare_detections(
            plan.det_path, given_minimum_score(args), args.score_norm, args.score_scale
        )
        rate = args.frame_rate or plan.frame_rate or 30.0
        try:
            tracker = DeepSORTTracker(frame_rate=rate, **tracker_kwargs(args))
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None
        streams.append({"name": item.name, "plan": plan, "det": detections, "index": detections.frame_index(),
                        "rate": rate, "tracker": tracker, "frames": prefetch(plan.source)})
    names = [s["name"] for s in streams]
    if len(set(names)) != len(names):
        raise InputError(f"two inputs share a name ({sorted(names)}); their results files would collide")
    extractor = build_extractor(args)
    registry = IdentityRegistry()
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {s["name"]: MOTResultWriter(out_dir / f"{s['name']}.txt") for s in streams}
    spans: dict[tuple[str, int, int], list[int]] = {}
    try:
        active = list(streams)
        while active:
            for s in list(active):
                step = next(s["frames"], None)
                if step is None:
                    active.remove(s)
                    continue
                frame, image = step
                _track_frame(s, frame, image, extractor, registry, writers[s["name"]], spans)
    except BaseException:
        for w in writers.values():
            w.discard()  # no truncated results files: the outputs are complete or untouched
        raise
    finally:
        for s in streams:
            s["plan"].source.close()
    try:
        for w in writers.values():
            w.close()
    except OSError as exc:  # a full disk often shows only here, when the buffer is flushed
        for w in writers.values():
            w.discard()
        raise InputError(f"-o/--output {out_dir}: writing failed ({exc.strerror or exc})") from None
    rows = sorted((stream, track, gid, span) for (stream, track, gid), span in spans.items())
    with (out_dir / LINKS_FILE).open("w", newline="", encoding="utf-8") as fh:
        table = csv.writer(fh)
        table.writerow(["stream", "track_id", "global_id", "first_frame", "last_frame", "frames"])
        for stream, track, gid, (first, last, count) in rows:
            table.writerow([stream, track, gid, first, last, count])
    return {
        "inputs": names, "output": str(out_dir), "links": str(out_dir / LINKS_FILE),
        "local_tracks": len({(r[0], r[1]) for r in rows}), "global_ids": len({r[2] for r in rows}),
    }


def _track_frame(
    s: dict[str, Any], frame: int, image: np.ndarray | None, extractor: Any, registry: Any,
    writer: MOTResultWriter, spans: dict[tuple[str, int, int], list[int]],
) -> None:
    """One frame of one input: embed, track, global ids, write."""
    rows = s["index"].get(frame, slice(0, 0)) if image is not None else slice(0, 0)  # unreadable frame: coast
    table = s["det"].table[rows]
    xyxy = tlwh_to_xyxy(table[:, 2:6])
    scores = table[:, 6].astype(np.float32)
    emb = extractor.extract_features(image, xyxy) if len(xyxy) else None
    ids, boxes = s["tracker"].update_arrays(xyxy, scores, emb, return_boxes=True)
    gids = registry.observe(s["name"], ids, emb if emb is not None else np.zeros((0, 1)), time=frame / s["rate"])
    writer.write(frame, gids, boxes, scores)
    for track, gid in zip(ids[gids >= 1].tolist(), gids[gids >= 1].tolist()):
        span = spans.setdefault((s["name"], track, gid), [frame, frame, 0])
        span[1], span[2] = frame, span[2] + 1
