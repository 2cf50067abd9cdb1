"""Peer ranking: every preset against the trackers we can install, same detections, same features.

Runs, on the sets of ``datasets.py`` (HOTA / IDF1 / IDSW by TrackEval, as ``bench.py quality``):

- deepsort-edge's presets (``default``, ``paper``, ``roboflow-2.0.1``);
- boxmot's HybridSORT, BoT-SORT, StrongSORT, ByteTrack, OC-SORT, DeepOCSORT and BoostTrack
  (BoostTrack also without embeddings, on every set), each with its own defaults but
  appearance on (BoostTrack's default is off), handed our embeddings
  (``Detections(embeddings=...)``), so none downloads ReID weights; on a
  motion-only set a tracker that uses appearance runs with it switched off
  (``use_embeddings=False``), or not at all (StrongSORT);
- roboflow ``trackers`` 2.0.1's DeepSORTTracker with its defaults, handed the same
  embeddings through a feature extractor that returns them (sets with embeddings only).

Every tracker sees the same boxes, the same scores and, where it uses appearance, the same
unit embeddings. boxmot refuses scores outside [0, 1], so on a set with such scores (the
0-100 simulated detector) the peers get the scores divided by the set's largest score,
what their documentation asks of a user; deepsort-edge gets them as the detector gave them.

Frames. Where the shared data has a sequence's frames (PETS09-S2L1: the pets-*, sim-pets-*
and hog-pets sets) the peers get them, so each runs its default camera-motion compensation
(:data:`CMC`; ECC or sparse optical flow) as a user's would; the frames are decoded once per
process (``peer_inputs.py``). MOT17 and TUD ship no frames here: the peers' compensation is
off there, since there is no image to estimate camera motion from. A blank frame gives the
same result (ECC fails and returns the identity warp every frame) but still pays for what
makes HybridSORT, StrongSORT and DeepOCSORT slow with compensation on: every frame they warp
each track's stored history (about 0.1-0.2 s a frame on PETS09 here, most of their time).
deepsort-edge's default does not look for camera motion.

The peers are never dependencies: run this section with a Python that has ``boxmot`` and
``trackers==2.0.1`` installed besides deepsort-edge's requirements (trackers 2.0.1 needs
``supervision<0.26``; deepsort-edge's tracker runs on arrays, so that is fine here). A peer
that is not installed is left out, with the reason on stderr.

Each peer's result on a set is cached (``--cache-dir``/peers, one JSON per tracker and set,
stamped with the peer versions and the protocol), so an interrupted run resumes; the presets
always run. ``--jobs N`` runs the (tracker, set) pairs in N worker processes; several runs
with different ``--only`` may share one cache, and a last run over everything then only
reads it.

Each preset's rank on a set is its place among the peers and itself by HOTA (1 = best).

Usage (hours on 2 shared cores for every set and peer: the ECC peers warp every track's
history every frame; ``--jobs`` and ``--only`` split it):
    python tools/bench.py peers                          # every set; prints the tables
    python tools/bench.py peers --sets pets-acf,hog-pets --jobs 3
    python tools/bench.py peers --json docs/bench/peers.json --docs   # and rewrite docs/benchmarks.md's block
    python tools/bench.py peers --only deepsort-edge --json a.json    # split: one process per group, then
    python tools/bench.py peers --merge a.json b.json --json docs/bench/peers.json --docs
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from deepsort_edge.io.evaluation import SequenceData, evaluate
from deepsort_edge.io.mot import MOTData
from deepsort_edge.tracking.settings import PRESETS

from .common import add_dataset_arguments, progress
from .datasets import Sequence, data_and_sets, load_sets
from .peer_inputs import ResultCache, frames_of, has_frames, peer_versions
from .quality import cell, run_config, set_summary
from .report import generated_by, md_table, publish, run_host

DOCS_BLOCK = "peers"

# boxmot class name -> (label, needs embeddings, keyword that turns appearance off or None).
BOXMOT_PEERS: dict[str, tuple[str, bool, str | None]] = {
    "HybridSort": ("boxmot HybridSORT", True, "use_embeddings"),
    "BotSort": ("boxmot BoT-SORT", True, "use_embeddings"),
    "StrongSort": ("boxmot StrongSORT", True, None),
    "ByteTrack": ("boxmot ByteTrack", False, None),
    "OcSort": ("boxmot OC-SORT", False, None),
    "DeepOcSort": ("boxmot DeepOCSORT", True, "use_embeddings"),
    "BoostTrack": ("boxmot BoostTrack", True, "use_embeddings"),
}
#: The peers with camera-motion compensation on by default, and the method (boxmot 25.0.0).
CMC: dict[str, str] = {"boxmot HybridSORT": "ECC", "boxmot BoT-SORT": "ECC", "boxmot StrongSORT": "ECC",
                       "boxmot DeepOCSORT": "sparse optical flow", "boxmot BoostTrack": "ECC",
                       "boxmot BoostTrack (no embeddings)": "ECC"}
BLANK = np.zeros((64, 64, 3), dtype=np.uint8)


def peer_scores(scores: np.ndarray, largest: float) -> np.ndarray:
    """Scores for a peer: as given when in [0, 1], else divided by the set's ``largest`` score and clipped."""
    if largest <= 1.0 and (scores >= 0).all():
        return scores.astype(np.float32)
    return np.clip(scores / largest, 0.0, 1.0).astype(np.float32)


