"""``deepsort-edge eval``: HOTA, MOTA, IDF1, ID switches and fragmentations.

Ground truth: a MOTChallenge sequence folder (``gt/gt.txt``, ``seqinfo.ini``),
a folder of such sequences, or a ``gt.txt`` file. Results: one MOT results
file, or a folder holding ``<sequence>.txt`` per sequence (TrackEval's layout).
Metrics come from TrackEval's metric classes (the ``eval`` extra); see
:mod:`deepsort_edge.io.evaluation` for the ground-truth filtering.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepsort_edge.io.mot import MAX_FRAME, MOTFormatError, find_sequences, read_mot

PROG = "deepsort-edge eval"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="HOTA / MOTA / IDF1 of MOT result files (TrackEval)",
        description=(
            "Evaluate MOT results against ground truth with TrackEval's HOTA, CLEAR and "
            "Identity metrics. GT is a sequence folder (gt/gt.txt), a folder of sequences or "
            "a gt.txt file; RESULTS is a results file or a folder of <sequence>.txt files."
        ),
        epilog=(
            "Ground-truth filtering follows TrackEval's MotChallenge2DBox: for MOT16/17/20 "
            "(classes in column 8) tracker boxes matching distractors are removed and only "
            "pedestrians with flag 1 are kept; for MOT15 only rows with flag 0 are dropped."
        ),
    )
    parser.add_argument("gt", type=Path, help="sequence folder, folder of sequences or gt.txt")
    parser.add_argument("results", type=Path, help="results file or folder of <sequence>.txt")
    parser.add_argument("--preprocess", choices=("auto", "mot15", "mot17", "mot20"), default="auto",
                        help="ground-truth convention (default: auto = mot17 when column 8 "
                             "holds MOTChallenge classes, else mot15)")
    parser.add_argument("--num-frames", type=int, default=None,
                        help="sequence length when there is no seqinfo.ini (default: last frame)")
    parser.add_argument("--csv", type=Path, default=None, help="write all metrics as CSV")
    parser.add_argument("--json", type=Path, default=None, help="write all metrics as JSON")
    return parser


def _collect(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """Pair ground truth with results: name -> SequenceData; plus warnings."""
    from deepsort_edge.io.evaluation import SequenceData  # noqa: PLC0415

    gt_path: Path = args.gt
    res_path: Path = args.results
    if args.num_frames is not None and not 1 <= args.num_frames <= MAX_FRAME:
        raise ValueError(f"--num-frames must be in [1, {MAX_FRAME:,}], got {args.num_frames}")
    if not gt_path.exists():
        raise FileNotFoundError(f"ground truth not found: {gt_path}")
    if not res_path.exists():
        raise FileNotFoundError(f"results not found: {res_path}")
    warnings: list[str] = []
    if gt_path.is_file():
        if res_path.is_dir():
            raise ValueError(f"with a gt file ({gt_path}) RESULTS must be a file, got folder {res_path}")
        name = gt_path.parent.parent.name if gt_path.parent.name == "gt" else gt_path.stem
        return {name: SequenceData(read_mot(gt_path), read_mot(res_path), args.num_frames)}, warnings
    sequences = find_sequences(gt_path, require="gt")
    if not sequences:
        raise ValueError(f"no ground truth in {gt_path}: expected gt/gt.txt in it or its sub-folders")
    pairs = {}
    if res_path.is_file():
        if len(sequences) != 1:
            raise ValueError(
                f"{gt_path} holds {len(sequences)} sequences; RESULTS must then be a folder of "
                "<sequence>.txt files"
            )
        seq = sequences[0]
        pairs[seq.name] = SequenceData(read_mot(seq.gt_path), read_mot(res_path),
                                       args.num_frames or seq.num_frames)
        return pairs, warnings
    for seq in sequences:
        candidates = [res_path / f"{seq.name}.txt", res_path / f"{seq.root.name}.txt"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            warnings.append(f"no results for {seq.name} (expected {candidates[0]}): skipped")
            continue
        pairs[seq.name] = SequenceData(read_mot(seq.gt_path), read_mot(found),
                                       args.num_frames or seq.num_frames)
    if not pairs:
        raise ValueError(f"no result files in {res_path} match the sequences in {gt_path}")
    return pairs, warnings


def run(args: argparse.Namespace) -> int:
    """Run ``deepsort-edge eval``; returns the exit status."""
    try:
        from deepsort_edge.io import evaluation  # noqa: PLC0415

        evaluation.require_trackeval()
    except ImportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 3
    try:
        pairs, warnings = _collect(args)
        results = evaluation.evaluate(pairs, preprocess=args.preprocess)
    except (FileNotFoundError, MOTFormatError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    for message in warnings:
        print(f"{PROG}: warning: {message}", file=sys.stderr)
    print(evaluation.format_table(results))
    if args.csv is not None:
        evaluation.write_csv(args.csv, results)
        print(f"CSV:  {args.csv}")
    if args.json is not None:
        evaluation.write_json(args.json, results, preprocess=args.preprocess,
                              ground_truth=str(args.gt), results_path=str(args.results))
        print(f"JSON: {args.json}")
    return 0