def _frames(s: Sequence) -> tuple[dict[int, slice], float]:
    return s.detections.frame_index(), float(max(1.0, s.detections.scores.max(initial=0.0)))


#: A per-sequence factory ``(sequence, frames or None) -> step``; a step is
#: ``(frame, xyxy, scores, embeddings, image) -> (ids, xyxy)``.
StepFactory = Callable[[Sequence, "tuple[np.ndarray, ...] | None"], Callable[..., tuple[np.ndarray, np.ndarray]]]


def _track_set(seqs: list[Sequence], make: StepFactory, data: Path | None = None,
               desc: str = "") -> dict[str, float]:
    """Run ``make(seq, frames)``'s step on every frame of every sequence and evaluate.

    Each sequence's frames come from ``data`` where the shared data has them (None: no image,
    the tracker gets :data:`BLANK`); a progress bar named ``desc`` counts the frames.
    """
    pairs = {}
    bar = progress(range(sum(s.num_frames for s in seqs)), None, desc, bool(desc))
    ticks = iter(bar)
    for s in seqs:
        index, largest = _frames(s)
        frames = frames_of(data, s.name) if data is not None else None
        track = make(s, frames)
        parts = []
        for frame in range(1, s.num_frames + 1):
            next(ticks, None)
            rows = index.get(frame, slice(0, 0))
            xyxy = s.detections.xyxy[rows].astype(np.float32)
            good = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
            emb = s.embeddings[rows][good] if s.embeddings is not None else None
            image = frames[frame - 1] if frames is not None and frame <= len(frames) else BLANK
            ids, boxes = track(frame, xyxy[good], peer_scores(s.detections.scores[rows][good], largest), emb, image)
            if len(ids):
                parts.append(MOTData.from_arrays(np.full(len(ids), frame), ids, boxes).table)
        results = MOTData(np.concatenate(parts)) if parts else MOTData.empty()
        pairs[s.name] = SequenceData(s.gt, results, s.num_frames)
    next(ticks, None)  # closes the bar
    return set_summary(evaluate(pairs))


def boxmot_step(name: str, use_embeddings: bool) -> StepFactory:
    """A per-sequence factory of a boxmot tracker's per-frame step (its defaults).

    Given no frames (a set without images) the tracker's camera-motion compensation is
    switched off: there is no image to estimate it from (given a blank one, boxmot's ECC
    fails on every frame and returns the identity warp, which changes nothing but costs
    a warp of every track's history per frame).
    """
    import boxmot
    import torch
    from boxmot.structures.detections import Detections
    from boxmot.structures.geometry import Boxes

    _, _, switch = BOXMOT_PEERS[name]
    kwargs = {} if switch is None else {switch: use_embeddings}  # BoostTrack's default is off

    def make(s: Sequence, frames: tuple[np.ndarray, ...] | None) -> Any:
        tracker = getattr(boxmot, name)(**kwargs)
        if frames is None and hasattr(tracker, "cmc"):
            tracker.cmc = None

        def step(frame: int, xyxy: np.ndarray, scores: np.ndarray, emb: np.ndarray | None,
                 image: np.ndarray) -> Any:
            detections = Detections(
                geometry=Boxes(torch.from_numpy(np.ascontiguousarray(xyxy, dtype=np.float32))),
                scores=torch.from_numpy(scores), class_ids=torch.zeros(len(scores), dtype=torch.int64),
                sample_id=f"{s.name}:{frame}",
                embeddings=torch.from_numpy(np.ascontiguousarray(emb)) if use_embeddings and emb is not None else None,
            )
            out = tracker.update(detections, image)
            return out.track_ids.numpy().astype(np.int64), out.geometry.values.numpy().astype(np.float64)

        return step

    return make


class _GivenFeatures:
    """A roboflow feature extractor that returns the embeddings the detections carry."""

    def extract_features(self, frame: np.ndarray, detections: Any) -> np.ndarray:
        return detections.data["embeddings"]


def roboflow_step(s: Sequence, frames: tuple[np.ndarray, ...] | None) -> Any:
    """roboflow trackers 2.0.1's DeepSORTTracker (its defaults, the set's frame rate), given our embeddings.

    It reads nothing from the frame (the features are given), so ``frames`` changes nothing.
    """
    import supervision as sv
    from trackers import DeepSORTTracker

    tracker = DeepSORTTracker(feature_extractor=_GivenFeatures(), frame_rate=s.frame_rate)

    def step(frame: int, xyxy: np.ndarray, scores: np.ndarray, emb: np.ndarray | None,
             image: np.ndarray) -> Any:
        detections = sv.Detections(xyxy=xyxy, confidence=scores, class_id=np.zeros(len(scores), dtype=int),
                                   data={"embeddings": emb})
        out = tracker.update(detections, image)
        ids = np.asarray(out.tracker_id if out.tracker_id is not None else [], dtype=np.int64)
        keep = ids >= 0
        return ids[keep] + 1, out.xyxy[keep]

    return step


#: A tracker's run over one set: ``(sequences, shared data folder or None, progress label) -> metrics``
#: (None where it cannot run there).
SetRun = Callable[[list[Sequence], "Path | None", str], "dict[str, float] | None"]


def peers() -> dict[str, SetRun]:
    """Installed peers: label -> run over a set (None where it cannot run); the missing ones said on stderr.

    A peer that uses appearance runs with the set's embeddings, on a motion-only set without them
    where it can switch them off (else it is left out there); BoostTrack also runs without them
    on every set.
    """
    found: dict[str, SetRun] = {}

    def runner(name: str, always_without: bool = False) -> SetRun:
        _, needs, switch = BOXMOT_PEERS[name]

        def run(seqs: list[Sequence], data: Path | None, desc: str) -> dict[str, float] | None:
            with_embeddings = needs and seqs[0].embeddings is not None and not always_without
            if needs and not with_embeddings and switch is None:
                return None
            return _track_set(seqs, boxmot_step(name, with_embeddings), data, desc)

        return run

    try:
        import boxmot  # noqa: F401

        for name, (label, _, _) in BOXMOT_PEERS.items():
            found[label] = runner(name)
        found["boxmot BoostTrack (no embeddings)"] = runner("BoostTrack", always_without=True)
    except Exception as exc:  # noqa: BLE001  (any import failure: the peer is not available)
        print(f"boxmot peers left out: {type(exc).__name__}: {exc}", file=sys.stderr)
    try:
        from trackers import DeepSORTTracker  # noqa: F401

        found["roboflow trackers 2.0.1 DeepSORT"] = (
            lambda seqs, data, desc: _track_set(seqs, roboflow_step, data, desc) if seqs[0].embeddings is not None
            else None
        )
    except Exception as exc:  # noqa: BLE001
        print(f"roboflow trackers left out: {type(exc).__name__}: {exc}", file=sys.stderr)
    return found


#: Why a cell is empty when the peer's run there did not finish (``--from-cache`` reports the rest).
UNFINISHED = "not finished in the run that made this report (rerunning the command resumes from the cache)"


def why_not(label: str, seqs: list[Sequence]) -> str:
    """Why ``label`` has no result on a set (the only case: it needs embeddings and the set has none)."""
    return f"{label} needs embeddings; the set is motion only" if seqs[0].embeddings is None else "did not run"


def ranks(results: dict[str, dict[str, dict[str, float] | None]], sets: tuple[str, ...],
          ours: list[str]) -> dict[str, dict[str, int]]:
    """Each of ``ours``' place by HOTA among the other rows that are not ours, per set (1 = best).

    Sets where ``ours`` or every peer has no result are left out.
    """
    out: dict[str, dict[str, int]] = {}
    for label in ours:
        out[label] = {}
        for s in sets:
            mine = results[label].get(s)
            if mine is None:
                continue
            others = [r[s]["HOTA"] for k, r in results.items() if k not in ours and r.get(s) is not None]
            if others:  # no peer ran there: no place
                out[label][s] = 1 + sum(h > mine["HOTA"] for h in others)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py peers", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser, name="peers", sets=None)
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file (docs/bench/peers.json)")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.md's peer block")
    parser.add_argument("--only", default=None,
                        help="comma-separated words: run only the trackers whose label holds one (e.g. "
                             "'deepsort-edge,ByteTrack'; to split a long run across processes)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes for the (tracker, set) runs (default 1; each decodes the "
                             "PETS09 frames once, about 1 GB)")
    parser.add_argument("--from-cache", action="store_true",
                        help="run no peer: report the peers' cached results, the rest as not finished")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                        help="run nothing: one report from the --json files of runs split with --only")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.merge:
        try:
            found = merged([json.loads(path.read_text(encoding="utf-8")) for path in args.merge])
        except (OSError, ValueError, KeyError) as exc:
            print(f"bench.py peers: error: --merge: {exc}", file=sys.stderr)
            return 2
    else:
        asked = data_and_sets(args.sets)
        found = run_all(*asked, args)
    text = render(found)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    publish(found, args.json, args.docs, DOCS_BLOCK, render)
    return 0


# The sets and runs a worker process uses: set before the pool forks, so workers inherit them.
_SETS: dict[str, list[Sequence]] = {}
_RUNS: dict[str, SetRun] = {}
_CACHE: list[Any] = []  # [{"peers": labels the cache holds}, ResultCache]


def _task(label: str, set_name: str, data: Path, desc: str) -> tuple[str, str, dict[str, float] | None, float]:
    """One tracker on one set (in a worker or in this process): ``(label, set, metrics, seconds)``."""
    start = time.perf_counter()
    if _CACHE and label in _CACHE[0].get("peers", ()):  # another process may have run it meanwhile
        hit, value = _CACHE[1].get(label, set_name)
        if hit:
            return label, set_name, value, 0.0
    result = _RUNS[label](_SETS[set_name], data, desc)
    if result is not None:
        result = {k: v for k, v in result.items() if k != "fps"}  # the peers are not timed here
    return label, set_name, result, time.perf_counter() - start


def run_all(data: Path, wanted: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    """Every preset and installed peer (``--only`` picks) on the ``wanted`` sets: the report's JSON.

    A peer's result on a set comes from the result cache (``--cache-dir``/peers) when a run with
    the same peer versions and protocol stored it; the presets always run. ``--jobs`` > 1 runs
    the (tracker, set) pairs in that many worker processes.
    """
    started = time.perf_counter()
    sets = load_sets(data, args.cache_dir, pets_only=all(s.startswith(("pets", "sim-pets", "hog")) for s in wanted))
    report = tuple(s for s in wanted if s in sets)
    ours = [f"deepsort-edge {name}" for name in PRESETS]
    runs: dict[str, SetRun] = {label: (lambda seqs, _data, _desc, name=name: run_config(seqs, {"preset": name}))
                               for label, name in zip(ours, PRESETS)}
    chosen = {label: run for label, run in {**runs, **peers()}.items()
              if args.only is None or any(word in label for word in args.only.split(","))}
    cache = ResultCache(args.cache_dir / "peers", peer_versions())
    results: dict[str, dict[str, dict[str, float] | None]] = {label: {} for label in chosen}
    todo = []
    for s in report:  # set by set: a run stopped early has every tracker on its first sets
        for label in chosen:
            hit, value = (False, None) if label in ours else cache.get(label, s)
            if hit:
                results[label][s] = value
            elif not args.from_cache or label in ours:
                todo.append((label, s))
    print(f"{len(todo)} runs to do, {sum(map(len, results.values()))} from the cache", file=sys.stderr)
    _SETS.clear(), _SETS.update(sets)
    _RUNS.clear(), _RUNS.update(chosen)
    _CACHE[:] = [{"peers": [label for label in chosen if label not in ours]}, cache]

    def record(done: int, label: str, set_name: str, result: dict[str, float] | None, seconds: float) -> None:
        results[label][set_name] = result
        if label not in ours:
            cache.put(label, set_name, result)
        spent = time.perf_counter() - started
        hota = "n/a" if result is None else f"HOTA {result['HOTA']:.1f}"
        print(f"[{done}/{len(todo)}] {label} / {set_name}: {hota} in {seconds:.0f} s; "
              f"ETA {spent / done * (len(todo) - done):.0f} s", file=sys.stderr)

    if args.jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_task, label, s, data, "") for label, s in todo]
            for done, future in enumerate(as_completed(futures), 1):
                try:
                    record(done, *future.result())
                except Exception as exc:  # noqa: BLE001  (one peer failing must not lose the others)
                    print(f"[{done}/{len(todo)}] a run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    else:
        for done, (label, s) in enumerate(todo, 1):
            record(done, *_task(label, s, data, f"{label} / {s}"))
    ran_sets = {label: set(row) for label, row in results.items()}
    results = {label: {s: results[label].get(s) for s in report} for label in chosen}
    frames = {s: all(has_frames(data, q.name) for q in sets[s]) for s in report}
    missing = {label: {s: why_not(label, sets[s]) if s in ran else UNFINISHED for s in report
                       if results[label][s] is None} for label, ran in ran_sets.items()}
    return {"command": "python tools/bench.py peers", "host": run_host(), "seconds": time.perf_counter() - started,
            "presets": list(PRESETS), "sets": list(report), "ours": [label for label in ours if label in results],
            "frames": frames, "missing": {label: why for label, why in missing.items() if why},
            "results": results}


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from runs split with ``--only``: a tracker's first run wins, the presets first, times added.

    Example: ``merged([json_of_presets_run, json_of_boxmot_run])``. Every part must have run the same sets.
    """
    if not parts:
        raise ValueError("nothing to merge")
    if any(part["sets"] != parts[0]["sets"] for part in parts):
        raise ValueError(f"the parts ran different sets: {[part['sets'] for part in parts]}")
    results: dict[str, dict[str, dict[str, float] | None]] = {}
    for part in parts:
        for label, row in part["results"].items():
            results.setdefault(label, row)
    ours = [label for label in (f"deepsort-edge {name}" for name in parts[0]["presets"]) if label in results]
    order = [*ours, *(label for label in results if label not in ours)]
    missing: dict[str, dict[str, str]] = {}
    for part in parts:
        for label, why in part.get("missing", {}).items():
            missing.setdefault(label, why)
    out = {**parts[0], "seconds": sum(part["seconds"] for part in parts), "ours": ours,
           "results": {label: results[label] for label in order}}
    if missing or "missing" in parts[0]:
        out["missing"] = {label: missing[label] for label in order if label in missing}
    return out


def _best_peer(results: dict[str, dict[str, dict[str, float] | None]], ours: list[str], s: str) -> float:
    return max((r[s]["HOTA"] for k, r in results.items() if k not in ours and r.get(s) is not None),
               default=float("nan"))


def worst_case(results: dict[str, dict[str, dict[str, float] | None]], report: tuple[str, ...], ours: list[str],
               label: str) -> tuple[int, str, float, str]:
    """``label``'s worst place and the set it is on, and its largest HOTA deficit to the best peer and that set.

    Example: ``worst_case(data["results"], ("pets-acf", "tud"), data["ours"], "deepsort-edge default")``
    -> ``(2, "tud", -1.2, "tud")``.
    """
    placed = ranks(results, report, ours)[label]
    if not placed:
        raise ValueError(f"{label!r} has no result on any of {list(report)}")
    rank_set = max(placed, key=lambda s: (placed[s], -report.index(s)))
    gaps = {s: results[label][s]["HOTA"] - _best_peer(results, ours, s) for s in placed}
    gap_set = min(gaps, key=lambda s: (gaps[s], report.index(s)))
    return placed[rank_set], rank_set, gaps[gap_set], gap_set


def _notes(data: dict[str, Any]) -> list[str]:
    """How the peers were run where it differs by set: frames and camera-motion compensation, n/a cells."""
    frames = data.get("frames")
    lines = []
    if frames is not None:
        with_cmc = [f"{label} ({how})" for label, how in CMC.items() if label in data["results"]]
        yes = [s for s in data["sets"] if frames[s]]
        no = [s for s in data["sets"] if not frames[s]]
        lines.append(f"Camera-motion compensation, each peer's default: {', '.join(with_cmc)}. "
                     + (f"On {', '.join(yes)} the peers get the real frames and run it. " if yes else "")
                     + (f"On {', '.join(no)} the shared data has no frames: it is off there." if no else ""))
    by_reason: dict[str, list[str]] = {}
    for label, why in data.get("missing", {}).items():
        for reason in dict.fromkeys(why.values()):
            by_reason.setdefault(reason, []).append(f"{label} on {', '.join(s for s in why if why[s] == reason)}")
    for reason, where in by_reason.items():
        word = "not run" if reason == UNFINISHED else "n/a"
        lines.append(f"{word}: {'; '.join(where)}: {reason}.")
    return lines


def _cell(data: dict[str, Any], label: str, s: str) -> str:
    """A table cell: the metrics, or why there are none (``n/a``: cannot run there; ``not run``: unfinished)."""
    result = data["results"][label].get(s)
    if result is not None or label in data["ours"]:
        return cell(result)
    return "not run" if data.get("missing", {}).get(label, {}).get(s) == UNFINISHED else "n/a"


def render(data: dict[str, Any]) -> str:
    """docs/benchmarks.md's peer block: every tracker on every set, then each preset's rank among the peers."""
    results, report, ours = data["results"], tuple(data["sets"]), data["ours"]
    placed = ranks(results, report, ours)
    table = md_table(["tracker (HOTA / IDF1 / IDSW)", *report],
                     [[label, *[_cell(data, label, s) for s in report]] for label in results])
    rank_rows = []
    for label in ours:
        best = {s: _best_peer(results, ours, s) for s in report}
        worst = "-"
        if placed[label]:
            rank, rank_set, gap, gap_set = worst_case(results, report, ours, label)
            worst = f"{rank} on {rank_set}; {gap:+.1f} on {gap_set}"
        rank_rows.append([label, *[f"{placed[label][s]} ({results[label][s]['HOTA'] - best[s]:+.1f})"
                                   if s in placed[label] else "-" for s in report], worst])
    peer_count = len(results) - len(ours)
    notes = _notes(data)
    return "\n".join([
        "#### Every tracker on every set (same detections, same embeddings; HOTA / IDF1 / IDSW, TrackEval)", "",
        table, "",
        *([*(f"- {note}" for note in notes), ""] if notes else []),
        f"#### Each preset's rank among the {peer_count} peer rows (1 = best; HOTA against the best peer)", "",
        md_table(["preset", *report, "worst place; largest deficit"], rank_rows), "",
        generated_by(data["command"], data["seconds"], "Presets", {"presets": data["presets"]}, data["host"]), "",
    ])
